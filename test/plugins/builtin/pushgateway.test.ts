import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, beforeEach, describe, it } from 'node:test';
import { create, groupingPath, manifest } from '../../../src/plugins/builtin/pushgateway.js';
import type { PluginInstance } from '../../../src/plugins/types.js';
import { compilePluginSchema } from '../../../src/render/schema.js';
import { closedPort, fakePluginContext, startReceiver, type FakePluginContext, type Receiver } from '../../support/plugin-context.js';

const METRICS = '# HELP berth_reconcile_total Reconciles.\n# TYPE berth_reconcile_total counter\nberth_reconcile_total{result="Succeeded"} 3\n';
const PASSWORD = 'pg-password-31337';

describe('pushgateway: config schema', () => {
  const validate = compilePluginSchema(manifest.configSchema!);
  const cases: { name: string; config: unknown; ok: boolean }[] = [
    { name: 'url only', config: { url: 'http://127.0.0.1:9091' }, ok: true },
    {
      name: 'every field',
      config: { url: 'https://gw.example.com/push', job: 'berth', instance: 'host-1', groupingLabels: { env: 'production' }, basicAuth: { username: 'berth', password: 'x' }, deleteOnStop: true, intervalSeconds: 30, timeoutSeconds: 2 },
      ok: true,
    },
    { name: 'no url', config: {}, ok: false },
    { name: 'a url with a query', config: { url: 'http://127.0.0.1:9091/?x=1' }, ok: false },
    { name: 'a grouping label named job', config: { url: 'http://127.0.0.1:9091', groupingLabels: { job: 'x' } }, ok: false },
    { name: 'a reserved label name', config: { url: 'http://127.0.0.1:9091', groupingLabels: { __name__: 'x' } }, ok: false },
    { name: 'an invalid label name', config: { url: 'http://127.0.0.1:9091', groupingLabels: { 'env-name': 'x' } }, ok: false },
    { name: 'basicAuth without password', config: { url: 'http://127.0.0.1:9091', basicAuth: { username: 'berth' } }, ok: false },
    { name: 'a username with a colon', config: { url: 'http://127.0.0.1:9091', basicAuth: { username: 'a:b', password: 'x' } }, ok: false },
    { name: 'an empty job', config: { url: 'http://127.0.0.1:9091', job: '' }, ok: false },
    { name: 'intervalSeconds 0', config: { url: 'http://127.0.0.1:9091', intervalSeconds: 0 }, ok: false },
    { name: 'an unknown field', config: { url: 'http://127.0.0.1:9091', method: 'POST' }, ok: false },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'rejects'} ${c.name}`, () => assert.equal(validate(structuredClone(c.config)), c.ok, JSON.stringify(validate.errors)));
  }

  it('fills in the documented defaults, intervalSeconds (read by the host) included', () => {
    const config: Record<string, unknown> = { url: 'http://127.0.0.1:9091' };
    assert.ok(validate(config));
    assert.deepEqual(config, { url: 'http://127.0.0.1:9091', job: 'berth', deleteOnStop: false, intervalSeconds: 15, timeoutSeconds: 4 });
  });
});

describe('pushgateway: grouping key paths', () => {
  const table: [[string, string][], string][] = [
    [[['job', 'berth'], ['instance', 'host-1']], 'job/berth/instance/host-1'],
    [[['job', 'a b']], 'job/a%20b'],
    [[['job', 'berth'], ['path', '/var/tmp']], 'job/berth/path@base64/L3Zhci90bXA'],
    [[['job', 'berth'], ['instance', '']], 'job/berth/instance@base64/='],
  ];
  for (const [labels, path] of table) it(path, () => assert.equal(groupingPath(labels), path));
});

describe('pushgateway: pushing', () => {
  let receiver: Receiver;
  before(async () => (receiver = await startReceiver()));
  after(() => receiver.stop());
  beforeEach(() => {
    receiver.requests.length = 0;
    receiver.fallback = { status: 200 };
  });

  async function start(config: Record<string, unknown>): Promise<{ plugin: PluginInstance; fake: FakePluginContext; stop: () => Promise<void> }> {
    const fake = fakePluginContext(config, { name: 'metrics' });
    const plugin = await create(fake.ctx);
    await plugin.start?.();
    return {
      plugin,
      fake,
      stop: async () => {
        fake.abort();
        await plugin.stop?.();
      },
    };
  }

  it('PUTs the metrics text to /metrics/job/berth/instance/<hostname> as text format 0.0.4', async () => {
    const { plugin, stop } = await start({ url: `${receiver.url}/` });
    await plugin.metricsExporter!.export(METRICS);
    await stop();
    assert.equal(receiver.requests.length, 1, 'no DELETE without deleteOnStop');
    const [req] = receiver.requests;
    assert.equal(req!.method, 'PUT');
    assert.equal(req!.url, `/metrics/job/berth/instance/${encodeURIComponent(os.hostname())}`);
    assert.equal(req!.headers['content-type'], 'text/plain; version=0.0.4');
    assert.equal(req!.headers.authorization, undefined);
    assert.equal(req!.body, METRICS);
    assert.deepEqual(await plugin.health!(), { ok: true, message: `pushed 1 times to ${receiver.url}` });
  });

  it('uses job, instance, grouping labels, a path prefix and basic auth', async () => {
    const { plugin, stop } = await start({ url: `${receiver.url}/gw`, job: 'deploys', instance: 'host-1', groupingLabels: { env: 'production' }, basicAuth: { username: 'berth', password: PASSWORD } });
    await plugin.metricsExporter!.export(METRICS);
    await stop();
    const [req] = receiver.requests;
    assert.equal(req!.url, '/gw/metrics/job/deploys/instance/host-1/env/production');
    assert.equal(req!.headers.authorization, `Basic ${Buffer.from(`berth:${PASSWORD}`).toString('base64')}`);
  });

  it('a failed push rejects (E_PLUGIN), warns once per outage and is not retried; the next push recovers', async () => {
    receiver.reply({ status: 500, body: 'push failed' }, { status: 500 });
    const { plugin, fake, stop } = await start({ url: receiver.url, instance: 'h' });
    await assert.rejects(plugin.metricsExporter!.export(METRICS), { code: 'E_PLUGIN', message: /HTTP 500: push failed/ });
    await assert.rejects(plugin.metricsExporter!.export(METRICS), { code: 'E_PLUGIN' });
    assert.equal(receiver.requests.length, 2, 'one attempt per push: the next interval is the retry');
    assert.equal(fake.logged('warn', 'push failed').length, 1);
    assert.deepEqual(await plugin.health!(), { ok: false, message: 'last 2 pushes failed (HTTP 500)' });
    await plugin.metricsExporter!.export(METRICS);
    assert.equal(fake.logged('info', 'pushes succeed again')[0]?.fields?.failedBefore, 2);
    assert.equal((await plugin.health!()).ok, true);
    await stop();
  });

  it('an unreachable Pushgateway rejects within timeoutSeconds', async () => {
    const port = await closedPort();
    const { plugin, stop } = await start({ url: `http://127.0.0.1:${port}`, instance: 'h' });
    await assert.rejects(plugin.metricsExporter!.export(METRICS), { code: 'E_PLUGIN', message: /ECONNREFUSED/ });
    receiver.reply({ status: 200, delayMs: 3000 });
    const slow = await start({ url: receiver.url, instance: 'h', timeoutSeconds: 0.2 });
    await assert.rejects(slow.plugin.metricsExporter!.export(METRICS), { message: /timed out after 0.2s/ });
    await stop();
    await slow.stop();
  });

  it('a newer push aborts one still in flight, so older metrics never land last', async () => {
    receiver.reply({ status: 200, delayMs: 2000 });
    const { plugin, stop } = await start({ url: receiver.url, instance: 'h' });
    const first = plugin.metricsExporter!.export('old 1\n');
    await receiver.waitFor(1);
    await plugin.metricsExporter!.export('new 2\n');
    await first; // superseded: resolves, nothing to report
    assert.deepEqual(receiver.requests.map((r) => r.body), ['old 1\n', 'new 2\n']);
    assert.equal((await plugin.health!()).ok, true);
    await stop();
  });

  it('deleteOnStop DELETEs the group at stop, after the signal is aborted', async () => {
    const { plugin, fake, stop } = await start({ url: receiver.url, instance: 'h', deleteOnStop: true, basicAuth: { username: 'u', password: PASSWORD } });
    await plugin.metricsExporter!.export(METRICS);
    await stop();
    assert.deepEqual(receiver.requests.map((r) => `${r.method} ${r.url}`), ['PUT /metrics/job/berth/instance/h', 'DELETE /metrics/job/berth/instance/h']);
    assert.equal(receiver.requests[1]!.headers.authorization, receiver.requests[0]!.headers.authorization);
    assert.equal(fake.logged('info', 'metrics group deleted').length, 1);
  });

  it('a failed DELETE at stop is logged, not thrown', async () => {
    receiver.reply({ status: 503 });
    const { fake, stop } = await start({ url: receiver.url, instance: 'h', deleteOnStop: true });
    await stop();
    assert.equal(fake.logged('warn', 'deleting the metrics group failed')[0]?.fields?.status, 503);
  });

  it('never logs the password, even when the gateway echoes the request headers', async () => {
    receiver.reply({ status: 401, echoHeaders: true }, { status: 401, echoHeaders: true });
    const { plugin, fake, stop } = await start({ url: receiver.url, instance: 'h', deleteOnStop: true, basicAuth: { username: 'u', password: PASSWORD } });
    const err = await plugin.metricsExporter!.export(METRICS).catch((e: Error) => e);
    await stop();
    assert.ok(err instanceof Error);
    const basic = Buffer.from(`u:${PASSWORD}`).toString('base64');
    for (const leak of [PASSWORD, basic]) {
      assert.ok(!fake.logText().includes(leak), fake.logText());
      assert.ok(!err.message.includes(leak), err.message);
    }
  });

  it('refuses credentials in the URL and an unresolved secret (E_PLUGIN)', () => {
    assert.throws(() => create(fakePluginContext({ url: 'http://u:p@127.0.0.1:9091' }).ctx), { code: 'E_PLUGIN' });
    assert.throws(() => create(fakePluginContext({ url: 'http://127.0.0.1:9091/?x=1' }).ctx), { code: 'E_PLUGIN' });
    assert.throws(() => create(fakePluginContext({ url: 'http://127.0.0.1:9091', basicAuth: { username: 'u', password: { secretRef: 'pg' } } }).ctx), { code: 'E_PLUGIN' });
  });
});
