import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BerthEvent } from '../../src/events/types.js';
import type { HealthCheckTarget } from '../../src/health/providers/types.js';
import type { PluginContext, PluginInstance } from '../../src/plugins/types.js';
import { PluginWorkerError, workerFactory, type WorkerFailure, type WorkerPluginOptions } from '../../src/plugins/worker.js';
import { SecretValue } from '../../src/render/secrets.js';
import { desiredOf } from '../support/desired.js';

// `isolation: worker`: plugins from test/fixtures/plugins run in worker threads; a fake context
// records what they do through it.

const METRICS = '# TYPE berth_up gauge\nberth_up 1\n';

function fixture(file: string): URL {
  return new URL(`../fixtures/plugins/${file}`, import.meta.url);
}

interface Recorded {
  ctx: PluginContext;
  logs: { level: string; msg: string; fields?: Record<string, unknown> }[];
  controls: string[];
  /** Aborts ctx.signal, as the host does when the plugin stops. */
  stopping: AbortController;
}

function fakeContext(config: Record<string, unknown> = {}): Recorded {
  const logs: Recorded['logs'] = [];
  const controls: string[] = [];
  const stopping = new AbortController();
  const log =
    (level: string) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      logs.push({ level, msg, ...(fields && { fields }) });
    };
  const ctx: PluginContext = {
    name: 'fixture',
    env: 'production',
    config,
    log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    signal: stopping.signal,
    now: () => 0,
    controls: {
      sync: (reason) => controls.push(`sync ${reason}`),
      rescale: (reason) => controls.push(`rescale ${reason}`),
      suspend: (reason) => controls.push(`suspend ${reason}`),
      resume: () => controls.push('resume'),
      status: () => undefined,
    },
    metricsText: async () => METRICS,
  };
  return { ctx, logs, controls, stopping };
}

const started: PluginInstance[] = [];

after(async () => {
  await Promise.all(started.map((p) => p.terminate?.()));
});

async function startWorker(file: string, options: Partial<WorkerPluginOptions> = {}, config: Record<string, unknown> = {}): Promise<Recorded & { plugin: PluginInstance }> {
  const recorded = fakeContext(config);
  const plugin = await workerFactory(fixture(file), { name: file.replace('.mjs', ''), memoryLimitMb: 64, ...options })(recorded.ctx);
  started.push(plugin);
  return { ...recorded, plugin };
}

function drift(seq: number, type: 'drift.resolved' | 'drift.healed', description = `change ${seq}`): BerthEvent {
  const base = { seq, time: new Date(0).toISOString(), env: 'production', revision: 'abc', description };
  return type === 'drift.healed' ? { type, ...base, apps: ['web'] } : { type, ...base };
}

function targetOf(config: Record<string, unknown>, exec: HealthCheckTarget['exec'] = async () => ({ exitCode: 0, output: '' })): HealthCheckTarget {
  return { host: '127.0.0.1', port: 1, container: { id: 'c1', name: 'web-1' }, config, timeoutMs: 50, exec };
}

function failure(reason: WorkerFailure): (err: unknown) => boolean {
  return (err) => err instanceof PluginWorkerError && err.code === 'E_PLUGIN' && err.reason === reason;
}

describe('worker plugins: relaying calls', () => {
  it('delivers events in order; the plugin logs and asks for syncs through its context', async () => {
    const { plugin, logs, controls } = await startWorker('events.mjs', {}, { greeting: 'hi' });
    assert.deepEqual(plugin.eventHandler?.events, ['drift.*']);

    await plugin.start?.();
    for (let seq = 1; seq <= 5; seq++) await plugin.eventHandler!.handle(drift(seq, seq % 2 ? 'drift.resolved' : 'drift.healed'));

    assert.deepEqual(logs[0], { level: 'info', msg: 'started', fields: { name: 'fixture', env: 'production', config: { greeting: 'hi' } } });
    assert.deepEqual(
      logs.filter((l) => l.msg === 'event handled').map((l) => l.fields?.seq),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(controls, ['sync healed 2', 'sync healed 4']);
  });

  it('a handler that throws rejects that call with its error; the worker goes on', async () => {
    const { plugin } = await startWorker('events.mjs');

    await assert.rejects(Promise.resolve(plugin.eventHandler!.handle(drift(7, 'drift.resolved', 'explode'))), (err: Error & { code?: string }) => {
      assert.equal(err.message, 'cannot handle event 7');
      assert.equal(err.code, 'E_FIXTURE');
      assert.match(err.stack ?? '', /events\.mjs/);
      return true;
    });
    await plugin.eventHandler!.handle(drift(8, 'drift.resolved'));
    assert.deepEqual(await plugin.health?.(), { ok: true, message: 'signal live' });
  });

  it("aborts the plugin's signal when berth's aborts; stop() runs the plugin's stop and ends the worker", async () => {
    const { plugin, logs, stopping } = await startWorker('events.mjs');

    stopping.abort();
    assert.deepEqual(await plugin.health?.(), { ok: true, message: 'signal aborted' });
    await plugin.stop?.();

    assert.equal(logs.at(-1)?.msg, 'stopping');
    assert.equal((await plugin.health?.())?.ok, false);
    await assert.rejects(Promise.resolve(plugin.eventHandler!.handle(drift(1, 'drift.resolved'))), failure('stopped'));
  });

  describe('the other extension points (one worker)', () => {
    let extensions: Recorded & { plugin: PluginInstance };
    before(async () => {
      extensions = await startWorker('extensions.mjs');
    });

    it('scaler.propose receives a Date and answers', async () => {
      const now = new Date('2025-01-02T03:04:05.678Z');

      const proposal = await extensions.plugin.scaler?.propose({ env: 'production', app: 'web', declared: 2, current: 3, min: 1, max: 5, now });

      assert.equal(extensions.plugin.scaler?.intervalSeconds, 45);
      assert.deepEqual(proposal, { replicas: 4, reason: 'asked at 2025-01-02T03:04:05.678Z' });
    });

    it('the metrics exporter can ask berth for its metrics text', async () => {
      const { plugin, logs } = extensions;

      await plugin.metricsExporter?.export(METRICS);

      assert.deepEqual(logs.at(-1), { level: 'info', msg: 'exported', fields: { same: true, bytes: METRICS.length } });
    });

    it("a health check's signal is relayed: aborting it ends the check", async () => {
      const check = extensions.plugin.healthChecks?.[0];
      assert.deepEqual([check?.protocol, check?.describe], ['fixture', 'a fixture protocol']);
      const target = targetOf({});

      const abort = new AbortController();
      const result = check!.check(target, abort.signal);
      abort.abort();

      // latencyMs is measured by the worker's own clock (its ctx.now() is Date.now()), so it is not asserted.
      const { status, message } = await result;
      assert.deepEqual({ status, message }, { status: 'unhealthy', message: 'aborted (timeout 50 ms)' });
      assert.equal((await check!.check(target, AbortSignal.abort())).status, 'unhealthy');
    });

    it("a health check can exec in its replica and reveal its config's secrets, which still print masked", async () => {
      const execs: string[][] = [];
      const target = targetOf({ mode: 'exec', password: new SecretValue('db-password', 's3cret') }, async (command) => {
        execs.push(command);
        return { exitCode: 0, output: 'ok' };
      });

      const result = await extensions.plugin.healthChecks![0]!.check(target, new AbortController().signal);

      assert.deepEqual(execs, [['check', 's3cret']]);
      assert.deepEqual(result, { status: 'healthy', latencyMs: 0, message: 'exit 0 on web-1; config {"mode":"exec","password":"********"}' });
    });

    it('lifecycle hooks: preApply vetoes; renderTransform sees secrets as references only and returns them intact', async () => {
      const { plugin, logs } = extensions;
      const state = desiredOf({ web: '  env: { DB_PASSWORD: { secretRef: db-password } }\n' }, 'it-secret');
      const secret = state.apps[0]!.spec.env.DB_PASSWORD;
      assert.ok(secret instanceof SecretValue);

      const vetoed = await plugin.hooks?.preApply?.({ env: 'production', revision: 'abc', trigger: 'manual', changes: [{ app: 'a', actions: ['start'] }, { app: 'b', actions: ['start'] }] });
      const apps = await plugin.hooks?.renderTransform?.(state);

      assert.deepEqual(vetoed, { veto: 'too many changes in abc' });
      assert.equal(apps?.[0]?.labels.transformed, 'yes');
      assert.equal(apps?.[0]?.spec.env.DB_PASSWORD, secret, 'the same SecretValue comes back');
      const seen = String(logs.find((l) => l.msg === 'state seen')?.fields?.json);
      assert.ok(seen.includes('db-password') && !seen.includes('it-secret'), 'the worker sees the reference, never the value');

      const forging = { ...state, apps: state.apps.map((a) => ({ ...a, labels: { ...a.labels, fixture: 'forge-secret' } })) };
      await assert.rejects(Promise.resolve(plugin.hooks?.renderTransform?.(forging)), failure('secret'));
    });
  });
});

describe('worker plugins: failures stay in the worker', () => {
  it('terminate() rejects a call that never ends and frees the thread', async () => {
    const { plugin } = await startWorker('hangs.mjs');

    const pending = plugin.eventHandler!.handle(drift(1, 'drift.resolved'));
    const rejected = assert.rejects(Promise.resolve(pending), (err: Error) => failure('terminated')(err) && err.message === 'plugin hangs: worker terminated');
    await plugin.terminate?.();

    await rejected;
    assert.ok(!process.getActiveResourcesInfo().includes('MessagePort'), 'no worker port keeps the process alive');
    assert.deepEqual(await plugin.health?.(), { ok: false, message: 'plugin hangs: worker terminated' });
  });

  it('a plugin that allocates without bound ends its own worker (out of memory); berth goes on', async () => {
    const { plugin, logs } = await startWorker('hog.mjs', { memoryLimitMb: 32 });

    await assert.rejects(Promise.resolve(plugin.eventHandler!.handle(drift(1, 'drift.resolved'))), (err: Error) => failure('out-of-memory')(err) && /ran out of its 32 MB memory limit/.test(err.message));

    const health = await plugin.health?.();
    assert.equal(health?.ok, false);
    assert.match(health?.message ?? '', /ran out of its 32 MB memory limit/);
    await assert.rejects(Promise.resolve(plugin.eventHandler!.handle(drift(2, 'drift.resolved'))), failure('out-of-memory'));
    assert.deepEqual(
      logs.map((l) => [l.level, l.msg, l.fields?.reason]),
      [['error', 'plugin worker ended', 'out-of-memory']],
    );
  });

  const startFailures: { file: string; config?: Record<string, unknown>; reason: WorkerFailure }[] = [
    { file: 'no-create.mjs', reason: 'no-create' },
    { file: 'missing.mjs', reason: 'load' },
    { file: 'events.mjs', config: { failCreate: true }, reason: 'create' },
  ];
  for (const { file, config, reason } of startFailures) {
    it(`the factory rejects when the plugin cannot start: ${file} → ${reason}`, async () => {
      const { ctx } = fakeContext(config);

      await assert.rejects(Promise.resolve(workerFactory(fixture(file), { name: 'broken', memoryLimitMb: 32 })(ctx)), (err: Error) => {
        assert.ok(failure(reason)(err), `${err.name}: ${err.message}`);
        if (reason === 'no-create') assert.ok(err.message.includes(fixture(file).href), 'names the entry');
        return true;
      });
    });
  }

  it('refuses a config that still holds a secret: the host reveals secrets before create', async () => {
    const { ctx } = fakeContext({ auth: { token: new SecretValue('api-token', 'x') } });

    await assert.rejects(Promise.resolve(workerFactory(fixture('events.mjs'), { name: 'secretive', memoryLimitMb: 32 })(ctx)), (err: Error) => failure('config')(err) && (err as PluginWorkerError).context.field === '.auth.token');
  });
});
