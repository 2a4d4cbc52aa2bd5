// No-op re-apply: N routed apps already converged; apply the same revision again. Counts container
// list calls and nginx reloads, and times the reconcile in-process (render + observe + plan, what
// the controller does per poll) and the CLI end to end (including Node start-up).
//   npm run bench -- noop
import { statSync } from 'node:fs';
import path from 'node:path';
import { DockerDriver } from '../src/runtime/docker/driver.js';
import { NginxDriver } from '../src/runtime/nginx/driver.js';
import { observe } from '../src/runtime/observe.js';
import { plan } from '../src/plan/plan.js';
import { DocCache } from '../src/render/doc-cache.js';
import { renderEnvironment } from '../src/render/render.js';
import { envSecretSource } from '../src/render/secrets.js';
import { readDirectoryRevision } from '../src/source/directory.js';
import { stats } from './generate.js';
import { APPS, manyEnv } from './many-env.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const e = await manyEnv(APPS);
try {
  await e.apply();
  const runtime = new DockerDriver({ host: process.env.DOCKER_HOST, hostIp: '127.0.0.1' });
  const proxy = new NginxDriver({ confDir: e.nginx.confDir, listen: e.nginx.listen, testCmd: e.nginx.testCmd, reloadCmd: e.nginx.reloadCmd, minReloadIntervalMs: 1000 });
  const cache = new DocCache();
  const secrets = envSecretSource({});
  const times: number[] = [];
  let empty = true;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const rendered = renderEnvironment(await readDirectoryRevision(e.repo.dir), e.repo.env, { secrets, cache });
    if (!rendered.ok) throw new Error(rendered.problems[0]!.message);
    const planned = plan(rendered.state, await observe(e.repo.env, runtime, proxy));
    times.push(performance.now() - t0);
    empty &&= planned.empty;
  }
  // The CLI runs apply for real: its summary says how many reloads it made ("… in sync" when none),
  // and the nginx file must not be touched.
  const conf = path.join(e.nginx.confDir, `berth-${e.repo.env}.conf`);
  const mtime = statSync(conf).mtimeMs;
  const cli: number[] = [];
  let reloads = 0;
  for (let i = 0; i < 3; i++) {
    const r = await e.apply();
    cli.push(r.ms);
    reloads += Number(/(\d+) nginx reloads?/.exec(r.summary)?.[1] ?? 0);
  }
  const s = stats(times);
  console.log(`noop: re-apply of ${APPS} converged routed apps, nothing changed (${RUNS} runs):`);
  console.log(`  reconcile in-process: median ${s.median.toFixed(0)} ms, p90 ${s.p90.toFixed(0)}, max ${s.max.toFixed(0)}   [aim ≤ 300 ms]`);
  console.log(`  per reconcile: ${runtime.listCalls / RUNS} container-list call(s), plan empty: ${empty}`);
  console.log(`  berth apply (CLI, incl. Node start-up): median ${stats(cli).median.toFixed(0)} ms; ${reloads} nginx reloads in ${cli.length} applies, nginx file untouched: ${statSync(conf).mtimeMs === mtime}`);
} finally {
  await e.teardown();
}
