import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthMonitor, type HealthMonitorDeps, type MonitoredApp } from '../../src/health/monitor.js';
import type { HealthCheckSpec } from '../../src/render/types.js';
import type { ContainerState, ExecResult, LiveContainer, RuntimeDriver } from '../../src/runtime/types.js';
import type { HealthStatus } from '../../src/status/vocabulary.js';
import { fakeClock, scriptedRuntime } from '../support/fakes.js';

const check = (over: Partial<HealthCheckSpec> = {}): HealthCheckSpec => ({
  exec: { command: ['check'] },
  intervalSeconds: 10,
  timeoutSeconds: 1,
  failureThreshold: 3,
  successThreshold: 2,
  startPeriodSeconds: 0,
  timeoutTotalSeconds: 60,
  ...over,
});

const web = (over: Partial<MonitoredApp> = {}): MonitoredApp => ({ app: 'web', specHash: 'h1', replicas: 2, healthCheck: check(), ...over });

/** A live container of `app`, replica `n`: small enough to read in a table. */
function live(app: string, n: number, over: Partial<LiveContainer> = {}): LiveContainer {
  const specHash = over.specHash ?? 'h1';
  return { id: `${app}-${n}-${specHash}`, name: `env-${app}-${n}`, env: 'env', app, revision: 'abc', specHash, replica: n, spec: '', image: 'demo:1', state: 'running', status: 'Up 1 minute', ports: [], created: 1, host: 'local', ...over };
}

/** The scripted runtime, with exec answered per container (call n of that container). */
function runtimeOf(exec: (id: string, n: number) => ExecResult | Promise<ExecResult>): RuntimeDriver & { calls: Map<string, number> } {
  const calls = new Map<string, number>();
  return {
    ...scriptedRuntime({}),
    calls,
    exec: async (id: string) => {
      const n = calls.get(id) ?? 0;
      calls.set(id, n + 1);
      return exec(id, n);
    },
  };
}

/** A scheduler the test fires by hand. */
function fakeScheduler() {
  const timers: { fn: () => void; ms: number; cancelled: boolean; ran: boolean }[] = [];
  const pending = () => timers.filter((t) => !t.cancelled && !t.ran);
  return {
    timers,
    pending,
    schedule: (fn: () => void, ms: number) => {
      const t = { fn, ms, cancelled: false, ran: false };
      timers.push(t);
      return { cancel: () => void (t.cancelled = true) };
    },
    async fire(): Promise<void> {
      for (const t of pending()) {
        t.ran = true;
        t.fn();
      }
      await settle();
    },
  };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
const ok: ExecResult = { exitCode: 0, output: '' };
const fail: ExecResult = { exitCode: 1, output: 'db down' };

function monitorOf(runtime: RuntimeDriver, over: Partial<HealthMonitorDeps> = {}) {
  const clock = fakeClock();
  const changes: { app: string; previous: HealthStatus | undefined; next: HealthStatus }[] = [];
  const monitor = new HealthMonitor({ runtime, clock, onChange: (app, previous, next) => changes.push({ app, previous, next }), ...over });
  return { monitor, clock, changes };
}

/** A runtime whose probes pass after a tick, counting the most probes in flight at once. */
function overlapCounter(): { runtime: ReturnType<typeof runtimeOf>; peak(): number } {
  let active = 0;
  let most = 0;
  const runtime = runtimeOf(async () => {
    most = Math.max(most, ++active);
    await settle();
    active--;
    return ok;
  });
  return { runtime, peak: () => most };
}

async function checks(monitor: HealthMonitor, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await monitor.checkAll();
}

describe('health monitor: thresholds (exec probes, fake clock)', () => {
  const cases: { name: string; app: MonitoredApp; exec: (n: number) => ExecResult; probes: number; want: HealthStatus }[] = [
    { name: 'unprobed replicas are Progressing', app: web(), exec: () => ok, probes: 0, want: { status: 'Progressing', message: '0/2 replicas healthy, 2 awaiting health check' } },
    { name: 'one pass is not enough for successThreshold 2', app: web(), exec: () => ok, probes: 1, want: { status: 'Progressing', message: '0/2 replicas healthy, 2 awaiting health check' } },
    { name: 'Healthy after successThreshold passes', app: web(), exec: () => ok, probes: 2, want: { status: 'Healthy', message: '2/2 replicas healthy' } },
    { name: 'failures below failureThreshold keep the verdict open', app: web(), exec: () => fail, probes: 2, want: { status: 'Progressing', message: '0/2 replicas healthy, 2 awaiting health check' } },
    {
      name: "Degraded with the probe's message after failureThreshold failures",
      app: web(),
      exec: () => fail,
      probes: 3,
      want: { status: 'Degraded', reason: 'HealthCheckFailed', message: '2/2 replicas failing: exec check → exit 1: db down' },
    },
    { name: 'a pass resets the failure count', app: web(), exec: (n) => (n === 2 ? ok : fail), probes: 4, want: { status: 'Progressing', message: '0/2 replicas healthy, 2 awaiting health check' } },
    { name: 'a healthy replica stays healthy below failureThreshold', app: web(), exec: (n) => (n < 2 ? ok : fail), probes: 4, want: { status: 'Healthy', message: '2/2 replicas healthy' } },
    {
      name: 'a healthy replica turns Degraded at failureThreshold',
      app: web(),
      exec: (n) => (n < 2 ? ok : fail),
      probes: 5,
      want: { status: 'Degraded', reason: 'HealthCheckFailed', message: '2/2 replicas failing: exec check → exit 1: db down' },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { monitor } = monitorOf(runtimeOf((_, n) => c.exec(n)));
      monitor.update([c.app], [live('web', 0), live('web', 1)]);
      await checks(monitor, c.probes);
      assert.deepEqual(monitor.healthOf('web'), c.want);
    });
  }

  it('names how many replicas fail and the failing one’s message', async () => {
    const { monitor } = monitorOf(runtimeOf((id) => (id === 'web-1-h1' ? { exitCode: 1, output: 'GET /health → 500' } : ok)));
    monitor.update([web({ healthCheck: check({ failureThreshold: 1, successThreshold: 1 }) })], [live('web', 0), live('web', 1)]);
    await monitor.checkAll();
    assert.deepEqual(monitor.healthOf('web'), { status: 'Degraded', reason: 'HealthCheckFailed', message: '1/2 replicas failing: exec check → exit 1: GET /health → 500' });
    const [first, second] = monitor.replicas('web');
    assert.equal(first?.healthy, true);
    assert.deepEqual({ ...second, latencyMs: undefined, checkedAt: undefined }, {
      containerId: 'web-1-h1',
      name: 'env-web-1',
      ok: false,
      message: 'exec check → exit 1: GET /health → 500',
      latencyMs: undefined,
      checkedAt: undefined,
      consecutiveFailures: 1,
      consecutiveSuccesses: 0,
      healthy: false,
    });
  });

  it('ignores failures inside the start period, counted from when the monitor first saw the replica', async () => {
    const { monitor, clock } = monitorOf(runtimeOf(() => fail));
    clock.t = 5_000;
    monitor.update([web({ replicas: 1, healthCheck: check({ startPeriodSeconds: 10, failureThreshold: 2 }) })], [live('web', 0)]);
    for (const t of [5_000, 10_000, 14_999]) {
      clock.t = t;
      await monitor.checkAll();
    }
    assert.equal(monitor.healthOf('web').status, 'Progressing');
    assert.equal(monitor.replicas('web')[0]?.consecutiveFailures, 0);
    clock.t = 15_000;
    await checks(monitor, 2);
    assert.equal(monitor.healthOf('web').status, 'Degraded');
  });

  it('records latency and the time of the check with the clock', async () => {
    const { monitor, clock } = monitorOf(
      runtimeOf(() => {
        clock.t += 250;
        return ok;
      }),
    );
    monitor.update([web({ replicas: 1 })], [live('web', 0)]);
    await monitor.checkAll();
    assert.deepEqual(
      monitor.replicas('web').map((r) => [r.latencyMs, r.checkedAt]),
      [[250, 250]],
    );
  });
});

describe('health monitor: app status rules', () => {
  const cases: { name: string; app: MonitoredApp; containers: LiveContainer[]; want: HealthStatus }[] = [
    { name: 'replicas 0 is Suspended', app: web({ replicas: 0 }), containers: [live('web', 0)], want: { status: 'Suspended', message: 'scaled to 0 replicas' } },
    { name: 'no container is Missing', app: web(), containers: [], want: { status: 'Missing', message: 'no running replica (0/2)' } },
    {
      name: 'no running container is Missing, with what Docker says of a crashed one',
      app: web(),
      containers: [live('web', 0, { state: 'exited', status: 'Exited (1) 2 seconds ago' }), live('web', 1, { state: 'created', status: 'Created' })],
      want: { status: 'Missing', message: 'no running replica (0/2); env-web-0: Exited (1) 2 seconds ago' },
    },
    {
      name: 'only old-spec replicas running is Missing',
      app: web({ specHash: 'h2' }),
      containers: [live('web', 0), live('web', 1)],
      want: { status: 'Missing', message: 'no running replica (0/2)' },
    },
    {
      name: 'a crashed replica beside a healthy one is Degraded (Crashed)',
      app: web(),
      containers: [live('web', 0), live('web', 1, { state: 'restarting', status: 'Restarting (137) 1 second ago' })],
      want: { status: 'Degraded', reason: 'Crashed', message: '1/2 replicas not running: env-web-1: Restarting (137) 1 second ago' },
    },
    { name: 'fewer running than desired is Progressing', app: web({ replicas: 3 }), containers: [live('web', 0), live('web', 1)], want: { status: 'Progressing', message: '2/3 replicas running' } },
    {
      name: 'a replica of an old specHash is ignored',
      app: web(),
      containers: [live('web', 0), live('web', 1), live('web', 0, { specHash: 'h0', state: 'exited', status: 'Exited (1)' })],
      want: { status: 'Healthy', message: '2/2 replicas healthy' },
    },
    {
      name: "another app's containers do not count",
      app: web(),
      containers: [live('web', 0), live('api', 0), live('api', 1)],
      want: { status: 'Progressing', message: '1/2 replicas running' },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { monitor } = monitorOf(runtimeOf(() => ok));
      monitor.update([{ ...c.app, healthCheck: check({ successThreshold: 1 }) }], c.containers);
      await monitor.checkAll();
      assert.deepEqual(monitor.healthOf(c.app.app), c.want);
    });
  }

  it('never probes a replica of an old specHash', async () => {
    const runtime = runtimeOf(() => ok);
    const { monitor } = monitorOf(runtime);
    monitor.update([web({ replicas: 1 })], [live('web', 0), live('web', 0, { specHash: 'h0' })]);
    await monitor.checkAll();
    assert.deepEqual([...runtime.calls.keys()], ['web-0-h1']);
    assert.deepEqual(
      monitor.replicas('web').map((r) => r.containerId),
      ['web-0-h1'],
    );
  });

  it('is Unknown for an unwatched app, and forgets replicas and apps that left', async () => {
    const { monitor } = monitorOf(runtimeOf(() => ok));
    assert.deepEqual(monitor.healthOf('web'), { status: 'Unknown' });
    monitor.update([web()], [live('web', 0), live('web', 1)]);
    monitor.update([web()], [live('web', 1)]);
    assert.deepEqual(
      monitor.replicas('web').map((r) => r.name),
      ['env-web-1'],
    );
    monitor.update([], []);
    assert.deepEqual(monitor.healthOf('web'), { status: 'Unknown' });
    assert.deepEqual(monitor.replicas('web'), []);
  });

  it('a replica that comes back up after crashing starts unprobed again', async () => {
    const { monitor } = monitorOf(runtimeOf(() => ok));
    monitor.update([web({ replicas: 1, healthCheck: check({ successThreshold: 1 }) })], [live('web', 0)]);
    await monitor.checkAll();
    assert.equal(monitor.replicas('web')[0]?.healthy, true);
    monitor.update([web({ replicas: 1, healthCheck: check({ successThreshold: 1 }) })], [live('web', 0, { state: 'exited' })]);
    monitor.update([web({ replicas: 1, healthCheck: check({ successThreshold: 1 }) })], [live('web', 0)]);
    assert.equal(monitor.replicas('web')[0]?.healthy, undefined);
    assert.equal(monitor.healthOf('web').status, 'Progressing');
  });
});

describe('health monitor: apps without a health check (runtime state)', () => {
  type State = { state: ContainerState; restartCount: number };
  const cases: { name: string; states: State[]; want: HealthStatus }[] = [
    { name: 'Healthy once seen running', states: [], want: { status: 'Healthy', message: '1/1 replicas healthy' } },
    { name: 'still Healthy while it runs without restarting', states: [{ state: 'running', restartCount: 2 }, { state: 'running', restartCount: 2 }], want: { status: 'Healthy', message: '1/1 replicas healthy' } },
    {
      name: 'Degraded when its restart count rises',
      states: [{ state: 'running', restartCount: 2 }, { state: 'running', restartCount: 4 }],
      want: { status: 'Degraded', reason: 'HealthCheckFailed', message: '1/1 replicas failing: container restarted 2 time(s) since the last check, last exit code 0' },
    },
    {
      name: 'Degraded when the runtime says it is not running',
      states: [{ state: 'exited', restartCount: 0 }],
      want: { status: 'Degraded', reason: 'HealthCheckFailed', message: '1/1 replicas failing: container exited with exit code 0' },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { monitor } = monitorOf(scriptedRuntime({ state: (n) => c.states[n] ?? { state: 'running', restartCount: 0 } }));
      monitor.update([web({ replicas: 1, healthCheck: undefined })], [live('web', 0)]);
      await checks(monitor, c.states.length);
      assert.deepEqual(monitor.healthOf('web'), c.want);
    });
  }

  it('counts a throwing check as a failed probe with its error message', async () => {
    const runtime = { ...scriptedRuntime({}), runtimeState: () => Promise.reject(new Error('connect ENOENT /var/run/docker.sock')) };
    const { monitor } = monitorOf(runtime);
    monitor.update([web({ replicas: 1, healthCheck: undefined })], [live('web', 0)]);
    await monitor.checkAll();
    assert.deepEqual(monitor.healthOf('web'), { status: 'Degraded', reason: 'HealthCheckFailed', message: '1/1 replicas failing: connect ENOENT /var/run/docker.sock' });
    assert.equal(monitor.replicas('web')[0]?.ok, false);
  });
});

describe('health monitor: onChange', () => {
  it('fires once per change of status or message, and not on an unchanged recompute', async () => {
    const { monitor, changes } = monitorOf(runtimeOf(() => ok));
    const app = web({ healthCheck: check({ successThreshold: 1 }) });
    monitor.update([app], [live('web', 0)]);
    monitor.update([app], [live('web', 0)]);
    await monitor.checkAll();
    await monitor.checkAll();
    monitor.update([app], [live('web', 0), live('web', 1)]);
    await monitor.checkAll();
    assert.deepEqual(
      changes.map((c) => [c.app, c.previous?.message, c.next.status, c.next.message]),
      [
        ['web', undefined, 'Progressing', '1/2 replicas running'],
        ['web', '1/2 replicas running', 'Progressing', '1/2 replicas healthy, 1 awaiting health check'],
        ['web', '1/2 replicas healthy, 1 awaiting health check', 'Healthy', '2/2 replicas healthy'],
      ],
    );
  });

  it('survives a throwing listener and reports it', async () => {
    const warned: unknown[] = [];
    const { monitor } = monitorOf(runtimeOf(() => ok), {
      onChange: () => {
        throw new Error('listener bug');
      },
      log: { warn: ((obj: unknown) => void warned.push(obj)) as never },
    });
    monitor.update([web({ replicas: 1 })], [live('web', 0)]);
    await checks(monitor, 2);
    assert.equal(monitor.healthOf('web').status, 'Healthy');
    assert.deepEqual(warned[0], { app: 'web', err: 'listener bug' });
  });
});

describe('health monitor: scheduling and concurrency', () => {
  it('start() probes every interval with a fake scheduler, and stop() cancels', async () => {
    const runtime = runtimeOf(() => ok);
    const timers = fakeScheduler();
    const { monitor } = monitorOf(runtime, { schedule: timers.schedule });
    monitor.update([web({ replicas: 1, healthCheck: check({ intervalSeconds: 7 }) })], [live('web', 0)]);
    monitor.start();
    monitor.start();
    assert.deepEqual(
      timers.pending().map((t) => t.ms),
      [0],
    );
    await timers.fire();
    await timers.fire();
    assert.equal(runtime.calls.get('web-0-h1'), 2);
    assert.equal(monitor.healthOf('web').status, 'Healthy');
    assert.deepEqual(
      timers.pending().map((t) => t.ms),
      [7000],
    );
    await monitor.stop();
    assert.deepEqual(timers.pending(), []);
    await timers.fire();
    assert.equal(runtime.calls.get('web-0-h1'), 2);
  });

  it('arms replicas that arrive while started, cancels those that leave, and re-reads state every 5 s without a health check', async () => {
    const timers = fakeScheduler();
    const { monitor } = monitorOf(scriptedRuntime({}), { schedule: timers.schedule });
    const app = web({ healthCheck: undefined });
    monitor.update([app], [live('web', 0)]);
    monitor.start();
    await timers.fire();
    monitor.update([app], [live('web', 1)]);
    assert.equal(timers.timers[1]?.cancelled, true);
    assert.deepEqual(
      timers.pending().map((t) => t.ms),
      [0],
    );
    await timers.fire();
    assert.deepEqual(
      timers.pending().map((t) => t.ms),
      [5000],
    );
    await monitor.stop();
  });

  it('stop() waits for the probes in flight', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const timers = fakeScheduler();
    const { monitor } = monitorOf(
      runtimeOf(async () => {
        await gate;
        return ok;
      }),
      { schedule: timers.schedule },
    );
    monitor.update([web({ replicas: 1 })], [live('web', 0)]);
    monitor.start();
    await timers.fire();
    let stopped = false;
    const stopping = monitor.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false);
    release();
    await stopping;
    assert.equal(monitor.replicas('web')[0]?.ok, true);
    assert.deepEqual(timers.pending(), []);
  });

  it('checkAll probes in parallel but never more than 16 at once', async () => {
    const { runtime, peak } = overlapCounter();
    const { monitor } = monitorOf(runtime);
    const containers = Array.from({ length: 40 }, (_, i) => live('web', i));
    monitor.update([web({ replicas: 40 })], containers);
    await monitor.checkAll();
    assert.equal(peak(), 16);
    assert.equal(runtime.calls.size, 40);
  });

  it('never overlaps probes of one replica', async () => {
    const { runtime, peak } = overlapCounter();
    const timers = fakeScheduler();
    const { monitor } = monitorOf(runtime, { schedule: timers.schedule });
    monitor.update([web({ replicas: 1 })], [live('web', 0)]);
    monitor.start();
    for (const t of timers.pending()) t.fn();
    await Promise.all([monitor.checkAll(), monitor.checkAll()]);
    assert.equal(peak(), 1);
    assert.equal(runtime.calls.get('web-0-h1'), 1);
    await monitor.stop();
  });
});
