import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { applyPlan } from '../../src/apply/apply.js';
import type { ApplyDeps, ApplyReport } from '../../src/apply/types.js';
import { BerthError } from '../../src/errors.js';
import { plan } from '../../src/plan/plan.js';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import type { DesiredState } from '../../src/render/types.js';
import type { ContainerCreateSpec, LiveContainer, ProxyConfig } from '../../src/runtime/types.js';
import { systemClock } from '../../src/util/clock.js';
import { MemoryProxy, MemoryRuntime } from '../support/memory.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

// Units of the apply scheduler (dependency waves, parallelism) and of batched proxy syncs, on the
// in-memory drivers with a real clock: starting a container takes 30 ms, probes run every 20 ms.

const HEALTH = '  healthCheck: { exec: { command: [check] }, intervalSeconds: 0.02, timeoutSeconds: 1, failureThreshold: 1 }\n';

function desired(apps: Record<string, string>): DesiredState {
  const files: Record<string, string> = { 'berth.yaml': REPO_YAML };
  for (const [name, extra] of Object.entries(apps)) files[`apps/${name}.yaml`] = appYaml(name, `  route: { host: ${name}.test }\n${extra.includes('healthCheck') ? '' : HEALTH}${extra}`);
  const r = renderEnvironment(memoryRevision(files), 'production', { secrets: envSecretSource({}) });
  if (!r.ok) throw new Error(r.problems[0]!.message);
  return r.state;
}

/** Records when each app's first container starts and when the app's route first serves, and how many starts overlap. */
class TimedRuntime extends MemoryRuntime {
  inFlight = 0;
  maxInFlight = 0;
  readonly started = new Map<string, number>();
  override async run(spec: ContainerCreateSpec): Promise<LiveContainer> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const app = spec.labels['berth.app']!;
    if (!this.started.has(app)) this.started.set(app, performance.now());
    try {
      await delay(30);
      return await super.run(spec);
    } finally {
      this.inFlight--;
    }
  }
}

/** Serves the first time each app has a server; refuses (as `nginx -t` would) any config with a route of an app in `refuse`. */
class TimedProxy extends MemoryProxy {
  readonly served = new Map<string, number>();
  readonly applies: string[][] = [];
  constructor(readonly refuse = new Set<string>()) {
    super();
  }
  override async apply(config: ProxyConfig): Promise<{ changed: boolean }> {
    this.applies.push(config.routes.map((r) => r.app));
    const bad = config.routes.find((r) => this.refuse.has(r.app));
    if (bad) throw new BerthError('E_NGINX_CONFIG', `nginx rejected the new config: unknown directive in route of ${bad.app}`);
    await delay(5);
    const result = await super.apply(config);
    for (const r of config.routes) if (r.servers.length && !this.served.has(r.app)) this.served.set(r.app, performance.now());
    return result;
  }
}

async function applyAll(runtime: MemoryRuntime, proxy: MemoryProxy, state: DesiredState, over: Partial<ApplyDeps> = {}): Promise<ApplyReport> {
  const live = { env: 'production', containers: await runtime.list(), proxy: await proxy.read() };
  return applyPlan(plan(state, live), { runtime, proxy, clock: systemClock, ...over });
}

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `app${String(i).padStart(2, '0')}`);

describe('apply in dependency waves', () => {
  it('runs independent apps at once, never more than --parallelism', async () => {
    const runtime = new TimedRuntime();
    const report = await applyAll(runtime, new TimedProxy(), desired(Object.fromEntries(names(20).map((n) => [n, '']))), { parallelism: 4 });
    assert.equal(report.result, 'Succeeded');
    assert.equal(runtime.maxInFlight, 4);
    const serial = await applyAll(new TimedRuntime(), new TimedProxy(), desired({ a: '', b: '', c: '' }), { parallelism: 1 });
    assert.equal(serial.result, 'Succeeded');
  });

  it('starts a dependent only after its dependency is healthy and serving', async () => {
    const runtime = new TimedRuntime();
    const proxy = new TimedProxy();
    const apps = { db: '', api: '  dependsOn: [db]\n', web: '  dependsOn: [api]\n', worker: '  dependsOn: [db]\n', docs: '' };
    const report = await applyAll(runtime, proxy, desired(apps), { parallelism: 8 });
    assert.equal(report.result, 'Succeeded');
    for (const [app, dep] of [['api', 'db'], ['web', 'api'], ['worker', 'db']] as const) {
      assert.ok(runtime.started.get(app)! >= proxy.served.get(dep)!, `${app} started before ${dep} served`);
    }
    // Independent apps did not wait: docs started with db, not after the chain.
    assert.ok(runtime.started.get('docs')! < proxy.served.get('db')!);
    // The report lists apps in the plan's (dependency) order, whatever order they finished in.
    assert.deepEqual(report.apps.map((a) => a.app), ['db', 'api', 'docs', 'web', 'worker']);
  });

  it('one failing app among 20 leaves the 19 others applied and skips only its dependents', async () => {
    const runtime = new TimedRuntime((c) => c.app !== 'app07');
    const apps: Record<string, string> = Object.fromEntries(names(20).map((n) => [n, '']));
    apps['app12'] = '  dependsOn: [app07]\n';
    const report = await applyAll(runtime, new TimedProxy(), desired(apps), { parallelism: 8 });
    const by = new Map(report.apps.map((a) => [a.app, a]));
    assert.equal(by.get('app07')?.result, 'RolledBack');
    assert.equal(by.get('app12')?.result, 'Skipped');
    assert.equal(by.get('app12')?.reason, 'DependencyFailed');
    assert.equal(report.apps.filter((a) => a.result === 'Succeeded').length, 18);
    assert.equal(runtime.running('app07').length, 0, 'the failed app left no container running');
    assert.equal(runtime.of('app12').length, 0);
  });
});

describe('batched proxy changes', () => {
  it('routes 20 new apps with a handful of reloads, not 20', async () => {
    const proxy = new TimedProxy();
    const report = await applyAll(new TimedRuntime(), proxy, desired(Object.fromEntries(names(20).map((n) => [n, '']))), { parallelism: 20 });
    assert.equal(report.result, 'Succeeded');
    assert.equal(proxy.config.routes.length, 20);
    assert.ok(proxy.config.routes.every((r) => r.servers.length === 1));
    assert.ok(report.reloads <= 4, `${report.reloads} reloads`);
    assert.equal(report.reloads, proxy.reloads);
  });

  it('never publishes an app whose rollout has not switched yet', async () => {
    const proxy = new TimedProxy();
    const runtime = new TimedRuntime((c) => c.app !== 'slow' || performance.now() - t0 > 400);
    const t0 = performance.now();
    await applyAll(runtime, proxy, desired({ fast: '', slow: '  healthCheck: { exec: { command: [check] }, intervalSeconds: 0.05, failureThreshold: 20 }\n' }));
    const firstWithFast = proxy.applies.find((a) => a.includes('fast'));
    assert.deepEqual(firstWithFast, ['fast'], 'the slow app is not in the config the fast app published');
  });

  it('when nginx refuses a batch, fails only the culprit and applies the rest', async () => {
    const proxy = new TimedProxy(new Set(['bad']));
    const runtime = new TimedRuntime();
    const report = await applyAll(runtime, proxy, desired({ a: '', b: '', bad: '', c: '' }), { parallelism: 8 });
    const by = new Map(report.apps.map((a) => [a.app, a]));
    assert.equal(by.get('bad')?.result, 'Failed');
    assert.equal(by.get('bad')?.reason, 'ProxyRejected');
    assert.match(by.get('bad')?.error ?? '', /route of bad/);
    for (const ok of ['a', 'b', 'c']) assert.equal(by.get(ok)?.result, 'Succeeded', `${ok}: ${by.get(ok)?.error}`);
    assert.deepEqual(proxy.config.routes.map((r) => r.app).sort(), ['a', 'b', 'c']);
    assert.equal(runtime.of('bad').length, 0, 'the refused app left no container behind');
  });
});
