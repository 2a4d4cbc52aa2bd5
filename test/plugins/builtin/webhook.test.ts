import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { BUILTIN_PLUGINS } from '../../../src/plugins/builtin/index.js';
import { eventFilter, redactor, retryAfterMs, type DeliveryOptions } from '../../../src/plugins/builtin/deliver.js';
import { manifest, webhookPlugin } from '../../../src/plugins/builtin/webhook.js';
import type { PluginInstance } from '../../../src/plugins/types.js';
import { compilePluginSchema } from '../../../src/render/schema.js';
import { ROOT } from '../../support/repo.js';
import { berthEvent, closedPort, fakePluginContext, startReceiver, type FakePluginContext, type Receiver } from '../../support/plugin-context.js';

const SECRET = 'hush-hush-0123456789';
const TOKEN = 'token-in-a-header-4242';
/** The built-ins docs/plugins/builtin.md covers (others may be registered too). */
const DOCUMENTED = ['pushgateway', 'redis-bridge', 'slack', 'webhook'];
/** Backoff of milliseconds, so retries take no time. */
const FAST = { baseDelayMs: 5, maxDelayMs: 20, retryAfterCapMs: 2000 };

const drift = (seq?: number) => berthEvent('drift.detected', { env: 'production', revision: `main@sha1:${'a'.repeat(40)}`, apps: ['web'], selfHeal: true, description: 'web: 1 replica missing' }, seq === undefined ? {} : { seq });
const progress = () => berthEvent('app.progress', { env: 'production', app: 'web', phase: 'start', message: 'starting 1' });
const healthChanged = () => berthEvent('health.changed', { env: 'production', app: 'web', previous: { status: 'Healthy' }, health: { status: 'Degraded', message: 'probe failed' } });

/** Starts the plugin as the host would; `stop` aborts the signal, then calls stop(). */
async function start(config: Record<string, unknown>, options: DeliveryOptions = FAST): Promise<{ plugin: PluginInstance; fake: FakePluginContext; idle: () => Promise<void>; stop: () => Promise<void> }> {
  const fake = fakePluginContext(config, { name: 'hooks' });
  const plugin = await webhookPlugin(options)(fake.ctx);
  await plugin.start?.();
  return {
    plugin,
    fake,
    // The queue is private: a stop with a long grace waits for it, but here we only poll health.
    idle: async () => {
      for (let i = 0; i < 500; i++) {
        const h = await plugin.health!();
        if (/queued 0/.test(h.message ?? '')) {
          await new Promise((r) => setTimeout(r, 5));
          if (/queued 0/.test((await plugin.health!()).message ?? '')) return;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('deliveries did not settle');
    },
    stop: async () => {
      fake.abort();
      await plugin.stop?.();
    },
  };
}

describe('webhook: config schema', () => {
  const validate = compilePluginSchema(manifest.configSchema!);
  const cases: { name: string; config: unknown; ok: boolean }[] = [
    { name: 'url only', config: { url: 'https://hooks.example.com/berth' }, ok: true },
    { name: 'everything', config: { url: 'http://127.0.0.1:9000/x?y=1', secret: 's', events: ['*', 'app.progress', 'drift.*', 'plugin.stateChanged'], headers: { Authorization: 'Bearer x', 'X-Team': 'ops' }, maxAttempts: 3, timeoutSeconds: 2.5 }, ok: true },
    { name: 'no url', config: {}, ok: false },
    { name: 'ftp url', config: { url: 'ftp://example.com/' }, ok: false },
    { name: 'credentials in the url', config: { url: 'https://user:pw@example.com/' }, ok: false },
    { name: 'unknown field', config: { url: 'https://example.com/', retries: 3 }, ok: false },
    { name: 'malformed event selector', config: { url: 'https://example.com/', events: ['drift'] }, ok: false },
    { name: 'empty events', config: { url: 'https://example.com/', events: [] }, ok: false },
    { name: 'reserved header X-Berth-*', config: { url: 'https://example.com/', headers: { 'x-BERTH-event': 'forged' } }, ok: false },
    { name: 'reserved header Content-Type', config: { url: 'https://example.com/', headers: { 'Content-Type': 'text/plain' } }, ok: false },
    { name: 'header value with a newline', config: { url: 'https://example.com/', headers: { 'X-A': 'a\r\nX-B: b' } }, ok: false },
    { name: 'maxAttempts 0', config: { url: 'https://example.com/', maxAttempts: 0 }, ok: false },
    { name: 'timeoutSeconds 0', config: { url: 'https://example.com/', timeoutSeconds: 0 }, ok: false },
    { name: 'empty secret', config: { url: 'https://example.com/', secret: '' }, ok: false },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'rejects'} ${c.name}`, () => {
      assert.equal(validate(structuredClone(c.config)), c.ok, JSON.stringify(validate.errors));
    });
  }

  it('fills in the documented defaults', () => {
    const config: Record<string, unknown> = { url: 'https://example.com/' };
    assert.ok(validate(config));
    assert.deepEqual(config, { url: 'https://example.com/', events: ['*'], maxAttempts: 5, timeoutSeconds: 10 });
  });

  it('every built-in is registered under its manifest name, with a schema and an entry a worker can load', async () => {
    for (const [name, b] of Object.entries(BUILTIN_PLUGINS)) {
      assert.equal(b.manifest.name, name);
      assert.ok(b.manifest.configSchema && compilePluginSchema(b.manifest.configSchema), `${name} has a schema that compiles`);
      const mod = (await import(b.entry!.href)) as { create?: unknown; manifest?: unknown };
      assert.equal(mod.create, b.create, `${name}: its entry exports its create`);
      assert.equal(mod.manifest, b.manifest);
    }
    for (const name of DOCUMENTED) assert.ok(BUILTIN_PLUGINS[name], `${name} is registered`);
  });
});

describe('built-in plugins: the examples in docs/plugins/builtin.md', () => {
  /** What render puts where a secretRef was: the secret's value. */
  const SECRETS: Record<string, string> = {
    'ops-hook-secret': 'shared-secret',
    'ops-hook-token': 'Bearer t0ken',
    'slack-deploys-hook': 'https://hooks.slack.com/services/T0/B0/XYZ',
    'pushgateway-password': 'pw',
    'redis-password': 'pw',
  };
  const resolve = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(resolve);
    if (v && typeof v === 'object') {
      const ref = (v as { secretRef?: string }).secretRef;
      if (ref !== undefined) return SECRETS[ref] ?? assert.fail(`unknown secret ${ref} in the docs`);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]));
    }
    return v;
  };
  const markdown = readFileSync(path.join(ROOT, 'docs/plugins/builtin.md'), 'utf8');
  const examples = [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].flatMap((m) => parseAllDocuments(m[1]!).map((d) => d.toJS() as { kind: string; spec: { use: string; config: unknown } }));

  it('has an example per built-in it documents', () => {
    assert.deepEqual([...new Set(examples.map((e) => e.spec.use))].sort(), DOCUMENTED);
  });
  for (const example of examples) {
    it(`${example.spec.use}: ${JSON.stringify(example.spec.config).slice(0, 60)}`, () => {
      assert.equal(example.kind, 'Plugin');
      const validate = compilePluginSchema(BUILTIN_PLUGINS[example.spec.use]!.manifest.configSchema!);
      assert.ok(validate(resolve(example.spec.config)), JSON.stringify(validate.errors));
    });
  }
});

describe('webhook: event selection', () => {
  const table: [string[], string, boolean][] = [
    [['*'], 'drift.detected', true],
    [['*'], 'app.progress', false],
    [['*', 'app.progress'], 'app.progress', true],
    [['app.*'], 'app.progress', true],
    [['drift.*'], 'drift.healed', true],
    [['drift.*'], 'driftless.x', false],
    [['reconcile.finished'], 'reconcile.started', false],
  ];
  for (const [selectors, type, expected] of table) {
    it(`${JSON.stringify(selectors)} ${expected ? 'selects' : 'skips'} ${type}`, () => assert.equal(eventFilter(selectors)(type), expected));
  }
});

describe('webhook: delivery', () => {
  let receiver: Receiver;
  before(async () => (receiver = await startReceiver()));
  after(() => receiver.stop());
  beforeEach(() => {
    receiver.requests.length = 0;
    receiver.fallback = { status: 200 };
  });

  it('POSTs the event as JSON with its type, a delivery id and a signature verifiable with the secret', async () => {
    const { plugin, idle, stop } = await start({ url: `${receiver.url}/hook/?x=/1`, secret: SECRET });
    const event = drift(7);
    await plugin.eventHandler!.handle(event);
    const [req] = await receiver.waitFor(1);
    await idle();
    await stop();
    assert.equal(req!.method, 'POST');
    assert.equal(req!.url, '/hook/?x=/1', 'the URL as configured, trailing slashes kept');
    assert.deepEqual(JSON.parse(req!.body), event);
    assert.equal(req!.headers['content-type'], 'application/json');
    assert.equal(req!.headers['x-berth-event'], 'drift.detected');
    assert.match(req!.headers['x-berth-delivery'] ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(req!.headers['user-agent'] ?? '', /^berth\//);
    const expected = `sha256=${createHmac('sha256', SECRET).update(req!.body).digest('hex')}`;
    assert.equal(req!.headers['x-berth-signature-256'], expected);
  });

  it('sends no signature without a secret, and the extra headers', async () => {
    const { plugin, idle, stop } = await start({ url: receiver.url, headers: { Authorization: `Bearer ${TOKEN}`, 'X-Team': 'ops', 'User-Agent': 'ops-relay/2' } });
    await plugin.eventHandler!.handle(drift());
    const [req] = await receiver.waitFor(1);
    await idle();
    await stop();
    assert.equal(req!.headers['x-berth-signature-256'], undefined);
    assert.equal(req!.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(req!.headers['x-team'], 'ops');
    assert.equal(req!.headers['user-agent'], 'ops-relay/2', "a config's User-Agent replaces berth's");
  });

  it('leaves app.progress out by default and sends only the selected events', async () => {
    const all = await start({ url: receiver.url });
    await all.plugin.eventHandler!.handle(progress());
    await all.plugin.eventHandler!.handle(drift());
    await receiver.waitFor(1);
    await all.idle();
    await all.stop();
    assert.deepEqual(receiver.requests.map((r) => r.headers['x-berth-event']), ['drift.detected']);
    assert.deepEqual(all.plugin.eventHandler!.events, ['*']);

    receiver.requests.length = 0;
    const some = await start({ url: receiver.url, events: ['health.*', 'app.progress'] });
    for (const e of [drift(), progress(), healthChanged()]) await some.plugin.eventHandler!.handle(e);
    await receiver.waitFor(2);
    await some.idle();
    await some.stop();
    assert.deepEqual(receiver.requests.map((r) => r.headers['x-berth-event']), ['app.progress', 'health.changed']);
  });

  it('retries a 500 with backoff until it succeeds, with the same delivery id and signature', async () => {
    receiver.reply({ status: 500 }, { status: 502 });
    const { plugin, fake, idle, stop } = await start({ url: receiver.url, secret: SECRET }, { ...FAST, baseDelayMs: 50, maxDelayMs: 1000 });
    await plugin.eventHandler!.handle(drift());
    const reqs = await receiver.waitFor(3);
    await idle();
    assert.equal(reqs.length, 3);
    assert.equal(new Set(reqs.map((r) => r.headers['x-berth-delivery'])).size, 1);
    assert.equal(new Set(reqs.map((r) => r.headers['x-berth-signature-256'])).size, 1);
    const [first, second] = [reqs[1]!.at - reqs[0]!.at, reqs[2]!.at - reqs[1]!.at];
    assert.ok(first >= 45 && second >= 95, `backoff doubles from 50 ms: waited ${first} then ${second} ms`);
    assert.deepEqual(await plugin.health!(), { ok: true, message: 'delivered 1, failed 0, dropped 0, queued 0' });
    assert.equal(fake.logged('warn').length, 0);
    assert.equal(fake.logged('debug', 'delivery attempt failed: retrying').length, 2);
    await stop();
  });

  const statuses: [number, number][] = [
    [400, 1],
    [401, 1],
    [404, 1],
    [422, 1],
    [408, 2],
    [429, 2],
    [503, 2],
  ];
  for (const [status, requests] of statuses) {
    it(`${requests === 1 ? 'does not retry' : 'retries'} HTTP ${status}`, async () => {
      receiver.reply({ status });
      const { plugin, fake, idle, stop } = await start({ url: receiver.url });
      await plugin.eventHandler!.handle(drift());
      await receiver.waitFor(requests);
      await idle();
      await new Promise((r) => setTimeout(r, 50));
      await stop();
      assert.equal(receiver.requests.length, requests);
      const health = await plugin.health!();
      assert.equal(health.ok, requests === 2);
      if (requests === 1) assert.equal(fake.logged('warn', 'delivery failed: giving up on it')[0]?.fields?.status, status);
    });
  }

  it('gives up after maxAttempts, logs once and counts it', async () => {
    receiver.fallback = { status: 500, body: 'boom' };
    const { plugin, fake, idle, stop } = await start({ url: receiver.url, maxAttempts: 3 });
    await plugin.eventHandler!.handle(drift());
    await receiver.waitFor(3);
    await idle();
    await stop();
    assert.equal(receiver.requests.length, 3);
    const [warn] = fake.logged('warn', 'delivery failed: giving up on it');
    assert.equal(warn?.fields?.attempts, 3);
    assert.equal(warn?.fields?.status, 500);
    assert.equal(warn?.fields?.error, 'HTTP 500: boom');
    const health = await plugin.health!();
    assert.equal(health.ok, false);
    assert.match(health.message ?? '', /failed 1/);
  });

  it('honours Retry-After (seconds) over its own backoff', async () => {
    receiver.reply({ status: 429, headers: { 'retry-after': '1' } });
    const { plugin, idle, stop } = await start({ url: receiver.url });
    await plugin.eventHandler!.handle(drift());
    const [first, second] = await receiver.waitFor(2, 5000);
    await idle();
    await stop();
    const waited = second!.at - first!.at;
    assert.ok(waited >= 950 && waited < 3000, `waited ${waited} ms`);
  });

  it('caps a long Retry-After', async () => {
    receiver.reply({ status: 503, headers: { 'retry-after': '3600' } });
    const { plugin, idle, stop } = await start({ url: receiver.url }, { ...FAST, retryAfterCapMs: 100 });
    await plugin.eventHandler!.handle(drift());
    const [first, second] = await receiver.waitFor(2, 3000);
    await idle();
    await stop();
    assert.ok(second!.at - first!.at < 1000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    assert.equal(retryAfterMs('7', now), 7000);
    assert.equal(retryAfterMs('Tue, 01 Jan 2030 00:00:05 GMT', now), 5000);
    assert.equal(retryAfterMs('Mon, 31 Dec 2029 23:00:00 GMT', now), 0);
    assert.equal(retryAfterMs('soon', now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
  });

  it('keeps deliveries in order, a retried one included', async () => {
    receiver.reply({ status: 500 }, { status: 500 });
    const { plugin, idle, stop } = await start({ url: receiver.url });
    for (let seq = 1; seq <= 5; seq++) await plugin.eventHandler!.handle(drift(seq));
    await receiver.waitFor(7);
    await idle();
    await stop();
    assert.deepEqual(receiver.requests.map((r) => (JSON.parse(r.body) as { seq: number }).seq), [1, 1, 1, 2, 3, 4, 5]);
  });

  it('a dead endpoint is bounded: after one delivery gives up, the next get one attempt each until one succeeds', async () => {
    receiver.fallback = { status: 503 };
    const { plugin, fake, idle, stop } = await start({ url: receiver.url, maxAttempts: 3 });
    for (let seq = 1; seq <= 4; seq++) await plugin.eventHandler!.handle(drift(seq));
    await receiver.waitFor(6);
    await idle();
    assert.deepEqual(receiver.requests.map((r) => (JSON.parse(r.body) as { seq: number }).seq), [1, 1, 1, 2, 3, 4]);
    assert.equal(fake.logged('warn', 'delivery failed: giving up on it').length, 1, 'one warning for the outage');

    receiver.fallback = { status: 200 };
    receiver.requests.length = 0;
    await plugin.eventHandler!.handle(drift(5));
    await receiver.waitFor(1);
    await idle();
    assert.equal(fake.logged('info', 'deliveries succeed again')[0]?.fields?.failedBefore, 4);
    assert.match((await plugin.health!()).message ?? '', /delivered 1, failed 4/);

    // Recovered: full retries again.
    receiver.requests.length = 0;
    receiver.reply({ status: 500 });
    await plugin.eventHandler!.handle(drift(6));
    await receiver.waitFor(2);
    await idle();
    assert.equal((await plugin.health!()).ok, true);
    await stop();
  });

  it('times out an attempt that hangs, and retries it', async () => {
    receiver.reply({ status: 200, delayMs: 2000 });
    const { plugin, fake, idle, stop } = await start({ url: receiver.url, timeoutSeconds: 0.2, maxAttempts: 2 });
    await plugin.eventHandler!.handle(drift());
    await receiver.waitFor(2, 3000);
    await idle();
    await stop();
    assert.match(String(fake.logged('debug', 'delivery attempt failed: retrying')[0]?.fields?.error), /timed out after 0.2s/);
    assert.equal((await plugin.health!()).ok, true);
  });

  it('retries network errors and gives up without throwing', async () => {
    const port = await closedPort();
    const { plugin, fake, idle, stop } = await start({ url: `http://127.0.0.1:${port}/hook`, maxAttempts: 2 });
    await plugin.eventHandler!.handle(drift());
    await idle();
    await stop();
    const [warn] = fake.logged('warn', 'delivery failed: giving up on it');
    assert.equal(warn?.fields?.attempts, 2);
    assert.match(String(warn?.fields?.error), /ECONNREFUSED/);
    assert.equal(warn?.fields?.target, `http://127.0.0.1:${port}`);
  });

  it('does not follow redirects', async () => {
    receiver.reply({ status: 307, headers: { location: 'http://127.0.0.1:1/elsewhere' } });
    const { plugin, fake, idle, stop } = await start({ url: receiver.url });
    await plugin.eventHandler!.handle(drift());
    await receiver.waitFor(1);
    await idle();
    await stop();
    assert.equal(receiver.requests.length, 1);
    assert.match(String(fake.logged('warn')[0]?.fields?.error), /redirects are not followed/);
  });

  it('never logs the secret, the header values or the URL\'s path and query, even when the server echoes them', async () => {
    receiver.reply({ status: 500, echoHeaders: true }, { status: 400, echoHeaders: true });
    const url = `${receiver.url}/hooks/path-token-77?key=query-token-99`;
    const { plugin, fake, idle, stop } = await start({ url, secret: SECRET, headers: { Authorization: `Bearer ${TOKEN}` } });
    await plugin.eventHandler!.handle(drift());
    await receiver.waitFor(2);
    await idle();
    await stop();
    assert.ok(fake.logs.some((l) => l.level === 'warn'), 'the failure was logged');
    const text = fake.logText();
    for (const leak of [SECRET, TOKEN, 'path-token-77', 'query-token-99']) assert.ok(!text.includes(leak), `${leak} in logs: ${text}`);
    assert.ok(text.includes('[redacted]'), 'the echoed answer is logged redacted');
  });

  it('stop aborts the delivery in flight and drops what waits, counted and logged once', async () => {
    receiver.reply({ status: 200, delayMs: 3000 });
    const { plugin, fake, stop } = await start({ url: receiver.url });
    for (let seq = 1; seq <= 3; seq++) await plugin.eventHandler!.handle(drift(seq));
    await receiver.waitFor(1);
    const started = performance.now();
    await stop();
    assert.ok(performance.now() - started < 1000, 'stop does not wait for the hanging request');
    assert.equal(fake.logged('warn', 'deliveries dropped at stop')[0]?.fields?.count, 3);
    await plugin.eventHandler!.handle(drift(4));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(receiver.requests.length, 1, 'nothing is sent after stop');
    assert.match((await plugin.health!()).message ?? '', /dropped 4/);
  });

  it('a full queue drops the oldest deliveries and warns once', async () => {
    receiver.reply({ status: 200, delayMs: 300 });
    const { plugin, fake, idle, stop } = await start({ url: receiver.url }, { ...FAST, maxQueue: 2 });
    for (let seq = 1; seq <= 5; seq++) await plugin.eventHandler!.handle(drift(seq));
    await receiver.waitFor(3, 3000);
    await idle();
    await stop();
    // 1 was in flight when 2..5 came: 2 and 3 were dropped for 4 and 5.
    assert.deepEqual(receiver.requests.map((r) => (JSON.parse(r.body) as { seq: number }).seq), [1, 4, 5]);
    assert.equal(fake.logged('warn', 'delivery queue full: dropping the oldest deliveries').length, 1);
    assert.match((await plugin.health!()).message ?? '', /delivered 3, failed 0, dropped 2/);
  });

  it('refuses a config the host should have refused, with E_PLUGIN', () => {
    const bad: Record<string, unknown>[] = [{}, { url: 'ftp://x/' }, { url: 'http://u:p@x/' }, { url: 'http://x/', headers: { 'X-Berth-Event': 'x' } }, { url: 'http://x/', headers: { A: 'a\nb' } }];
    for (const config of bad) assert.throws(() => webhookPlugin()(fakePluginContext(config).ctx), { code: 'E_PLUGIN' }, JSON.stringify(config));
  });
});

describe('deliver: redactor', () => {
  it('replaces each secret, its percent-encoded and base64 forms, longest first', () => {
    const redact = redactor(['a b', 'a b c', undefined, '']);
    assert.equal(redact('x a b c y a%20b z YSBi'), 'x [redacted] y [redacted] z [redacted]');
  });
});
