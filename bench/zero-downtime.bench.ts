// Zero-downtime benchmark: steady load through nginx (127.0.0.1 only) while berth rolls a
// 3-replica app to a new image. Bounded: at most 60 s of load.
//   npm run bench -- zero-downtime
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import Docker from 'dockerode';
import { applyPlan } from '../src/apply/apply.js';
import type { ApplyProgress } from '../src/apply/types.js';
import { DockerDriver, dockerOptions } from '../src/runtime/docker/driver.js';
import { systemClock } from '../src/util/clock.js';
import { NginxDriver } from '../src/runtime/nginx/driver.js';
import { observe } from '../src/runtime/observe.js';
import { plan } from '../src/plan/plan.js';
import { renderEnvironment } from '../src/render/render.js';
import { envSecretSource } from '../src/render/secrets.js';
import { readDirectoryRevision } from '../src/source/directory.js';
import { httpdApp } from '../test/support/apps.js';
import { ensureDemoImages } from '../test/support/docker.js';
import { get, launchNginx } from '../test/support/nginx.js';

const RATE = Number(process.env.BENCH_RATE ?? 800);
const STRATEGIES = (process.env.BENCH_STRATEGY ?? 'rolling,blue-green').split(',');
let env = '';
const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-zd-'));
mkdirSync(path.join(dir, 'apps'));
const app = (version: string, strategy: string) =>
  httpdApp({ name: 'shop', version, body: `shop ${version}`, replicas: 3, intervalSeconds: 0.2, host: 'shop.test', drainSeconds: 2, extra: `  strategy: { type: ${strategy} }\n` });

const docker = new Docker(dockerOptions(process.env.DOCKER_HOST));
await ensureDemoImages(docker);
const nginx = await launchNginx();
const runtime = new DockerDriver({ host: process.env.DOCKER_HOST });
const proxy = new NginxDriver({ confDir: nginx.confDir, listen: nginx.listen, testCmd: nginx.testCmd, reloadCmd: nginx.reloadCmd, minReloadIntervalMs: 1000 });
const secrets = envSecretSource({});

async function converge(onProgress?: (e: ApplyProgress) => void): Promise<{ result: string; ms: number; reloads: number }> {
  const r = renderEnvironment(await readDirectoryRevision(dir), env, { secrets });
  if (!r.ok) throw new Error(r.problems[0]!.message);
  const live = await observe(env, runtime, proxy);
  const report = await applyPlan(plan(r.state, live), { runtime, proxy, clock: systemClock, ...(onProgress && { onProgress }) });
  return { result: report.result, ms: report.durationMs, reloads: report.reloads };
}

let failures = 0;
for (const strategy of STRATEGIES) {
  env = `zd${Math.random().toString(36).slice(2, 7)}`;
  writeFileSync(path.join(dir, 'berth.yaml'), `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${env}: { branch: main }\n`);
  console.log(`\n— strategy ${strategy}`);
  try {
    failures += await rollout(strategy);
  } finally {
    const rows = await docker.listContainers({ all: true, filters: { label: [`berth.env=${env}`] } });
    await Promise.all(rows.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    // The next strategy reuses the host name: this environment's server block must go too.
    rmSync(proxy.file(env), { force: true });
    execFileSync(nginx.reloadCmd[0]!, nginx.reloadCmd.slice(1));
    await new Promise((r) => setTimeout(r, 1000));
  }
}
nginx.stop();
rmSync(dir, { recursive: true, force: true });
process.exitCode = failures === 0 ? 0 : 1;

async function rollout(strategy: string): Promise<number> {
  writeFileSync(path.join(dir, 'apps/shop.yaml'), app('1.0', strategy));
  const first = await converge();
  if (first.result !== 'Succeeded') throw new Error(`initial apply: ${first.result}`);

  let finished!: (r: autocannon.Result) => void;
  const done = new Promise<autocannon.Result>((r) => (finished = r));
  const load = autocannon({ url: `http://127.0.0.1:${nginx.port}/`, headers: { host: 'shop.test' }, connections: 16, overallRate: RATE, duration: 60 }, (err, result) => {
    if (err) throw err;
    finished(result);
  });
  const t0 = Date.now();
  const errorLog: string[] = [];
  load.on('reqError', (err: NodeJS.ErrnoException) => errorLog.push(`+${((Date.now() - t0) / 1000).toFixed(2)}s ${err.code ?? err.message}`));
  load.on('response', (_c, status) => {
    if (status >= 300) errorLog.push(`+${((Date.now() - t0) / 1000).toFixed(2)}s HTTP ${status}`);
  });
  await new Promise((r) => setTimeout(r, 2000));
  writeFileSync(path.join(dir, 'apps/shop.yaml'), app('1.1', strategy));
  const rollout = await converge((e) => errorLog.push(`+${((Date.now() - t0) / 1000).toFixed(2)}s [${e.phase}] ${e.message}`));
  await new Promise((r) => setTimeout(r, 2000));
  load.stop();
  const res = await done;
  const served = res.requests.total;
  const seconds = res.duration;
  console.log(`rollout of 3 replicas (${strategy}): ${rollout.result} in ${(rollout.ms / 1000).toFixed(1)} s with ${rollout.reloads} nginx reloads`);
  console.log(`load: ${served} requests in ${seconds.toFixed(1)} s = ${(served / seconds).toFixed(0)} req/s (target rate ${RATE}, 16 keep-alive connections)`);
  console.log(`failed: non-2xx ${res.non2xx}, timeouts ${res.timeouts}   [target 0]; connection resets ${res.errors}`);
  console.log(`status codes: ${JSON.stringify((res as unknown as { statusCodeStats: Record<string, { count: number }> }).statusCodeStats)}`);
  if (process.env.BENCH_VERBOSE) console.log(errorLog.join('\n'));
  console.log(`latency: p50 ${res.latency.p50} ms, p99 ${res.latency.p99} ms, max ${res.latency.max} ms`);
  const after = await get(nginx.port, 'shop.test');
  console.log(`serving after rollout: ${after.status} ${after.body.trim()}`);
  // The bench fails (exit 1) when a request got an error answer or none, or the rollout failed.
  // Connection resets at a reload are printed as the figure they are (see README: open-source nginx
  // closes idle keep-alive connections on reload; a client that writes at that instant sees a reset).
  return res.non2xx + res.timeouts + (rollout.result === 'Succeeded' ? 0 : 1);
}
