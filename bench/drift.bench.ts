// Drift: `docker rm -f` of one replica of a running app → berth reports the drift (drift.detected on
// its event stream) and, with selfHeal, a replacement serves through nginx (drift.healed: berth
// announces it once nginx serves the new upstream). The real controller (`berth run`, poll interval
// one hour, so only Docker's event stream can find the drift), dockerd and nginx.
//   npm run bench -- drift
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { dockerOptions } from '../src/runtime/docker/driver.js';
import { httpdApp } from '../test/support/apps.js';
import { ensureDemoImages } from '../test/support/docker.js';
import { removeEnv } from '../test/support/env.js';
import { freePort, get, launchNginx, nginxCliEnv } from '../test/support/nginx.js';
import { startBerthRun, waitFor } from '../test/support/run.js';
import { followEvents } from '../test/support/sse.js';
import { stats } from './generate.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const TOKEN = 'bench-token';
const env = `dr${Math.random().toString(36).slice(2, 7)}`;
const docker = new Docker(dockerOptions(process.env.DOCKER_HOST));
await ensureDemoImages(docker);
const nginx = await launchNginx();
const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-drift-'));
mkdirSync(path.join(dir, 'apps'));
// The heal limit is raised for the bench; a forced sync between runs resets the count as well.
writeFileSync(path.join(dir, 'berth.yaml'), `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${env}: { branch: main, selfHeal: true, healLimit: { heals: 1000, windowSeconds: 600 } }\n`);
writeFileSync(
  path.join(dir, 'apps/hello.yaml'),
  httpdApp({ name: 'hello', replicas: 2, intervalSeconds: 0.2, host: 'hello.test', drainSeconds: 0 }),
);
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-drift-state-'));
const berth = await startBerthRun(
  ['--interval', '1h'],
  {
    BERTH_REPO: dir,
    BERTH_ENV: env,
    BERTH_STATE_DIR: stateDir,
    BERTH_API_TOKEN: TOKEN,
    ...nginxCliEnv(nginx),
    BERTH_LOG_LEVEL: 'warn',
  },
  await freePort(),
);

/** drift.* events from berth's SSE stream, with their arrival time. */
const events = await followEvents<{ apps: string[] }>(berth.api, 'drift.');
const seen = events.seen;

const running = async () => docker.listContainers({ filters: { label: [`berth.env=${env}`, 'berth.app=hello'], status: ['running'] } });
const synced = async () => ((await (await fetch(`${berth.api}/api/v1/status`)).json()) as { syncStatus: string }).syncStatus === 'Synced';

let failures = 0;
try {
  await waitFor(async () => (await get(nginx.port, 'hello.test')).body === 'hello\n' && (await running()).length === 2 && (await synced()), 60_000, 'hello served by 2 replicas');
  const reported: number[] = [];
  const healed: number[] = [];
  for (let i = 1; i <= RUNS; i++) {
    // Start each run from rest: reloads are spaced ≥ 1 s, and the re-check after the last heal is done.
    await fetch(`${berth.api}/api/v1/sync?force=true`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    await new Promise((r) => setTimeout(r, 1500));
    await waitFor(synced, 30_000, 'Synced before the run');
    const [victim] = await running();
    const t0 = Date.now();
    await docker.getContainer(victim!.Id).remove({ force: true });
    const detected = await waitFor(() => seen.find((e) => e.type === 'drift.detected' && e.at >= t0), 30_000, `run ${i}: drift reported`);
    const done = await waitFor(() => seen.find((e) => e.type === 'drift.healed' && e.at >= t0), 30_000, `run ${i}: drift healed`);
    // The replacement is in nginx's upstream and the app answers through nginx.
    const now = await running();
    const conf = readFileSync(path.join(nginx.confDir, `berth-${env}.conf`), 'utf8');
    const fresh = now.find((c) => c.Id !== victim!.Id && Date.now() - c.Created * 1000 < 60_000 && conf.includes(`server 127.0.0.1:${c.Ports.find((p) => p.PrivatePort === 8080)?.PublicPort} `));
    if (now.length !== 2 || !fresh || (await get(nginx.port, 'hello.test')).status !== 200) {
      failures++;
      console.log(`  run ${i}: not healed as expected (${now.length} running, replacement in nginx: ${!!fresh})`);
    }
    reported.push(detected.at - t0);
    healed.push(done.at - t0);
  }
  const r = stats(reported);
  const h = stats(healed);
  console.log(`drift (docker rm -f of 1 of 2 replicas → berth run with selfHeal, poll interval 1 h), ${RUNS} runs:`);
  console.log(`  reported  median ${r.median.toFixed(0)} ms, min ${r.min.toFixed(0)}, p90 ${r.p90.toFixed(0)}, max ${r.max.toFixed(0)}   [aim ≤ 2000 ms]`);
  console.log(`  healed    median ${h.median.toFixed(0)} ms, min ${h.min.toFixed(0)}, p90 ${h.p90.toFixed(0)}, max ${h.max.toFixed(0)}   [aim ≤ 5000 ms] (replacement serving through nginx)`);
  console.log(`  reported each: ${reported.map((t) => t.toFixed(0)).join(', ')} ms`);
  console.log(`  healed each:   ${healed.map((t) => t.toFixed(0)).join(', ')} ms`);
} finally {
  await events.close();
  await berth.stop();
  await removeEnv(docker, env);
  nginx.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
}
process.exitCode = failures === 0 ? 0 : 1;
