import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventBus } from '../../src/events/bus.js';
import type { BerthEvent } from '../../src/events/types.js';
import type { HealthCheckTarget } from '../../src/health/providers/types.js';
import { DEFAULT_FAILURE_THRESHOLD } from '../../src/plugins/host.js';
import type { PluginContext, PluginInstance } from '../../src/plugins/types.js';
import { SecretValue } from '../../src/render/secrets.js';
import type { Problem } from '../../src/render/problems.js';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { definition, ENV, gate, hostHarness, pluginConfig, waitUntil } from '../support/plugin-host.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

// The plugin host on real parts (bus, metrics, health-check providers, pino into an array) with
// plugins whose code is inline factories; one test runs a fixture in a worker thread.

const HAPPY_PATH = ['installing', 'installed', 'configuring', 'starting', 'running'];
const STOP_PATH = ['stopping', 'installed', 'inactive'];
const RELOAD_PATH = ['updating', 'configuring', 'starting', 'running'];

function drift(bus: EventBus, description: string): BerthEvent {
  return bus.emit('drift.detected', { env: ENV, revision: 'abc', apps: ['web'], selfHeal: false, description });
}

function target(): HealthCheckTarget {
  return { host: '127.0.0.1', port: 1, container: { id: 'c1', name: 'web-1' }, config: {}, timeoutMs: 1000, exec: async () => ({ exitCode: 0, output: '' }) };
}

/** A plugin that records its starts, stops and contexts into `record` under its name. */
function recording(name: string, record: { started: string[]; stopped: string[]; contexts: PluginContext[] }, extra: Partial<PluginInstance> = {}) {
  return definition(name, (ctx) => {
    record.contexts.push(ctx);
    return {
      start: () => void record.started.push(name),
      stop: () => void record.stopped.push(name),
      ...extra,
    };
  });
}

function newRecord() {
  return { started: [] as string[], stopped: [] as string[], contexts: [] as PluginContext[] };
}

describe('plugin host: starting and stopping', () => {
  it('starts plugins in the given order, emitting every transition, and stops them in reverse', async () => {
    const rec = newRecord();
    const h = hostHarness([recording('a', rec), recording('b', rec), recording('c', rec)]);

    await h.host.sync([pluginConfig('a'), pluginConfig('b', { after: ['a'] }), pluginConfig('c', { after: ['b'] })]);
    await h.bus.flush();

    assert.deepEqual(rec.started, ['a', 'b', 'c']);
    for (const name of ['a', 'b', 'c']) {
      const changes = h.stateChanges.filter((e) => e.plugin === name);
      assert.deepEqual(changes.map((e) => [e.from, e.to]), [['inactive', 'installing'], ['installing', 'installed'], ['installed', 'configuring'], ['configuring', 'starting'], ['starting', 'running']], name);
      assert.ok(changes.every((e) => e.env === ENV && e.use === name));
    }
    const running = h.stateChanges.filter((e) => e.to === 'running').map((e) => e.plugin);
    assert.deepEqual(running, ['a', 'b', 'c']);
    assert.deepEqual(h.host.list().map((p) => [p.name, p.state]), [['a', 'running'], ['b', 'running'], ['c', 'running']]);

    await h.host.close();
    await h.bus.flush();

    assert.deepEqual(rec.stopped, ['c', 'b', 'a']);
    for (const name of ['a', 'b', 'c']) assert.deepEqual(h.states(name), [...HAPPY_PATH, ...STOP_PATH], name);
    assert.deepEqual(h.stateChanges.filter((e) => e.to === 'inactive').map((e) => e.plugin), ['c', 'b', 'a']);
    assert.ok(rec.contexts.every((c) => c.signal.aborted), 'every plugin signal is aborted at close');
    assert.deepEqual(h.host.list(), []);
  });

  it('puts a plugin whose document has problems in error, its dependents too, and starts the others', async () => {
    const rec = newRecord();
    const h = hostHarness([recording('a', rec), recording('b', rec), recording('c', rec)]);
    const problem: Problem = { code: 'schema', file: 'plugins/a.yaml', line: 7, column: 5, message: 'spec.config.url must be a string' };

    await h.host.sync([pluginConfig('a', { problems: [problem] }), pluginConfig('b', { after: ['a'] }), pluginConfig('c')]);
    await h.bus.flush();

    const a = h.host.get('a');
    assert.equal(a?.state, 'error');
    assert.equal(a?.lastError?.message, 'plugins/a.yaml:7:5 spec.config.url must be a string');
    const b = h.host.get('b');
    assert.equal(b?.state, 'error');
    assert.match(b?.lastError?.message ?? '', /depends on a \(error\)/);
    assert.equal(h.host.get('c')?.state, 'running');
    assert.deepEqual(rec.started, ['c'], 'neither the broken plugin nor its dependent ran any code');
    assert.deepEqual(h.states('a'), ['installing', 'error']);
    assert.deepEqual(h.states('b'), ['installing', 'installed', 'configuring', 'error']);
    await h.host.close();
  });

  it('reloads only the plugin whose config changed, and stops one whose document was removed', async () => {
    const rec = newRecord();
    const h = hostHarness([recording('a', rec), recording('b', rec), recording('c', rec)]);
    await h.host.sync([pluginConfig('a', { config: { v: 1 } }), pluginConfig('b', { config: { v: 1 } }), pluginConfig('c')]);
    await h.bus.flush();
    const [oldA, firstB] = rec.contexts;
    const before = h.stateChanges.length;

    await h.host.sync([pluginConfig('a', { config: { v: 2 } }), pluginConfig('b', { config: { v: 1 } }), pluginConfig('c')]);
    await h.bus.flush();

    const changed = h.stateChanges.slice(before);
    assert.deepEqual(changed.filter((e) => e.plugin === 'a').map((e) => e.to), RELOAD_PATH);
    assert.deepEqual(changed.filter((e) => e.plugin !== 'a'), [], 'b and c are untouched');
    assert.deepEqual(rec.stopped, ['a']);
    assert.equal(oldA?.signal.aborted, true);
    assert.equal(firstB?.signal.aborted, false);
    assert.equal(rec.contexts.length, 4, 'only a was created again');
    assert.deepEqual(rec.contexts[3]?.config, { v: 2 });

    const beforeRemoval = h.stateChanges.length;
    await h.host.sync([pluginConfig('a', { config: { v: 2 } }), pluginConfig('c')]);
    await h.bus.flush();

    assert.deepEqual(rec.stopped, ['a', 'b']);
    assert.equal(firstB?.signal.aborted, true);
    assert.equal(h.host.get('b'), undefined);
    assert.deepEqual(h.stateChanges.slice(beforeRemoval).map((e) => [e.plugin, e.to]), STOP_PATH.map((s) => ['b', s]));
    assert.deepEqual(h.host.list().map((p) => [p.name, p.state]), [['a', 'running'], ['c', 'running']]);
    await h.host.close();
  });

  it('hands a plugin its secrets revealed and never shows them in list(), JSON or logs', async () => {
    const rec = newRecord();
    const h = hostHarness([recording('notify', rec)]);
    const token = (value: string) => new SecretValue('slack-token', value);

    await h.host.sync([pluginConfig('notify', { config: { channel: '#ops', auth: { token: token('xoxb-s3cr3t') } } })]);

    assert.deepEqual(rec.contexts[0]?.config, { channel: '#ops', auth: { token: 'xoxb-s3cr3t' } });
    assert.equal(h.host.get('notify')?.state, 'running');
    assert.doesNotMatch(JSON.stringify(h.host.list()), /s3cr3t/);
    assert.doesNotMatch(JSON.stringify(h.host.get('notify')), /s3cr3t/);
    assert.doesNotMatch(JSON.stringify(h.logs), /s3cr3t/);

    // Same value in a new SecretValue: same document, no reload. A rotated value: a reload.
    await h.host.sync([pluginConfig('notify', { config: { channel: '#ops', auth: { token: token('xoxb-s3cr3t') } } })]);
    assert.equal(rec.contexts.length, 1);
    await h.host.sync([pluginConfig('notify', { config: { channel: '#ops', auth: { token: token('xoxb-rotated') } } })]);
    assert.equal(rec.contexts.length, 2);
    assert.deepEqual(rec.contexts[1]?.config, { channel: '#ops', auth: { token: 'xoxb-rotated' } });
    assert.doesNotMatch(JSON.stringify(h.logs), /s3cr3t|rotated/);
    await h.host.close();
  });
});

describe('plugin host: event handlers', () => {
  it('delivers the matching events, in order', async () => {
    const seen: string[] = [];
    const h = hostHarness([definition('audit', () => ({ eventHandler: { events: ['drift.detected', 'reconcile.*'], handle: (e) => void seen.push(`${e.type}#${e.seq}`) } }))]);
    await h.host.sync([pluginConfig('audit')]);

    const started = h.bus.emit('reconcile.started', { env: ENV, revision: 'abc', trigger: 'poll', apps: 1, counts: {} });
    h.bus.emit('health.changed', { env: ENV, app: 'web', health: { status: 'Healthy' } });
    const detected = drift(h.bus, 'one');
    h.bus.emit('drift.healed', { env: ENV, revision: 'abc', apps: ['web'], description: 'healed' });
    const failed = h.bus.emit('reconcile.error', { env: ENV, trigger: 'poll', reason: 'SourceUnavailable', message: 'git fetch failed' });
    const again = drift(h.bus, 'two');
    await h.bus.flush();

    assert.deepEqual(seen, [`reconcile.started#${started.seq}`, `drift.detected#${detected.seq}`, `reconcile.error#${failed.seq}`, `drift.detected#${again.seq}`]);
    assert.equal(await h.calls('audit', 'event', 'ok'), 4);
    await h.host.close();
  });

  it(`moves a handler that throws ${DEFAULT_FAILURE_THRESHOLD} times in a row to error, logs and counts it; reload() brings it back`, async () => {
    let failing = true;
    const handled: string[] = [];
    const h = hostHarness([
      definition('flaky', () => ({
        eventHandler: {
          events: ['drift.*'],
          handle: (e) => {
            if (failing) throw new Error(`cannot reach the audit log (${(e as BerthEvent<'drift.detected'>).description})`);
            handled.push((e as BerthEvent<'drift.detected'>).description);
          },
        },
      })),
    ]);
    await h.host.sync([pluginConfig('flaky')]);

    for (let i = 1; i <= DEFAULT_FAILURE_THRESHOLD; i++) drift(h.bus, `e${i}`);
    await h.bus.flush();

    const view = h.host.get('flaky');
    assert.equal(view?.state, 'error');
    assert.equal(view?.lastError?.message, `event threw: cannot reach the audit log (e${DEFAULT_FAILURE_THRESHOLD})`);
    assert.equal(view?.lastError?.point, 'event');
    assert.equal(view?.failures, DEFAULT_FAILURE_THRESHOLD);
    assert.equal(await h.calls('flaky', 'event', 'error'), DEFAULT_FAILURE_THRESHOLD);
    const toError = h.stateChanges.find((e) => e.plugin === 'flaky' && e.to === 'error');
    assert.match(toError?.reason ?? '', new RegExp(`^${DEFAULT_FAILURE_THRESHOLD} failures in a row`));
    const warnings = h.logs.filter((l) => l.msg === 'plugin call failed');
    assert.equal(warnings.length, DEFAULT_FAILURE_THRESHOLD);
    assert.ok(warnings.every((l) => l.plugin === 'flaky' && l.point === 'event'), 'each failure is logged with the plugin name');

    // In error: no more events.
    failing = false;
    const callsBefore = h.host.get('flaky')?.calls;
    drift(h.bus, 'while in error');
    await h.bus.flush();
    assert.deepEqual(handled, []);
    assert.equal(h.host.get('flaky')?.calls, callsBefore);

    const reloaded = await h.host.reload('flaky');
    assert.equal(reloaded.state, 'running');
    assert.equal(reloaded.lastError, undefined);
    drift(h.bus, 'after reload');
    await h.bus.flush();
    assert.deepEqual(handled, ['after reload']);
    await h.host.close();
  });

  it('times out a handler that never resolves and goes on with the next event', async () => {
    const handled: string[] = [];
    const h = hostHarness([
      definition('stuck', () => ({
        eventHandler: {
          events: ['drift.detected'],
          handle: (e) => {
            const { description } = e as BerthEvent<'drift.detected'>;
            if (description === 'hang') return new Promise<void>(() => {});
            handled.push(description);
          },
        },
      })),
    ]);
    await h.host.sync([pluginConfig('stuck', { timeoutSeconds: 0.2 })]);

    drift(h.bus, 'hang');
    drift(h.bus, 'next');
    await waitUntil(() => handled.includes('next'), 'the event after the hanging one');

    assert.equal(await h.calls('stuck', 'event', 'timeout'), 1);
    assert.equal(await h.calls('stuck', 'event', 'ok'), 1);
    const view = h.host.get('stuck');
    assert.equal(view?.state, 'running', 'one timeout is not enough for error');
    assert.equal(view?.lastError?.message, 'event timed out after 0.2 s');
    assert.ok(h.logs.some((l) => l.msg === 'plugin call failed' && l.plugin === 'stuck' && l.err === 'event timed out after 0.2 s'));
    await h.host.close();
  });

  it('does not hand events still queued for a replaced instance to that stopped instance', async () => {
    const blocked = gate();
    const seen: string[] = [];
    let instances = 0;
    const h = hostHarness([
      definition('audit', (ctx) => {
        const id = ++instances;
        return {
          eventHandler: {
            events: ['drift.detected'],
            handle: async (e) => {
              const { description } = e as BerthEvent<'drift.detected'>;
              seen.push(`${id}:${description}${ctx.signal.aborted ? ' (stopped)' : ''}`);
              if (description === 'first') await blocked.promise;
            },
          },
        };
      }),
    ]);
    await h.host.sync([pluginConfig('audit', { timeoutSeconds: 5, config: { v: 1 } })]);
    drift(h.bus, 'first');
    drift(h.bus, 'second');
    drift(h.bus, 'third');
    await waitUntil(() => seen.length === 1, 'the first event to reach the handler');

    await h.host.sync([pluginConfig('audit', { timeoutSeconds: 5, config: { v: 2 } })]);
    assert.equal(h.host.get('audit')?.state, 'running');
    blocked.open();
    drift(h.bus, 'fourth');
    await h.bus.flush();

    assert.deepEqual(seen, ['1:first', '2:fourth']);
    assert.equal(h.host.get('audit')?.failures, 0);
    await h.host.close();
  });
});

describe('plugin host: health()', () => {
  it('reports running plugins healthy by default, a throwing health() with its message, and the state of one in error', async () => {
    const h = hostHarness([
      definition('plain', () => ({})),
      definition('sick', () => ({
        health: () => {
          throw new Error('disk full');
        },
      })),
      definition('fine', () => ({ health: () => ({ ok: true, message: 'connected' }) })),
    ]);
    const problem: Problem = { code: 'unknown-plugin', file: 'plugins/ghost.yaml', line: 4, column: 8, message: 'no plugin named "ghost"' };
    await h.host.sync([pluginConfig('plain'), pluginConfig('sick'), pluginConfig('fine'), pluginConfig('ghost', { problems: [problem] })]);

    assert.deepEqual(await h.host.health('plain'), { state: 'running', ok: true, message: 'running' });
    assert.deepEqual(await h.host.health('fine'), { state: 'running', ok: true, message: 'connected' });
    assert.deepEqual(await h.host.health('sick'), { state: 'running', ok: false, message: 'health threw: disk full' });
    assert.deepEqual(await h.host.health('ghost'), { state: 'error', ok: false, message: 'plugins/ghost.yaml:4:8 no plugin named "ghost"' });
    assert.equal(await h.host.health('absent'), undefined);
    await h.host.close();
  });
});

describe('plugin host: preApply', () => {
  const ctx = { env: ENV, revision: 'abc', trigger: 'poll', changes: [{ app: 'web', actions: ['update'] }] };

  it('returns the veto of a required plugin and only warns about one that is not required', async () => {
    const veto = () => ({ hooks: { preApply: () => ({ veto: 'maintenance window' }) } });
    const h = hostHarness([definition('window', veto), definition('advisor', veto)]);

    await h.host.sync([pluginConfig('advisor', { priority: 10 }), pluginConfig('window', { required: true, priority: 20 })]);
    const r = await h.host.preApply(ctx);

    assert.deepEqual(r.veto, { plugin: 'window', reason: 'maintenance window' });
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0] ?? '', /^plugin advisor would veto the apply \(maintenance window\), but it is not required/);

    await h.host.sync([pluginConfig('advisor', { priority: 10 })]);
    const alone = await h.host.preApply(ctx);
    assert.equal(alone.veto, undefined);
    assert.equal(alone.warnings.length, 1);
    await h.host.close();
  });

  it('treats a throwing or hanging preApply of a required plugin as a warning, not a veto', async () => {
    const h = hostHarness([
      definition('thrower', () => ({
        hooks: {
          preApply: () => {
            throw new Error('calendar unreachable');
          },
        },
      })),
      definition('hanger', () => ({ hooks: { preApply: () => new Promise<void>(() => {}) } })),
    ]);
    await h.host.sync([pluginConfig('thrower', { required: true, priority: 1 }), pluginConfig('hanger', { required: true, priority: 2, timeoutSeconds: 0.2 })]);

    const r = await h.host.preApply(ctx);

    assert.equal(r.veto, undefined);
    assert.equal(r.warnings.length, 2);
    assert.match(r.warnings[0] ?? '', /^plugin thrower: preApply failed \(preApply threw: calendar unreachable\)/);
    assert.match(r.warnings[1] ?? '', /^plugin hanger: preApply failed \(preApply timed out after 0\.2 s\)/);
    assert.equal(await h.calls('thrower', 'preApply', 'error'), 1);
    assert.equal(await h.calls('hanger', 'preApply', 'timeout'), 1);
    await h.host.close();
  });

  it('asks in priority order (lower first): the first required veto is the one returned', async () => {
    const asked: string[] = [];
    const hook = (name: string, veto?: string) => definition(name, () => ({ hooks: { preApply: () => (asked.push(name), veto ? { veto } : undefined) } }));
    const h = hostHarness([hook('alpha', 'alpha says no'), hook('zulu', 'zulu says no'), hook('mike')]);
    // Synced in name order; priority decides.
    await h.host.sync([pluginConfig('alpha', { required: true, priority: 200 }), pluginConfig('mike', { priority: 5 }), pluginConfig('zulu', { required: true, priority: 50 })]);

    const r = await h.host.preApply(ctx);

    assert.deepEqual(r.veto, { plugin: 'zulu', reason: 'zulu says no' });
    assert.deepEqual(asked, ['mike', 'zulu']);
    await h.host.close();
  });
});

describe('plugin host: health-check providers', () => {
  it('registers a running plugin provider, guarded, and unregisters it when the plugin stops', async () => {
    const h = hostHarness([
      definition(
        'probe',
        () => ({
          healthChecks: [
            {
              protocol: 'fixture-mq',
              describe: 'a queue',
              check: async () => {
                throw new Error('broker said no');
              },
            },
          ],
        }),
        { provides: ['health-check'] },
      ),
    ]);
    await h.host.sync([pluginConfig('probe')]);

    assert.deepEqual(
      h.healthProviders.list().find((p) => p.protocol === 'fixture-mq'),
      { protocol: 'fixture-mq', owner: 'probe', describe: 'a queue' },
    );
    const provider = h.healthProviders.get('fixture-mq');
    const result = await provider?.check(target(), new AbortController().signal);
    assert.equal(result?.status, 'unhealthy');
    assert.match(result?.message ?? '', /^plugin probe: health-check threw: broker said no$/);
    assert.equal(await h.calls('probe', 'health-check', 'error'), 1);

    await h.host.close();
    assert.equal(h.healthProviders.get('fixture-mq'), undefined);
  });

  it('puts a plugin that claims a built-in protocol in error, and takes back what it registered', async () => {
    const check = async () => ({ status: 'healthy' as const, latencyMs: 0, message: 'ok' });
    let stopped = 0;
    const h = hostHarness([definition('rogue', () => ({ stop: () => void stopped++, healthChecks: [{ protocol: 'rogue-ok', check }, { protocol: 'http', check }] }), { provides: ['health-check'] })]);

    await h.host.sync([pluginConfig('rogue')]);

    const view = h.host.get('rogue');
    assert.equal(view?.state, 'error');
    assert.match(view?.lastError?.message ?? '', /"http".*built-in/);
    assert.equal(h.healthProviders.get('rogue-ok'), undefined, 'its other provider is gone again');
    assert.equal(h.healthProviders.list().find((p) => p.protocol === 'http')?.owner, 'builtin');
    await h.host.close();
    assert.equal(stopped, 1, 'the started instance is stopped at close');
  });
});

describe('plugin host: integrity', () => {
  const PINNED = 'sha512-cGlubmVk';

  it('refuses a plugin whose code does not match its pin, and starts one that does', async () => {
    let created = 0;
    const factory = () => (created++, {});
    const h = hostHarness([definition('pinned', factory, { integrity: PINNED }), definition('tampered', factory, { integrity: 'sha512-b3RoZXI=' })]);

    await h.host.sync([pluginConfig('pinned', { integrity: PINNED }), pluginConfig('tampered', { integrity: PINNED })]);

    assert.equal(h.host.get('pinned')?.state, 'running');
    const view = h.host.get('tampered');
    assert.equal(view?.state, 'error');
    assert.match(view?.lastError?.message ?? '', /^integrity mismatch: plugins\/tampered\.yaml pins sha512-cGlubmVk, the installed code is sha512-b3RoZXI=$/);
    assert.equal(created, 1, 'the tampered code never ran');
    await h.host.close();
  });

  it('checks the pin again on reload() and on a changed document', async () => {
    let created = 0;
    const h = hostHarness([definition('tampered', () => (created++, {}), { integrity: 'sha512-b3RoZXI=' })]);
    await h.host.sync([pluginConfig('tampered', { integrity: PINNED })]);

    const reloaded = await h.host.reload('tampered');
    assert.equal(reloaded.state, 'error');
    assert.match(reloaded.lastError?.message ?? '', /^integrity mismatch/);
    await h.host.sync([pluginConfig('tampered', { integrity: PINNED, config: { v: 2 } })]);
    assert.equal(h.host.get('tampered')?.state, 'error');
    assert.equal(created, 0);
    await h.host.close();
  });

  it('stops a running plugin whose document is pinned to other code', async () => {
    const rec = newRecord();
    const pinned = { ...recording('audit', rec), integrity: async () => PINNED };
    const h = hostHarness([pinned]);
    await h.host.sync([pluginConfig('audit', { integrity: PINNED })]);
    await h.bus.flush();
    const before = h.stateChanges.length;

    await h.host.sync([pluginConfig('audit', { integrity: 'sha512-b3RoZXI=' })]);
    await h.bus.flush();

    assert.deepEqual(h.stateChanges.slice(before).map((e) => e.to), ['updating', 'configuring', 'error']);
    assert.match(h.host.get('audit')?.lastError?.message ?? '', /^integrity mismatch: plugins\/audit\.yaml pins sha512-b3RoZXI=/);
    assert.deepEqual(rec.stopped, ['audit']);
    assert.equal(rec.contexts.length, 1, 'not created again');
    await h.host.close();
  });
});

describe('plugin host: metrics exporters', () => {
  it("calls export() with berth's metrics every interval", async () => {
    const exported: string[] = [];
    const h = hostHarness([definition('push', () => ({ metricsExporter: { export: async (text) => void exported.push(text) } }), { provides: ['metrics-exporter'] })], { exportIntervalMs: 50 });
    await h.host.sync([pluginConfig('push')]);

    await waitUntil(() => exported.length >= 2, 'two exports');

    assert.match(exported[0] ?? '', /^berth_plugin_running\{env="production",plugin="push"\} 1$/m);
    assert.match(exported[0] ?? '', /^# TYPE berth_plugin_calls_total counter$/m);
    await h.host.close();
  });
});

describe('plugin host: isolation: worker', () => {
  it('runs the plugin in a worker thread that receives events, and ends it at close', async () => {
    const entry = new URL('../fixtures/plugins/events.mjs', import.meta.url);
    const h = hostHarness([definition('events', () => assert.fail('an isolated plugin is not loaded in berth'), { entry })]);

    await h.host.sync([pluginConfig('events', { isolation: 'worker', timeoutSeconds: 10, config: { greeting: 'hi' } })]);
    assert.equal(h.host.get('events')?.state, 'running', JSON.stringify(h.host.get('events')?.lastError));
    assert.equal(h.host.get('events')?.isolation, 'worker');

    const healed = h.bus.emit('drift.healed', { env: ENV, revision: 'abc', apps: ['web'], description: 'healed web' });
    await waitUntil(() => h.controlCalls.includes(`sync healed ${healed.seq}`), 'the worker plugin to ask for a sync', 5000);
    assert.ok(h.logs.some((l) => l.msg === 'event handled' && l.plugin === 'events' && l.seq === healed.seq));
    assert.deepEqual(await h.host.health('events'), { state: 'running', ok: true, message: 'signal live' });

    await h.host.close();
    await h.bus.flush();
    assert.deepEqual(h.states('events'), [...HAPPY_PATH, ...STOP_PATH]);
    assert.ok(h.logs.some((l) => l.msg === 'stopping' && l.plugin === 'events'), 'stop() ran in the worker');
  });
});

describe('plugin host: renderTransform', () => {
  const state = (): import('../../src/render/types.js').DesiredState => {
    const r = renderEnvironment(memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web') }), 'production', { secrets: envSecretSource({}) });
    assert.ok(r.ok);
    return r.state;
  };

  it("chains the hooks in priority order; a refused output is left out, warned about and counted against its plugin", async () => {
    const h = hostHarness([
      definition('bump', () => ({ hooks: { renderTransform: (s) => s.apps.map((a) => ({ ...a, spec: { ...a.spec, replicas: a.spec.replicas + 1 } })) } })),
      definition('evil', () => ({ hooks: { renderTransform: (s) => s.apps.map((a) => ({ ...a, spec: { ...a.spec, privileged: true } })) } })),
      definition('double', () => ({ hooks: { renderTransform: (s) => s.apps.map((a) => ({ ...a, spec: { ...a.spec, replicas: a.spec.replicas * 2 } })) } })),
    ]);
    await h.host.sync([pluginConfig('bump', { priority: 1 }), pluginConfig('evil', { priority: 2 }), pluginConfig('double', { priority: 3 })]);
    const r = await h.host.renderTransform(state());
    assert.equal(r.state.apps[0]!.spec.replicas, 4, '1 + 1, then × 2; the privileged container refused');
    assert.equal(r.state.apps[0]!.spec.privileged, undefined);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /^plugin evil \(renderTransform\) returned apps that fail the repo's checks \(.*privileged/);
    assert.equal(h.host.get('evil')?.failures, 1);
    await h.host.close();
  });
});
