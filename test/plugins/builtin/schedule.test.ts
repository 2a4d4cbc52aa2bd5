import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { BerthError } from '../../../src/errors.js';
import { BUILTIN_PLUGINS } from '../../../src/plugins/builtin/index.js';
import { create, manifest, scheduledReplicas, secondsUntilNext, tableEntries } from '../../../src/plugins/builtin/schedule.js';
import { discoverPlugins } from '../../../src/plugins/catalog.js';
import type { PluginInstance, ScalerInput } from '../../../src/plugins/types.js';
import { compilePluginSchema } from '../../../src/render/schema.js';
import { fakePluginContext } from '../../support/plugin-context.js';
import { hostHarness, pluginConfig } from '../../support/plugin-host.js';
import { ROOT } from '../../support/repo.js';

const OFFICE = { '09:00': 5, '18:00': 2 };

describe('schedule: config schema', () => {
  const validate = compilePluginSchema(manifest.configSchema!);
  const one = (table: unknown, apps: unknown = ['web']) => ({ schedules: [{ apps, table }] });
  const cases: { name: string; config: unknown; ok: boolean }[] = [
    { name: 'one schedule', config: one(OFFICE), ok: true },
    { name: 'a time zone, "*" and several schedules', config: { timezone: 'Europe/Berlin', schedules: [{ apps: ['web', 'api'], table: OFFICE }, { apps: ['*'], table: { '00:00': 1 } }] }, ok: true },
    { name: 'the first and last minute of the day', config: one({ '00:00': 1, '23:59': 2 }), ok: true },
    { name: 'no schedules', config: {}, ok: false },
    { name: 'an empty schedule list', config: { schedules: [] }, ok: false },
    { name: 'an empty table', config: one({}), ok: false },
    { name: 'a time without a leading zero (9:00)', config: one({ '9:00': 5 }), ok: false },
    { name: '24:00', config: one({ '24:00': 5 }), ok: false },
    { name: 'minute 60', config: one({ '12:60': 5 }), ok: false },
    { name: 'seconds (18:00:00)', config: one({ '18:00:00': 5 }), ok: false },
    { name: 'a time with am/pm', config: one({ '9am': 5 }), ok: false },
    { name: 'negative replicas', config: one({ '09:00': -1 }), ok: false },
    { name: 'fractional replicas', config: one({ '09:00': 1.5 }), ok: false },
    { name: 'replicas as a string', config: one({ '09:00': '5' }), ok: false },
    { name: 'no apps', config: one(OFFICE, []), ok: false },
    { name: 'an app name that is no app name', config: one(OFFICE, ['Web']), ok: false },
    { name: 'an unknown field in a schedule', config: { schedules: [{ apps: ['web'], table: OFFICE, cron: '0 9 * * *' }] }, ok: false },
    { name: 'an unknown field', config: { ...one(OFFICE), intervalSeconds: 5 }, ok: false },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'rejects'} ${c.name}`, () => assert.equal(validate(structuredClone(c.config)), c.ok, JSON.stringify(validate.errors)));
  }

  it('fills in the default time zone, UTC', () => {
    const config: Record<string, unknown> = one(OFFICE);
    assert.ok(validate(config));
    assert.equal(config.timezone, 'UTC');
  });

  it('is registered as a built-in scaler', () => {
    assert.equal(BUILTIN_PLUGINS.schedule?.create, create);
    assert.deepEqual(manifest.provides, ['scaler']);
  });
});

describe('schedule: scheduledReplicas', () => {
  const cases: { name: string; table: Record<string, number>; at: string; zone: string; replicas: number }[] = [
    { name: 'UTC: at the first entry, to the minute', table: OFFICE, at: '2025-01-15T09:00:00.000Z', zone: 'UTC', replicas: 5 },
    { name: 'UTC: one millisecond before it, yesterday evening still holds', table: OFFICE, at: '2025-01-15T08:59:59.999Z', zone: 'UTC', replicas: 2 },
    { name: 'UTC: during the day', table: OFFICE, at: '2025-01-15T17:59:59Z', zone: 'UTC', replicas: 5 },
    { name: 'UTC: at the second entry', table: OFFICE, at: '2025-01-15T18:00:00Z', zone: 'UTC', replicas: 2 },
    { name: 'UTC: past midnight, before the first entry (wraps from yesterday)', table: OFFICE, at: '2025-01-16T00:00:00Z', zone: 'UTC', replicas: 2 },
    { name: 'a table with one entry holds all day', table: { '12:00': 3 }, at: '2025-01-15T06:00:00Z', zone: 'UTC', replicas: 3 },
    { name: 'entries in any order', table: { '18:00': 2, '09:00': 5, '12:00': 4 }, at: '2025-01-15T13:00:00Z', zone: 'UTC', replicas: 4 },
    { name: 'Berlin in winter (UTC+1): 09:00 local is 08:00Z', table: OFFICE, at: '2025-01-15T08:00:00Z', zone: 'Europe/Berlin', replicas: 5 },
    { name: 'Berlin in winter: 07:59Z is 08:59 local', table: OFFICE, at: '2025-01-15T07:59:00Z', zone: 'Europe/Berlin', replicas: 2 },
    { name: 'Berlin in summer (UTC+2): 09:00 local is 07:00Z', table: OFFICE, at: '2025-07-15T07:00:00Z', zone: 'Europe/Berlin', replicas: 5 },
    { name: 'Berlin in summer: 06:59Z is 08:59 local', table: OFFICE, at: '2025-07-15T06:59:59Z', zone: 'Europe/Berlin', replicas: 2 },
    { name: 'Berlin: 23:30Z is already the next day, 00:30 local', table: { '00:15': 1, '23:00': 3 }, at: '2025-01-15T23:30:00Z', zone: 'Europe/Berlin', replicas: 1 },
    { name: 'Kolkata (UTC+5:30): 09:00 local is 03:30Z', table: OFFICE, at: '2025-01-15T03:30:00Z', zone: 'Asia/Kolkata', replicas: 5 },
    { name: 'Kolkata: 03:29Z is 08:59 local', table: OFFICE, at: '2025-01-15T03:29:00Z', zone: 'Asia/Kolkata', replicas: 2 },
    { name: 'New York (UTC-5): 18:00 local is 23:00Z', table: OFFICE, at: '2025-01-15T23:00:00Z', zone: 'America/New_York', replicas: 2 },
    { name: 'New York: 22:59Z is 17:59 local', table: OFFICE, at: '2025-01-15T22:59:00Z', zone: 'America/New_York', replicas: 5 },
  ];
  for (const c of cases) it(c.name, () => assert.equal(scheduledReplicas(c.table, new Date(c.at), c.zone), c.replicas));

  describe('on the day Berlin springs forward (2025-03-30: 02:00 CET becomes 03:00 CEST at 01:00Z)', () => {
    const table = { '01:00': 1, '02:30': 3, '03:30': 4, '09:00': 5 };
    const at = (iso: string) => scheduledReplicas(table, new Date(iso), 'Europe/Berlin');
    it('before the jump, 01:59:59 local', () => assert.equal(at('2025-03-30T00:59:59Z'), 1));
    it('an entry in the skipped hour (02:30) takes effect when the clock jumps to 03:00', () => assert.equal(at('2025-03-30T01:00:00Z'), 3));
    it('03:30 local is 01:30Z, one hour after 02:30 local would have been', () => assert.equal(at('2025-03-30T01:30:00Z'), 4));
    it('09:00 local is already 07:00Z that day', () => {
      assert.equal(at('2025-03-30T06:59:59Z'), 4);
      assert.equal(at('2025-03-30T07:00:00Z'), 5);
    });
  });

  describe('on the day Berlin falls back (2025-10-26: 03:00 CEST becomes 02:00 CET at 01:00Z)', () => {
    it('09:00 local is 08:00Z that day (07:00Z the day before)', () => {
      assert.equal(scheduledReplicas(OFFICE, new Date('2025-10-25T07:00:00Z'), 'Europe/Berlin'), 5);
      assert.equal(scheduledReplicas(OFFICE, new Date('2025-10-26T07:00:00Z'), 'Europe/Berlin'), 2);
      assert.equal(scheduledReplicas(OFFICE, new Date('2025-10-26T08:00:00Z'), 'Europe/Berlin'), 5);
    });
    it('in the repeated hour the table follows the wall clock, both times', () => {
      const table = { '02:30': 3, '03:00': 4 };
      const at = (iso: string) => scheduledReplicas(table, new Date(iso), 'Europe/Berlin');
      assert.deepEqual(['2025-10-26T00:30:00Z', '2025-10-26T00:59:00Z', '2025-10-26T01:00:00Z', '2025-10-26T01:30:00Z', '2025-10-26T02:00:00Z'].map(at), [3, 3, 4, 3, 4]);
    });
  });

  it('refuses a table it cannot read (what the schema rejects at render)', () => {
    const tables: Record<string, number>[] = [{}, { '9:00': 5 }, { '24:00': 1 }, { '12:60': 1 }, { '09:00': -1 }, { '09:00': 1.5 }];
    for (const table of tables) {
      assert.throws(() => scheduledReplicas(table, new Date(0), 'UTC'), RangeError, JSON.stringify(table));
    }
  });

  it('tableEntries sorts by time of day', () => {
    assert.deepEqual(tableEntries({ '18:00': 2, '09:00': 5 }), [
      { time: '09:00', minute: 540, replicas: 5 },
      { time: '18:00', minute: 1080, replicas: 2 },
    ]);
  });

  it('secondsUntilNext counts on the wall clock, across midnight', () => {
    assert.equal(secondsUntilNext([540, 1080], new Date('2025-01-15T17:59:50Z'), 'UTC'), 10);
    assert.equal(secondsUntilNext([540, 1080], new Date('2025-01-15T18:00:00Z'), 'UTC'), 15 * 3600);
    assert.equal(secondsUntilNext([540], new Date('2025-01-15T07:59:00Z'), 'Europe/Berlin'), 60);
  });
});

describe('schedule: the scaler', () => {
  const input = (app: string, at: string, over: Partial<ScalerInput> = {}): ScalerInput => ({ env: 'production', app, declared: 2, current: 2, min: 1, max: 10, now: new Date(at), ...over });
  const start = (config: Record<string, unknown>, at = '2025-01-15T10:00:00Z') => {
    let t = Date.parse(at);
    const fake = fakePluginContext(config, { name: 'office-hours', now: () => t });
    const plugin = create(fake.ctx) as PluginInstance;
    return { plugin, scaler: plugin.scaler!, setNow: (iso: string) => void (t = Date.parse(iso)), fake };
  };

  it('proposes the table count for the apps a schedule names, with the entry and zone as the reason', async () => {
    const { scaler } = start({ timezone: 'Europe/Berlin', schedules: [{ apps: ['web'], table: OFFICE }] });
    assert.deepEqual(await scaler.propose(input('web', '2025-01-15T17:00:00Z')), { replicas: 2, reason: 'schedule 18:00 (Europe/Berlin): 2' });
    assert.deepEqual(await scaler.propose(input('web', '2025-01-15T08:00:00Z')), { replicas: 5, reason: 'schedule 09:00 (Europe/Berlin): 5' });
  });

  it('proposes nothing for an app no schedule names', async () => {
    const { scaler } = start({ schedules: [{ apps: ['web'], table: OFFICE }] });
    assert.equal(await scaler.propose(input('api', '2025-01-15T10:00:00Z')), undefined);
  });

  it('"*" covers every app; the first schedule naming an app wins', async () => {
    const { scaler } = start({ schedules: [{ apps: ['api'], table: { '00:00': 7 } }, { apps: ['*'], table: OFFICE }, { apps: ['web'], table: { '00:00': 9 } }] });
    assert.equal((await scaler.propose(input('api', '2025-01-15T10:00:00Z')))?.replicas, 7);
    assert.equal((await scaler.propose(input('web', '2025-01-15T10:00:00Z')))?.replicas, 5, 'the "*" schedule comes before the one naming web');
    assert.equal((await scaler.propose(input('anything', '2025-01-15T20:00:00Z')))?.replicas, 2);
  });

  it('leaves clamping to the loop: it proposes the table count whatever the bounds', async () => {
    const { scaler } = start({ schedules: [{ apps: ['web'], table: OFFICE }] });
    assert.equal((await scaler.propose(input('web', '2025-01-15T10:00:00Z', { min: 1, max: 4 })))?.replicas, 5);
  });

  it('defaults to UTC and spells a zone canonically', async () => {
    assert.equal((await start({ schedules: [{ apps: ['web'], table: OFFICE }] }).scaler.propose(input('web', '2025-01-15T10:00:00Z')))?.reason, 'schedule 09:00 (UTC): 5');
    assert.equal((await start({ timezone: 'europe/berlin', schedules: [{ apps: ['web'], table: OFFICE }] }).scaler.propose(input('web', '2025-01-15T10:00:00Z')))?.reason, 'schedule 09:00 (Europe/Berlin): 5');
  });

  it('asks to be asked on the minute of its next entry (never more than 30 s apart)', () => {
    const s = start({ schedules: [{ apps: ['web'], table: OFFICE }, { apps: ['api'], table: { '12:30': 1 } }] }, '2025-01-15T10:00:00Z');
    assert.equal(s.scaler.intervalSeconds, 30);
    s.setNow('2025-01-15T12:29:48Z');
    assert.equal(s.scaler.intervalSeconds, 12, "another schedule's entry counts too");
    s.setNow('2025-01-15T17:59:59.700Z');
    assert.equal(s.scaler.intervalSeconds, 1, 'at least a second');
    s.setNow('2025-01-15T18:00:00.200Z');
    assert.equal(s.scaler.intervalSeconds, 30);
    assert.equal(start({ schedules: [{ apps: ['web'], table: { '00:00': 1 } }] }, '2025-01-15T23:59:45Z').scaler.intervalSeconds, 15, 'across midnight');
  });

  it('reports what is in force and when it changes next as its health', async () => {
    const { plugin } = start({ timezone: 'Europe/Berlin', schedules: [{ apps: ['web', 'api'], table: OFFICE }] }, '2025-01-15T16:00:00Z');
    assert.deepEqual(await plugin.health!(), { ok: true, message: 'web, api: 5 (since 09:00); next change in 60 min (Europe/Berlin)' });
  });

  it('an unknown time zone is a config error at create, with a stable code and the field', () => {
    const { ctx } = fakePluginContext({ timezone: 'Mars/Olympus_Mons', schedules: [{ apps: ['web'], table: OFFICE }] }, { name: 'office-hours' });
    assert.throws(
      () => create(ctx),
      (err: unknown) => err instanceof BerthError && err.code === 'E_PLUGIN' && err.context.field === 'timezone' && /Mars\/Olympus_Mons/.test(err.message),
    );
  });

  it('a table it cannot read is a config error at create (when render did not validate it)', () => {
    const { ctx } = fakePluginContext({ schedules: [{ apps: ['web'], table: { '25:00': 1 } }] });
    assert.throws(
      () => create(ctx),
      (err: unknown) => err instanceof BerthError && err.code === 'E_PLUGIN' && err.context.field === 'schedules[0].table',
    );
  });

  it('under the plugin host: an unknown time zone puts the plugin in error with that reason', async () => {
    const catalog = await discoverPlugins({ builtins: { schedule: BUILTIN_PLUGINS.schedule! } });
    const h = hostHarness(catalog.list());
    await h.host.sync([pluginConfig('office-hours', { use: 'schedule', config: { timezone: 'Europe/Berlln', schedules: [{ apps: ['web'], table: OFFICE }] } })]);
    await h.bus.flush();
    const view = h.host.get('office-hours');
    assert.equal(view?.state, 'error');
    assert.match(view?.lastError?.message ?? '', /config\.timezone "Europe\/Berlln" is not a time zone/);
    assert.deepEqual(h.host.scalers(), [], 'a plugin in error is not asked');
    await h.host.close();
  });

  it('under the plugin host, in a worker thread: proposes the same', async () => {
    const catalog = await discoverPlugins({ builtins: { schedule: BUILTIN_PLUGINS.schedule! } });
    const h = hostHarness(catalog.list());
    await h.host.sync([pluginConfig('office-hours', { use: 'schedule', isolation: 'worker', timeoutSeconds: 10, config: { timezone: 'UTC', schedules: [{ apps: ['web'], table: OFFICE }] } })]);
    try {
      assert.equal(h.host.get('office-hours')?.state, 'running', h.host.get('office-hours')?.lastError?.message);
      const [scaler] = h.host.scalers();
      assert.ok(scaler);
      assert.deepEqual(await scaler.propose(input('web', '2025-01-15T10:00:00Z')), { replicas: 5, reason: 'schedule 09:00 (UTC): 5' });
    } finally {
      await h.host.close();
    }
  });
});

describe('schedule: the example in docs/plugins/schedule.md', () => {
  const markdown = readFileSync(path.join(ROOT, 'docs/plugins/schedule.md'), 'utf8');
  const docs = [...markdown.matchAll(/```ya?ml\n([\s\S]*?)```/g)].flatMap((m) => parseAllDocuments(m[1]!).map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> }));
  const plugin = docs.find((d) => d.kind === 'Plugin')!;
  const app = docs.find((d) => d.kind === 'App')!;

  it('has a valid config', () => {
    assert.equal(plugin.spec.use, 'schedule');
    const validate = compilePluginSchema(manifest.configSchema!);
    assert.ok(validate(structuredClone(plugin.spec.config)), JSON.stringify(validate.errors));
  });

  it('does what the text says for web (4 by day, 2 until 22:00, 1 overnight, 3 from 07:30, Berlin time)', async () => {
    const { scaler } = create(fakePluginContext(plugin.spec.config as Record<string, unknown>).ctx) as Required<Pick<PluginInstance, 'scaler'>>;
    const { min, max } = app.spec.scaling as { min: number; max: number };
    const at = async (iso: string) => Math.min(max, Math.max(min, (await scaler.propose({ env: 'production', app: 'web', declared: 2, current: 2, min, max, now: new Date(iso) }))!.replicas));
    // January: Berlin is UTC+1.
    assert.deepEqual(await Promise.all(['2025-01-15T08:00:00Z', '2025-01-15T17:00:00Z', '2025-01-15T21:00:00Z', '2025-01-16T03:00:00Z', '2025-01-16T06:30:00Z'].map(at)), [4, 2, 1, 1, 3]);
  });
});

describe('schedule: driven by node-cron', () => {
  it('arms one cron task per time of its tables, in its time zone, that asks for a scaling round; stop() ends them', async () => {
    const cron = (await import('node-cron')).default;
    const before = cron.getTasks().size;
    const fake = fakePluginContext({ timezone: 'Europe/Berlin', schedules: [{ apps: ['web'], table: { '09:00': 5, '18:00': 2 } }, { apps: ['api'], table: { '09:00': 3 } }] });
    const plugin = await create(fake.ctx);
    await plugin.start?.();
    const armed = [...cron.getTasks().values()].slice(before);
    assert.equal(armed.length, 2, 'one task per distinct time: 09:00 and 18:00');
    for (const task of armed) await task.execute();
    assert.deepEqual(fake.controlCalls, [
      { control: 'rescale', reason: 'schedule 09:00 (Europe/Berlin)' },
      { control: 'rescale', reason: 'schedule 18:00 (Europe/Berlin)' },
    ]);
    await plugin.stop?.();
    assert.equal(cron.getTasks().size, before);
  });
});
