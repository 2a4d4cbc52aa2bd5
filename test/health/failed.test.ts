import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthMonitor, type FailedReplica, type MonitoredApp } from '../../src/health/monitor.js';
import type { HealthCheckSpec } from '../../src/render/types.js';
import type { ExecResult, LiveContainer, RuntimeDriver } from '../../src/runtime/types.js';
import { fakeClock, scriptedRuntime } from '../support/fakes.js';

// The monitor's verdict "this replica failed failureThreshold probes in a row", which the controller acts on.

const check: HealthCheckSpec = { exec: { command: ['check'] }, intervalSeconds: 10, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1, startPeriodSeconds: 0, timeoutTotalSeconds: 60 };
const web: MonitoredApp = { app: 'web', specHash: 'h1', replicas: 2, healthCheck: check };

function live(app: string, n: number, over: Partial<LiveContainer> = {}): LiveContainer {
  return { id: `${app}-${n}`, name: `env-${app}-${n}`, env: 'env', app, revision: 'abc', specHash: 'h1', replica: n, spec: '', image: 'demo:1', state: 'running', status: 'Up', ports: [], created: 1, host: 'local', ...over };
}

/** Exec answers per container id, switchable during the test; counts probes per container. */
function runtimeOf(answers: Map<string, ExecResult>): RuntimeDriver & { probes: Map<string, number> } {
  const probes = new Map<string, number>();
  return {
    ...scriptedRuntime({}),
    probes,
    exec: async (id: string) => {
      probes.set(id, (probes.get(id) ?? 0) + 1);
      return answers.get(id) ?? { exitCode: 0, output: '' };
    },
  };
}

const ok: ExecResult = { exitCode: 0, output: '' };
const fail: ExecResult = { exitCode: 1, output: 'db down' };

async function rounds(monitor: HealthMonitor, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await monitor.checkAll();
}

describe('health monitor: failed replicas', () => {
  it('announces a replica once, when its failures in a row reach failureThreshold; lists it while it fails', async () => {
    const answers = new Map([['web-1', fail]]);
    const monitor = new HealthMonitor({ runtime: runtimeOf(answers), clock: fakeClock() });
    const announced: FailedReplica[] = [];
    const off = monitor.onReplicaFailed((r) => announced.push(r));
    monitor.update([web], [live('web', 0), live('web', 1)]);

    await rounds(monitor, 2);
    assert.deepEqual([announced, monitor.failedReplicas()], [[], []], 'two failures of three');
    await rounds(monitor, 1);
    const expected: FailedReplica = { app: 'web', containerId: 'web-1', name: 'env-web-1', failures: 3, message: 'exec check → exit 1: db down' };
    assert.deepEqual(announced, [expected]);
    await rounds(monitor, 3);
    assert.equal(announced.length, 1, 'once per turn, not per failed probe');
    assert.deepEqual(monitor.failedReplicas().map((r) => [r.name, r.failures]), [['env-web-1', 6]]);

    // Recovers, then fails again: a new turn.
    answers.set('web-1', ok);
    await rounds(monitor, 1);
    assert.deepEqual(monitor.failedReplicas(), []);
    answers.set('web-1', fail);
    await rounds(monitor, 3);
    assert.equal(announced.length, 2);
    off();
    answers.set('web-1', ok);
    await rounds(monitor, 1);
    answers.set('web-1', fail);
    await rounds(monitor, 3);
    assert.equal(announced.length, 2, 'unsubscribed');
  });

  it('never lists replicas of apps without a health check, nor replicas that stopped', async () => {
    const runtime = { ...scriptedRuntime({ state: () => ({ state: 'exited', restartCount: 0 }) }) };
    const monitor = new HealthMonitor({ runtime, clock: fakeClock() });
    monitor.update([{ app: 'docs', specHash: 'h1', replicas: 1 }], [live('docs', 0)]);
    await rounds(monitor, 3);
    assert.equal(monitor.healthOf('docs').status, 'Degraded', 'the state check still finds it down');
    assert.deepEqual(monitor.failedReplicas(), [], 'but there is no health check to replace it for');

    const answers = new Map([['web-0', fail]]);
    const checked = new HealthMonitor({ runtime: runtimeOf(answers), clock: fakeClock() });
    checked.update([web], [live('web', 0)]);
    await rounds(checked, 3);
    assert.equal(checked.failedReplicas().length, 1);
    checked.update([web], [live('web', 0, { state: 'exited' })]);
    assert.deepEqual(checked.failedReplicas(), [], 'a stopped replica is drift, not a failing one');
  });

  it('probeNow probes one watched replica at once and ignores unknown ids', async () => {
    const runtime = runtimeOf(new Map());
    const monitor = new HealthMonitor({ runtime, clock: fakeClock() });
    monitor.update([web], [live('web', 0), live('web', 1)]);
    await monitor.probeNow('web-1');
    await monitor.probeNow('nope');
    assert.deepEqual([...runtime.probes], [['web-1', 1]]);
  });

  it('a throwing listener is reported and does not stop the others', async () => {
    const warnings: unknown[] = [];
    const monitor = new HealthMonitor({ runtime: runtimeOf(new Map([['web-0', fail]])), clock: fakeClock(), log: { warn: (o: unknown) => void warnings.push(o) } });
    const seen: string[] = [];
    monitor.onReplicaFailed(() => {
      throw new Error('boom');
    });
    monitor.onReplicaFailed((r) => seen.push(r.name));
    monitor.update([web], [live('web', 0)]);
    await rounds(monitor, 3);
    assert.deepEqual(seen, ['env-web-0']);
    assert.equal(warnings.length, 1);
  });
});
