import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitHealthy } from '../../src/health/gate.js';
import type { LiveContainer } from '../../src/runtime/types.js';
import type { HealthCheckSpec } from '../../src/render/types.js';
import { fakeClock, scriptedRuntime } from '../support/fakes.js';

const container = { id: 'c1', name: 'c1', ports: [] } as unknown as LiveContainer;
const exec = (over: Partial<HealthCheckSpec> = {}) => ({ exec: { command: ['check'] }, intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 2, startPeriodSeconds: 0, timeoutTotalSeconds: 60, ...over }) as never;

describe('health gate (fake clock and scripted runtime: units only)', () => {
  it('needs successThreshold consecutive passes', async () => {
    const clock = fakeClock();
    const runtime = scriptedRuntime({ exec: (n) => ({ exitCode: [1, 0, 1, 0, 0][n] ?? 0, output: '' }) });
    const r = await waitHealthy(exec(), container, runtime, clock);
    assert.equal(r.healthy, true);
  });
  it('fails after failureThreshold failures, counting at most one per interval', async () => {
    const clock = fakeClock();
    const r = await waitHealthy(exec(), container, scriptedRuntime({ exec: () => ({ exitCode: 1, output: 'nope' }) }), clock);
    assert.equal(r.healthy, false);
    assert.match((r as { reason: string }).reason, /failed 3 times in a row: exec check → exit 1: nope/);
    assert.ok(clock.t >= 2000, `gave the app ${clock.t} ms`);
  });
  it('ignores failures during the start period', async () => {
    const clock = fakeClock();
    const runtime = scriptedRuntime({ exec: () => ({ exitCode: clock.t < 10_000 ? 1 : 0, output: '' }) });
    const r = await waitHealthy(exec({ startPeriodSeconds: 10, successThreshold: 1 }), container, runtime, clock);
    assert.equal(r.healthy, true);
  });
  it('never calls a crash-looping container healthy', async () => {
    const clock = fakeClock();
    const runtime = scriptedRuntime({ state: (n) => ({ state: 'running', restartCount: n > 1 ? 1 : 0 }), exec: () => ({ exitCode: 1, output: '' }) });
    const r = await waitHealthy(exec(), container, runtime, clock);
    assert.equal(r.healthy, false);
    assert.match((r as { reason: string }).reason, /crash-looping/);
  });
  it('gives up after timeoutTotalSeconds', async () => {
    const clock = fakeClock();
    const runtime = scriptedRuntime({ exec: (n) => ({ exitCode: n % 2, output: '' }) });
    const r = await waitHealthy(exec({ timeoutTotalSeconds: 5 }), container, runtime, clock);
    assert.equal(r.healthy, false);
    assert.match((r as { reason: string }).reason, /not healthy after 5s/);
  });
});
