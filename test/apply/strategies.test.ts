import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyPlan } from '../../src/apply/apply.js';
import type { LiveContainer } from '../../src/runtime/types.js';
import { plan } from '../../src/plan/plan.js';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import type { DesiredState } from '../../src/render/types.js';
import { fakeClock } from '../support/fakes.js';
import { MemoryProxy, MemoryRuntime } from '../support/memory.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

// Unit tests of the strategy algorithms with an in-memory runtime and proxy (the real Docker and
// nginx paths are covered by test/integration). They check invariants at every step.

function desired(extra: string, replicas = 4): DesiredState {
  const files = { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', `  replicas: ${replicas}\n  route: { host: web.test, drainSeconds: 1 }\n  healthCheck: { exec: { command: [check] }, intervalSeconds: 0.1, failureThreshold: 2 }\n${extra}`) };
  const r = renderEnvironment(memoryRevision(files), 'production', { secrets: envSecretSource({}) });
  if (!r.ok) throw new Error(r.problems[0]!.message);
  return r.state;
}

async function converge(runtime: MemoryRuntime, proxy: MemoryProxy, state: DesiredState) {
  const live = { env: 'production', containers: await runtime.list(), proxy: await proxy.read() };
  return applyPlan(plan(state, live), { runtime, proxy, clock: fakeClock() });
}

async function deployed(strategy: string, healthy?: (c: LiveContainer) => boolean) {
  const runtime = new MemoryRuntime(healthy);
  const proxy = new MemoryProxy();
  const v1 = desired(`  strategy: ${strategy}\n  args: [v1]\n`);
  assert.equal((await converge(runtime, proxy, v1)).result, 'Succeeded');
  runtime.maxRunning = 0;
  proxy.minServing = Infinity;
  proxy.weights = [];
  return { runtime, proxy, v2: desired(`  strategy: ${strategy}\n  args: [v2]\n`) };
}

describe('rollout strategies (in-memory runtime and proxy)', () => {
  const rolling: [number, number][] = [[1, 0], [2, 0], [0, 1], [1, 1], [4, 0]];
  for (const [surge, unavailable] of rolling) {
    it(`rolling maxSurge ${surge} maxUnavailable ${unavailable}: bounds hold at every step`, async () => {
      const { runtime, proxy, v2 } = await deployed(`{ type: rolling, maxSurge: ${surge}, maxUnavailable: ${unavailable} }`);
      const report = await converge(runtime, proxy, v2);
      assert.equal(report.result, 'Succeeded');
      assert.ok(runtime.maxRunning <= 4 + surge, `ran ${runtime.maxRunning} > ${4 + surge}`);
      assert.ok(proxy.minServing >= 4 - unavailable, `served by ${proxy.minServing} < ${4 - unavailable}`);
      const web = runtime.running('web');
      assert.equal(web.length, 4);
      assert.ok(web.every((c) => c.specHash === v2.apps[0]!.specHash));
      assert.equal(runtime.containers.size, 4, 'old containers removed after success');
      assert.deepEqual(proxy.config.routes[0]!.servers.map((s) => s.containerId).sort(), web.map((c) => c.id).sort());
    });
  }

  it('blue-green: the whole new set is healthy before one switch', async () => {
    const { runtime, proxy, v2 } = await deployed('{ type: blue-green }');
    const reloadsBefore = proxy.reloads;
    const report = await converge(runtime, proxy, v2);
    assert.equal(report.result, 'Succeeded');
    assert.equal(proxy.reloads - reloadsBefore, 1, 'one reload');
    assert.equal(runtime.maxRunning, 8);
    assert.equal(proxy.minServing, 4);
  });

  it('canary: steps through weighted upstreams, then promotes', async () => {
    const { runtime, proxy, v2 } = await deployed('{ type: canary, steps: [{ weight: 25, pauseSeconds: 1 }, { weight: 50, pauseSeconds: 1 }] }');
    const report = await converge(runtime, proxy, v2);
    assert.equal(report.result, 'Succeeded');
    // 25 %: 1 canary weighing 25×4 against 4 old weighing 75×1 each (100 : 300).
    assert.equal(proxy.weights[0]?.filter((w) => w === 100).length, 1);
    assert.equal(proxy.weights[0]?.filter((w) => w === 75).length, 4);
    // 50 %: 2 canaries weighing 50×4 against 4 old weighing 50×2 each (400 : 400).
    assert.equal(proxy.weights[1]?.filter((w) => w === 200).length, 2);
    assert.equal(proxy.weights[1]?.filter((w) => w === 100).length, 4);
    assert.equal(runtime.running('web').length, 4);
    assert.ok(proxy.config.routes[0]!.servers.every((s) => s.weight === undefined), 'weights cleared after promotion');
  });

  it('recreate: old stop before new start', async () => {
    const { runtime, proxy, v2 } = await deployed('{ type: recreate }');
    assert.equal((await converge(runtime, proxy, v2)).result, 'Succeeded');
    assert.equal(runtime.maxRunning, 4);
  });

  it('rolling: a replica failing its gate mid-rollout rolls back to the full old set', async () => {
    let started = 0;
    const v2hash = desired('  strategy: { type: rolling, maxSurge: 1, maxUnavailable: 0 }\n  args: [v2]\n').apps[0]!.specHash;
    const failingThird = new Map<string, boolean>();
    const { runtime, proxy, v2 } = await deployed('{ type: rolling, maxSurge: 1, maxUnavailable: 0 }', (c) => {
      if (c.specHash !== v2hash) return true;
      if (!failingThird.has(c.id)) failingThird.set(c.id, ++started < 3);
      return failingThird.get(c.id)!;
    });
    const oldIds = runtime.running('web').map((c) => c.id).sort();
    const report = await converge(runtime, proxy, v2);
    assert.equal(report.result, 'RolledBack');
    assert.match(report.apps[0]!.error ?? '', /failed its health check/);
    const web = runtime.running('web');
    assert.deepEqual(web.map((c) => c.id).sort(), oldIds, 'the old replicas run again');
    assert.equal(runtime.containers.size, 4, 'new replicas removed');
    assert.deepEqual(proxy.config.routes[0]!.servers.map((s) => s.containerId).sort(), oldIds, 'nginx back on the old set');
  });

  it('resumes from a half-finished rollout: no duplicates, old extras retired', async () => {
    const { runtime, proxy, v2 } = await deployed('{ type: rolling, maxSurge: 1, maxUnavailable: 0 }');
    // A killed apply left one new replica running (never routed) and one created-but-dead.
    const { toCreateSpec } = await import('../../src/apply/container-spec.js');
    const empty = { env: 'production', containers: [], proxy: { env: 'production', routes: [] } };
    const template = plan(v2, empty).apps[0]!.desired!.template;
    await runtime.run(toCreateSpec(template, 0));
    const dead = await runtime.run(toCreateSpec(template, 1));
    await runtime.stop(dead.id);
    const report = await converge(runtime, proxy, v2);
    assert.equal(report.result, 'Succeeded');
    assert.deepEqual(runtime.running('web').map((c) => c.replica).sort(), [0, 1, 2, 3]);
    assert.equal(runtime.containers.size, 4);
  });
});
