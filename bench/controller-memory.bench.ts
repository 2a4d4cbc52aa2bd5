// Controller memory: peak RSS of `berth run` (compiled) holding an environment of N routed apps
// (default 100): while it converges them from empty, idle with the health monitor probing every
// replica at berth's default interval (2 s; BENCH_HEALTH_INTERVAL to vary), and during a forced
// full reconcile.
//   npm run bench -- controller-memory
import { freePort } from '../test/support/nginx.js';
import { startBerthRun, waitFor } from '../test/support/run.js';
import { followEvents } from '../test/support/sse.js';
import { APPS, manyEnv, memoryOf, resetPeak } from './many-env.js';

const TOKEN = 'bench-token';
const INTERVAL = Number(process.env.BENCH_HEALTH_INTERVAL ?? 2);
const e = await manyEnv(APPS, { intervalSeconds: INTERVAL });
try {
  const berth = await startBerthRun(['--interval', '1h'], { ...e.cliEnv, BERTH_API_TOKEN: TOKEN }, await freePort());
  const pid = berth.child.pid!;
  try {
    const status = async (): Promise<{ syncStatus?: string }> => (await fetch(`${berth.api}/api/v1/status`)).json() as Promise<{ syncStatus?: string }>;
    await waitFor(async () => (await status()).syncStatus === 'Synced', 300_000, 'the environment to converge');
    await e.allServing();
    const converging = memoryOf(pid);
    await new Promise((r) => setTimeout(r, 10_000));
    const idle = memoryOf(pid);
    // The end of the forced reconcile, from the event stream (an in-sync reconcile moves no metric).
    const events = await followEvents(berth.api, 'reconcile.finished');
    // From here the peak is the forced reconcile's own, not the converging one's.
    resetPeak(pid);
    const res = await fetch(`${berth.api}/api/v1/sync?force=true`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    if (!res.ok) throw new Error(`sync: ${res.status} ${await res.text()}`);
    await waitFor(() => events.seen.length > 0, 60_000, 'the forced reconcile to finish');
    await events.close();
    const after = memoryOf(pid);
    console.log(`controller memory: berth run holding ${APPS} routed apps (health monitor probing every replica every ${INTERVAL} s):`);
    console.log(`  peak RSS while converging from empty: ${converging.peakMb.toFixed(0)} MB`);
    console.log(`  idle RSS after 10 s: ${idle.rssMb.toFixed(0)} MB`);
    console.log(`  peak RSS through a forced full reconcile: ${after.peakMb.toFixed(0)} MB (RSS after: ${after.rssMb.toFixed(0)} MB)   [aim ≤ 100 MB]`);
  } finally {
    await berth.stop();
  }
} finally {
  await e.teardown();
}
