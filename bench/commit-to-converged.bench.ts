// Commit-to-converged: time from `git push` + signed webhook to the new container serving through
// nginx, for a 1-replica app, with the real controller (`berth run`), git http-backend, dockerd, nginx.
//   npm run bench -- commit-to-converged
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { dockerOptions } from '../src/runtime/docker/driver.js';
import { httpdApp } from '../test/support/apps.js';
import { ensureDemoImages } from '../test/support/docker.js';
import { seedRepo, startGitServer } from '../test/support/git-server.js';
import { freePort, get, launchNginx, nginxCliEnv } from '../test/support/nginx.js';
import { pushWebhook, startBerthRun, waitFor } from '../test/support/run.js';
import { stats } from './generate.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const SECRET = 'bench-secret';
const env = `cc${Math.random().toString(36).slice(2, 7)}`;
const docker = new Docker(dockerOptions(process.env.DOCKER_HOST));
await ensureDemoImages(docker);
const nginx = await launchNginx();
const git = await startGitServer();
const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-cc-'));
mkdirSync(path.join(dir, 'apps'));
writeFileSync(path.join(dir, 'berth.yaml'), `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${env}: { branch: main }\n`);
const app = (version: string) =>
  httpdApp({ name: 'hello', body: version, intervalSeconds: 0.2, host: 'hello.test', drainSeconds: 0, extra: '  strategy: { type: rolling, maxSurge: 1, maxUnavailable: 0 }\n' });
writeFileSync(path.join(dir, 'apps/hello.yaml'), app('v0'));
const repo = await seedRepo(git, 'deploy', dir);
await repo.push('v0');
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-cc-state-'));
const berth = await startBerthRun(['--env', env, '--repo', git.url('deploy.git'), '--interval', '1h'], {
  BERTH_STATE_DIR: stateDir,
  BERTH_WEBHOOK_SECRET: SECRET,
  ...nginxCliEnv(nginx),
  BERTH_LOG_LEVEL: 'warn',
}, await freePort());
try {
  await waitFor(async () => (await get(nginx.port, 'hello.test')).body === 'v0\n', 30_000, 'v0 served');
  const times: number[] = [];
  for (let i = 1; i <= RUNS; i++) {
    writeFileSync(path.join(repo.work, 'apps/hello.yaml'), app(`v${i}`));
    const sha = await repo.commit(`v${i}`);
    await new Promise((r) => setTimeout(r, 1200)); // reloads are spaced ≥ 1 s: start each run from rest
    const t0 = performance.now();
    await (await import('../test/support/git-server.js')).gitCmd(repo.work, 'push', '-q', 'origin', 'HEAD:main');
    const res = await pushWebhook(berth.api, 'main', sha, SECRET);
    if (res.status !== 202) throw new Error(`webhook: ${res.status}`);
    await waitFor(async () => (await get(nginx.port, 'hello.test')).body === `v${i}\n`, 30_000, `v${i} served`);
    times.push(performance.now() - t0);
  }
  const s = stats(times);
  console.log(`commit-to-converged (git push + webhook → new container serving through nginx), ${RUNS} runs, 1 replica:`);
  console.log(`  median ${s.median.toFixed(0)} ms, min ${s.min.toFixed(0)}, p90 ${s.p90.toFixed(0)}, max ${s.max.toFixed(0)}   [aim < 1500 ms]`);
  console.log(`  each: ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
} finally {
  await berth.stop();
  const rows = await docker.listContainers({ all: true, filters: { label: [`berth.env=${env}`] } });
  await Promise.all(rows.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  nginx.stop();
  await git.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
}
