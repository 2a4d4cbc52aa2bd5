import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { BerthError } from '../../../src/errors.js';
import { BUILTIN_PLUGINS } from '../../../src/plugins/builtin/index.js';
import { create, decide, DEFAULTS, manifest, windowAverages, type Thresholds } from '../../../src/plugins/builtin/metrics-scaler.js';
import { discoverPlugins } from '../../../src/plugins/catalog.js';
import type { AppStats, PluginInstance, ScalerInput } from '../../../src/plugins/types.js';
import { compilePluginSchema } from '../../../src/render/schema.js';
import { fakePluginContext, type FakePluginContext } from '../../support/plugin-context.js';
import { hostHarness, pluginConfig } from '../../support/plugin-host.js';
import { ROOT } from '../../support/repo.js';

const BASE = { apps: ['web'], scaleOut: { cpuPercent: 70 }, scaleIn: { cpuPercent: 30 } };

describe('metrics-scaler: config schema', () => {
  const validate = compilePluginSchema(manifest.configSchema!);
  const cases: { name: string; config: unknown; ok: boolean }[] = [
    { name: 'one app, cpu both ways', config: BASE, ok: true },
    { name: 'every metric, "*", every setting', config: { apps: ['*'], scaleOut: { cpuPercent: 150, memoryPercent: 80, requestsPerSecondPerReplica: 50, p95Ms: 300 }, scaleIn: { cpuPercent: 20, memoryPercent: 40, requestsPerSecondPerReplica: 5, p95Ms: 50 }, windowSeconds: 120, cooldownSeconds: 0, maxStep: 3, intervalSeconds: 30 }, ok: true },
    { name: 'no apps', config: { ...BASE, apps: [] }, ok: false },
    { name: 'an app name that is no app name', config: { ...BASE, apps: ['Web'] }, ok: false },
    { name: 'no scaleIn', config: { apps: ['web'], scaleOut: { cpuPercent: 70 } }, ok: false },
    { name: 'an empty scaleOut', config: { ...BASE, scaleOut: {} }, ok: false },
    { name: 'an unknown metric', config: { ...BASE, scaleOut: { cpu: 70 } }, ok: false },
    { name: 'a threshold of 0', config: { ...BASE, scaleIn: { cpuPercent: 0 } }, ok: false },
    { name: 'memory above 100%', config: { ...BASE, scaleOut: { memoryPercent: 120 } }, ok: false },
    { name: 'a threshold as a string', config: { ...BASE, scaleOut: { cpuPercent: '70' } }, ok: false },
    { name: 'maxStep 0', config: { ...BASE, maxStep: 0 }, ok: false },
    { name: 'a fractional maxStep', config: { ...BASE, maxStep: 1.5 }, ok: false },
    { name: 'intervalSeconds above the loop ceiling (30)', config: { ...BASE, intervalSeconds: 31 }, ok: false },
    { name: 'a negative cooldown', config: { ...BASE, cooldownSeconds: -1 }, ok: false },
    { name: 'an unknown field', config: { ...BASE, cooldown: 60 }, ok: false },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'rejects'} ${c.name}`, () => assert.equal(validate(structuredClone(c.config)), c.ok, JSON.stringify(validate.errors)));
  }

  it('fills in the defaults: window 60 s, cooldown 300 s, step 1, every 15 s', () => {
    const config: Record<string, unknown> = structuredClone(BASE);
    assert.ok(validate(config));
    assert.deepEqual({ windowSeconds: config.windowSeconds, cooldownSeconds: config.cooldownSeconds, maxStep: config.maxStep, intervalSeconds: config.intervalSeconds }, DEFAULTS);
  });

  it('is registered as a built-in scaler', () => {
    assert.equal(BUILTIN_PLUGINS['metrics-scaler']?.create, create);
    assert.deepEqual(manifest.provides, ['scaler']);
  });

  const rejected: { name: string; config: Record<string, unknown>; field: string }[] = [
    { name: 'a scale-in threshold at its scale-out one (it would flap)', config: { ...BASE, scaleIn: { cpuPercent: 70 } }, field: 'scaleIn.cpuPercent' },
    { name: 'a window shorter than the interval', config: { ...BASE, windowSeconds: 10, intervalSeconds: 15 }, field: 'windowSeconds' },
    { name: 'an unknown metric (when render did not validate it)', config: { ...BASE, scaleOut: { rps: 5 } }, field: 'scaleOut.rps' },
  ];
  for (const c of rejected) {
    it(`create refuses ${c.name}`, () => {
      const fake = fakePluginContext(c.config);
      fake.ctx.appStats = async () => ({ replicas: 1, source: [] });
      assert.throws(() => create(fake.ctx), (err: unknown) => err instanceof BerthError && err.code === 'E_PLUGIN' && err.context.field === c.field);
    });
  }

  it('create refuses to run without app stats (a worker thread gets none)', () => {
    assert.throws(() => create(fakePluginContext(BASE).ctx), (err: unknown) => err instanceof BerthError && err.code === 'E_PLUGIN' && err.context.field === 'isolation');
  });
});

describe('metrics-scaler: windowAverages', () => {
  it('averages each metric over the readings that have it', () => {
    const avg = windowAverages([
      { at: 0, values: { cpuPercent: 90, requestsPerSecondPerReplica: 10 } },
      { at: 1, values: { cpuPercent: 30 } },
      { at: 2, values: { cpuPercent: 60, requestsPerSecondPerReplica: 30 } },
    ]);
    assert.deepEqual(avg, { cpuPercent: 60, requestsPerSecondPerReplica: 20 });
  });

  it('is empty without readings', () => assert.deepEqual(windowAverages([]), {}));
});

describe('metrics-scaler: decide (the policy on window averages)', () => {
  const cfg = (over: Partial<Parameters<typeof decide>[0]> = {}) => ({ scaleOut: { cpuPercent: 70, memoryPercent: 80 }, scaleIn: { cpuPercent: 30, memoryPercent: 40 }, maxStep: 1, windowSeconds: 60, ...over });
  const cases: { name: string; config?: Partial<Parameters<typeof decide>[0]>; avg: Thresholds; current: number; min?: number; max?: number; replicas: number; change: boolean; reason: RegExp }[] = [
    { name: 'cpu above: one more', avg: { cpuPercent: 83, memoryPercent: 50 }, current: 2, replicas: 3, change: true, reason: /^cpu 83% > 70% over 60 s$/ },
    { name: 'ANY: memory alone above scales out', avg: { cpuPercent: 10, memoryPercent: 90 }, current: 2, replicas: 3, change: true, reason: /^memory 90% > 80% over 60 s$/ },
    { name: 'both above: both named', avg: { cpuPercent: 75, memoryPercent: 85 }, current: 1, replicas: 2, change: true, reason: /^cpu 75% > 70%, memory 85% > 80% over 60 s$/ },
    { name: 'at max: holds, saying so', avg: { cpuPercent: 99 }, current: 5, replicas: 5, change: false, reason: /but at max 5/ },
    { name: 'proportional: cpu at 2x on 2 asks for 4, maxStep 3 allows it', config: { maxStep: 3 }, avg: { cpuPercent: 140 }, current: 2, replicas: 4, change: true, reason: /cpu 140% > 70%/ },
    { name: 'maxStep caps the proportional ask', config: { maxStep: 1 }, avg: { cpuPercent: 140 }, current: 2, replicas: 3, change: true, reason: /cpu 140%/ },
    { name: 'max caps the step', config: { maxStep: 10 }, avg: { cpuPercent: 700 }, current: 2, max: 4, replicas: 4, change: true, reason: /cpu 700%/ },
    { name: 'p95 above: one step at most (latency does not split by replicas)', config: { maxStep: 5, scaleOut: { p95Ms: 200 }, scaleIn: { p95Ms: 50 } }, avg: { p95Ms: 800 }, current: 1, replicas: 2, change: true, reason: /^p95 800 ms > 200 ms over 60 s$/ },
    { name: 'ALL: cpu below but memory not: holds', avg: { cpuPercent: 10, memoryPercent: 50 }, current: 3, replicas: 3, change: false, reason: /within thresholds \(memory 50% ≥ 40%\)/ },
    { name: 'ALL below: one fewer', avg: { cpuPercent: 10, memoryPercent: 20 }, current: 3, replicas: 2, change: true, reason: /^cpu 10% < 30%, memory 20% < 40% over 60 s$/ },
    { name: 'in by up to maxStep', config: { maxStep: 2 }, avg: { cpuPercent: 5, memoryPercent: 20 }, current: 4, replicas: 2, change: true, reason: /cpu 5% < 30%/ },
    { name: 'at min: holds', avg: { cpuPercent: 5, memoryPercent: 5 }, current: 1, replicas: 1, change: false, reason: /but at min 1/ },
    { name: 'a scale-in that would exceed scaleOut at once is not made', config: { scaleOut: { cpuPercent: 70 }, scaleIn: { cpuPercent: 50 } }, avg: { cpuPercent: 45 }, current: 2, replicas: 2, change: false, reason: /but on 1 replica cpu 90% > 70%/ },
    { name: 'the largest step that stays under scaleOut', config: { maxStep: 3, scaleOut: { cpuPercent: 70 }, scaleIn: { cpuPercent: 35 } }, avg: { cpuPercent: 30 }, current: 4, replicas: 2, change: true, reason: /cpu 30% < 35%/ },
    { name: 'a scale-in metric without data neither blocks nor counts', config: { scaleOut: { cpuPercent: 70 }, scaleIn: { cpuPercent: 30, requestsPerSecondPerReplica: 5 } }, avg: { cpuPercent: 5 }, current: 2, replicas: 1, change: true, reason: /^cpu 5% < 30% over 60 s \(no data: requests\/s per replica\)$/ },
    { name: 'no scale-in metric measured: holds', config: { scaleOut: { requestsPerSecondPerReplica: 50 }, scaleIn: { requestsPerSecondPerReplica: 5 } }, avg: { cpuPercent: 1 }, current: 2, replicas: 2, change: false, reason: /no scale-in metric measured/ },
    { name: 'a scale-out metric without data never scales out', config: { scaleOut: { p95Ms: 100 }, scaleIn: { cpuPercent: 5 } }, avg: { cpuPercent: 50 }, current: 2, replicas: 2, change: false, reason: /within thresholds/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = decide(cfg(c.config), c.avg, { current: c.current, min: c.min ?? 1, max: c.max ?? 5 });
      assert.equal(d.replicas, c.replicas, d.reason);
      assert.equal(d.change, c.change, d.reason);
      assert.match(d.reason, c.reason);
    });
  }
});

/** The scaler on a fake context: a clock the test moves, and app stats the test sets. */
function scalerUnderTest(config: Record<string, unknown>) {
  let t = Date.parse('2025-01-15T10:00:00Z');
  const fake: FakePluginContext = fakePluginContext(config, { now: () => t, name: 'autoscale' });
  let reading: AppStats | Error = { replicas: 1, source: ['docker'] };
  const asked: string[] = [];
  fake.ctx.appStats = async (app) => {
    asked.push(app);
    if (reading instanceof Error) throw reading;
    return reading;
  };
  const plugin = create(fake.ctx) as PluginInstance;
  const scaler = plugin.scaler!;
  return {
    fake,
    plugin,
    asked,
    /** The next reading(s): CPU % per replica (and more fields). */
    set: (r: Partial<AppStats> | Error) => void (reading = r instanceof Error ? r : { replicas: 1, source: ['docker'], ...r }),
    advance: (seconds: number) => void (t += seconds * 1000),
    ask: async (current: number, over: Partial<ScalerInput> = {}) => scaler.propose({ env: 'production', app: 'web', declared: 1, current, min: 1, max: 5, now: new Date(t), ...over }),
    /** Asks every `interval` s, `times` times, answering with `current` (or what the last decision set); returns the last answer. */
    async run(times: number, interval: number, current: { n: number }) {
      let last: Awaited<ReturnType<typeof scaler.propose>>;
      for (let i = 0; i < times; i++) {
        last = await this.ask(current.n);
        if (last) current.n = last.replicas;
        if (i < times - 1) this.advance(interval);
      }
      return last;
    },
  };
}

describe('metrics-scaler: propose over time (injected clock, fake app stats)', () => {
  const CONFIG = { ...BASE, windowSeconds: 60, intervalSeconds: 15, cooldownSeconds: 120 };

  it('holds while the window fills, then decides on its average (one peak is not enough)', async () => {
    const s = scalerUnderTest(CONFIG);
    s.set({ cpuPercent: 95 });
    assert.deepEqual(await s.ask(1), { replicas: 1, reason: 'filling the window (0 of 60 s)' });
    s.advance(15);
    s.set({ cpuPercent: 90 });
    assert.match((await s.ask(1))!.reason, /filling the window \(15 of 60 s\)/);
    s.advance(15);
    s.set({ cpuPercent: 20 });
    await s.ask(1);
    s.advance(15);
    s.set({ cpuPercent: 20 });
    // 95, 90, 20, 20 over 45 s (the window less one interval): 56% < 70%.
    assert.deepEqual(await s.ask(1), { replicas: 1, reason: 'within thresholds (cpu 56% ≥ 30%)' });
    s.advance(15);
    s.set({ cpuPercent: 90 });
    // The reading at 0 s has left the 60-s window: 90, 20, 20, 90 → 55%.
    assert.match((await s.ask(1))!.reason, /cpu 55% ≥ 30%/);
    s.advance(15);
    s.set({ cpuPercent: 90 });
    // 20, 20, 90, 90 → 55, then 20, 90, 90, 90 → 72.5 > 70.
    await s.ask(1);
    s.advance(15);
    assert.deepEqual(await s.ask(1), { replicas: 2, reason: 'cpu 73% > 70% over 60 s' });
  });

  it('a loop slower than the interval: the window is full once it has watched its length, with the readings it got', async () => {
    const s = scalerUnderTest({ ...CONFIG, windowSeconds: 30 });
    s.set({ cpuPercent: 95 });
    assert.match((await s.ask(1))!.reason, /filling the window \(0 of 30 s\)/);
    // Asked 40 s later (the stats took long): the first reading has left the window, one remains.
    s.advance(40);
    s.set({ cpuPercent: 85 });
    assert.deepEqual(await s.ask(1), { replicas: 2, reason: 'cpu 85% > 70% over 30 s' });
  });

  it('no change within the cooldown of the last one; the window starts again after a change', async () => {
    const s = scalerUnderTest({ ...CONFIG, windowSeconds: 30, cooldownSeconds: 90 });
    s.set({ cpuPercent: 95 });
    const n = { n: 1 };
    assert.deepEqual(await s.run(2, 15, n), { replicas: 2, reason: 'cpu 95% > 70% over 30 s' });
    s.advance(15);
    assert.deepEqual(await s.ask(2), { replicas: 2, reason: 'filling the window (0 of 30 s)' }, 'readings of 1 replica were dropped');
    s.advance(15);
    assert.deepEqual(await s.ask(2), { replicas: 2, reason: 'cooldown: 60 s left' });
    for (const _ of [60, 75]) {
      s.advance(15);
      await s.ask(2);
    }
    s.advance(15);
    assert.deepEqual(await s.ask(2), { replicas: 2, reason: 'cooldown: 15 s left' });
    s.advance(15);
    assert.deepEqual(await s.ask(2), { replicas: 3, reason: 'cpu 95% > 70% over 30 s' }, '90 s after the change');
  });

  it('scales back in once every scale-in threshold is undercut and the cooldown has passed', async () => {
    const s = scalerUnderTest({ ...CONFIG, windowSeconds: 15, cooldownSeconds: 30 });
    s.set({ cpuPercent: 95 });
    // A window of one interval is full at the first reading.
    assert.deepEqual(await s.ask(1), { replicas: 2, reason: 'cpu 95% > 70% over 15 s' });
    s.set({ cpuPercent: 2 });
    s.advance(15);
    assert.deepEqual(await s.ask(2), { replicas: 2, reason: 'cooldown: 15 s left' });
    s.advance(15);
    assert.deepEqual(await s.ask(2), { replicas: 1, reason: 'cpu 2% < 30% over 15 s' });
  });

  it('a count changed by someone else (a commit) empties the window and starts the cooldown', async () => {
    const s = scalerUnderTest({ ...CONFIG, windowSeconds: 30, cooldownSeconds: 40 });
    s.set({ cpuPercent: 95 });
    await s.ask(1);
    s.advance(15);
    assert.equal((await s.ask(1))!.replicas, 2);
    s.advance(15);
    // The scaler set 2; the repo now says 4 (current 4).
    assert.deepEqual(await s.ask(4), { replicas: 4, reason: 'filling the window (0 of 30 s)' });
    s.advance(15);
    assert.deepEqual(await s.ask(4), { replicas: 4, reason: 'cooldown: 25 s left' });
  });

  it('maxStep and the proportional ask under the clock', async () => {
    const s = scalerUnderTest({ ...CONFIG, windowSeconds: 15, maxStep: 3 });
    s.set({ cpuPercent: 160 });
    // A window of one interval is full at the first reading. 160% on 1 replica → ceil(160/70) = 3.
    assert.deepEqual(await s.ask(1), { replicas: 3, reason: 'cpu 160% > 70% over 15 s' });
  });

  it('answers only for the apps it names; "*" names every app', async () => {
    const s = scalerUnderTest(CONFIG);
    assert.equal(await s.ask(1, { app: 'api' }), undefined);
    assert.deepEqual(s.asked, [], 'no stats read for an app it does not scale');
    const all = scalerUnderTest({ ...CONFIG, apps: ['*'] });
    assert.ok(await all.ask(1, { app: 'api' }));
    assert.deepEqual(all.asked, ['api']);
  });

  it('requests/s are per replica: the app total over the replicas measured', async () => {
    const s = scalerUnderTest({ apps: ['web'], scaleOut: { requestsPerSecondPerReplica: 50 }, scaleIn: { requestsPerSecondPerReplica: 10 }, windowSeconds: 15, intervalSeconds: 15, cooldownSeconds: 0 });
    s.set({ replicas: 2, requestsPerSecond: 120, cpuPercent: 5 });
    assert.deepEqual(await s.ask(2), { replicas: 3, reason: 'requests/s per replica 60 > 50 over 15 s' });
  });

  it('a configured metric no source gives is ignored, logged once, and shown in health', async () => {
    const s = scalerUnderTest({ apps: ['web'], scaleOut: { cpuPercent: 70, p95Ms: 300 }, scaleIn: { cpuPercent: 30, p95Ms: 100 }, windowSeconds: 15, intervalSeconds: 15, cooldownSeconds: 0 });
    s.set({ cpuPercent: 3, replicas: 2 });
    assert.deepEqual(await s.ask(2), { replicas: 1, reason: 'cpu 3% < 30% over 15 s (no data: p95)' });
    s.advance(15);
    await s.ask(1);
    s.advance(15);
    await s.ask(1);
    const warned = s.fake.logged('warn', 'a configured metric has no readings: it is ignored');
    assert.deepEqual(warned.map((l) => l.fields?.metric), ['p95Ms']);
    const health = await s.plugin.health!();
    assert.equal(health.ok, true);
    assert.match(health.message ?? '', /web: 1 \(.*\); cpu 3% over 1 readings; no data: p95/);
  });

  it('app stats that cannot be read: holds, warns once per error, unhealthy until a reading succeeds', async () => {
    const s = scalerUnderTest({ ...CONFIG, windowSeconds: 15 });
    s.set(new Error('Docker is not running'));
    assert.deepEqual(await s.ask(2), { replicas: 2, reason: 'no readings: Docker is not running' });
    s.advance(15);
    await s.ask(2);
    assert.equal(s.fake.logged('warn', 'app stats could not be read').length, 1);
    assert.equal((await s.plugin.health!()).ok, false);
    s.set({ cpuPercent: 50 });
    s.advance(15);
    await s.ask(2);
    assert.equal((await s.plugin.health!()).ok, true);
  });

  it('a reading without any metric (no replica runs) adds nothing to the window', async () => {
    const s = scalerUnderTest(CONFIG);
    s.set({ replicas: 0 });
    assert.deepEqual(await s.ask(1), { replicas: 1, reason: 'no readings yet' });
  });
});

describe('metrics-scaler: under the plugin host', () => {
  it('gets the host\'s appStats in its context and proposes through the guard', async () => {
    const catalog = await discoverPlugins({ builtins: { 'metrics-scaler': BUILTIN_PLUGINS['metrics-scaler']! } });
    const asked: string[] = [];
    const appStats = async (app: string): Promise<AppStats> => {
      asked.push(app);
      return { replicas: 1, cpuPercent: 99, source: ['docker'] };
    };
    const h = hostHarness(catalog.list(), { appStats });
    await h.host.sync([pluginConfig('autoscale', { use: 'metrics-scaler', config: { ...BASE, windowSeconds: 1, intervalSeconds: 1, cooldownSeconds: 0 } })]);
    try {
      assert.equal(h.host.get('autoscale')?.state, 'running', h.host.get('autoscale')?.lastError?.message);
      const [scaler] = h.host.scalers();
      assert.equal(scaler?.intervalSeconds, 1);
      assert.deepEqual(await scaler!.propose({ env: 'production', app: 'web', declared: 1, current: 1, min: 1, max: 3, now: new Date() }), { replicas: 2, reason: 'cpu 99% > 70% over 1 s' });
      assert.deepEqual(asked, ['web']);
    } finally {
      await h.host.close();
    }
  });

  it('without app stats from the host it is in error, saying why', async () => {
    const catalog = await discoverPlugins({ builtins: { 'metrics-scaler': BUILTIN_PLUGINS['metrics-scaler']! } });
    const h = hostHarness(catalog.list());
    await h.host.sync([pluginConfig('autoscale', { use: 'metrics-scaler', config: BASE })]);
    try {
      assert.equal(h.host.get('autoscale')?.state, 'error');
      assert.match(h.host.get('autoscale')?.lastError?.message ?? '', /needs app stats .* inline plugins only/);
    } finally {
      await h.host.close();
    }
  });
});

describe('metrics-scaler: the example in docs/plugins/metrics-scaler.md', () => {
  const markdown = readFileSync(path.join(ROOT, 'docs/plugins/metrics-scaler.md'), 'utf8');
  const docs = [...markdown.matchAll(/```ya?ml\n([\s\S]*?)```/g)].flatMap((m) => parseAllDocuments(m[1]!).map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> }));

  it('has a valid config that create accepts', () => {
    const plugin = docs.find((d) => d.kind === 'Plugin');
    assert.ok(plugin);
    assert.equal(plugin.spec.use, 'metrics-scaler');
    const validate = compilePluginSchema(manifest.configSchema!);
    const config = structuredClone(plugin.spec.config) as Record<string, unknown>;
    assert.ok(validate(config), JSON.stringify(validate.errors));
    const fake = fakePluginContext(config);
    fake.ctx.appStats = async () => ({ replicas: 1, source: [] });
    assert.ok(create(fake.ctx));
  });
});
