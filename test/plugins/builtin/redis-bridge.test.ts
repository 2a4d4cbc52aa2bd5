import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { create, manifest, parseCommand } from '../../../src/plugins/builtin/redis-bridge.js';
import type { PluginInstance } from '../../../src/plugins/types.js';
import { compilePluginSchema } from '../../../src/render/schema.js';
import { berthEvent, closedPort, fakePluginContext, type FakeContextOptions, type FakePluginContext } from '../../support/plugin-context.js';
import { requireRedis, startRedis, type TestRedis } from '../../support/redis.js';

const PASSWORD = 'redis-pass-8675309';

describe('redis-bridge: config schema', () => {
  const validate = compilePluginSchema(manifest.configSchema!);
  const cases: { name: string; config: unknown; ok: boolean }[] = [
    { name: 'url only', config: { url: 'redis://127.0.0.1:6379' }, ok: true },
    {
      name: 'every field',
      config: { url: 'rediss://redis.example.com:6380/2', password: 'x', eventsChannel: 'e', commandsChannel: 'c', repliesChannel: 'r', events: ['reconcile.*'], commands: ['sync'], connectTimeoutSeconds: 2 },
      ok: true,
    },
    { name: 'no url', config: {}, ok: false },
    { name: 'an http url', config: { url: 'http://127.0.0.1:6379' }, ok: false },
    { name: 'a url with a query', config: { url: 'redis://127.0.0.1:6379?family=6' }, ok: false },
    { name: 'an unknown command', config: { url: 'redis://127.0.0.1', commands: ['restart'] }, ok: false },
    { name: 'a channel with a space', config: { url: 'redis://127.0.0.1', eventsChannel: 'berth events' }, ok: false },
    { name: 'an unknown field', config: { url: 'redis://127.0.0.1', channel: 'x' }, ok: false },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'rejects'} ${c.name}`, () => assert.equal(validate(structuredClone(c.config)), c.ok, JSON.stringify(validate.errors)));
  }

  it('fills in the documented defaults (channels depend on the environment: set in code)', () => {
    const config: Record<string, unknown> = { url: 'redis://127.0.0.1' };
    assert.ok(validate(config));
    assert.deepEqual(config, { url: 'redis://127.0.0.1', events: ['*'], commands: ['sync', 'suspend', 'resume'], connectTimeoutSeconds: 4 });
  });

  it('refuses channels that feed each other (E_PLUGIN)', async () => {
    await assert.rejects(async () => create(fakePluginContext({ url: 'redis://127.0.0.1', repliesChannel: 'berth:production:commands' }).ctx), { code: 'E_PLUGIN', message: /three different channels/ });
  });
});

describe('redis-bridge: parsing commands', () => {
  const good: [string, unknown][] = [
    ['sync', { command: 'sync' }],
    ['  resume\n', { command: 'resume' }],
    ['{"command":"suspend","reason":"maintenance","id":"42"}', { command: 'suspend', reason: 'maintenance', id: '42' }],
  ];
  for (const [text, command] of good) it(`accepts ${JSON.stringify(text)}`, () => assert.deepEqual(parseCommand(text), { ok: true, command }));

  const bad: [string, string | null, RegExp][] = [
    ['restart', null, /expected sync, suspend, resume or a JSON object/],
    ['[1,2]', null, /expected a JSON object/],
    ['"sync"', null, /expected a JSON object/],
    ['{"command":"restart","id":"7"}', '7', /command must be one of sync, suspend, resume, not "restart"/],
    ['{"id":"7"}', '7', /command must be one of/],
    ['{"command":"sync","reson":"typo","id":"8"}', '8', /unknown field "reson"/],
    ['{"command":"sync","reason":5}', null, /reason must be a string/],
    ['{"command":"sync","id":5}', null, /id must be a string/],
    [JSON.stringify({ command: 'sync', reason: 'x'.repeat(20_000) }), null, /larger than/],
  ];
  for (const [text, id, error] of bad) {
    it(`refuses ${text.slice(0, 50)}`, () => {
      const parsed = parseCommand(text);
      assert.equal(parsed.ok, false);
      if (parsed.ok) return;
      assert.equal(parsed.id, id);
      assert.match(parsed.error, error);
    });
  }

  it('refuses a command the config does not allow', () => {
    assert.deepEqual(parseCommand('{"command":"suspend","id":"1"}', ['sync']), { ok: false, id: '1', error: 'command suspend is not allowed here (allowed: sync)' });
  });
});

describe('redis-bridge: against a real redis-server', () => {
  let redis: TestRedis | undefined;
  let locked: TestRedis | undefined;
  const clients: Redis[] = [];
  before(async () => {
    redis = await startRedis();
    locked = await startRedis({ password: PASSWORD });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await redis?.stop();
    await locked?.stop();
  });

  /** A plain client subscribed to `channel`, collecting its messages. */
  async function listen(url: string, channel: string, password?: string): Promise<{ messages: string[]; next: (n: number) => Promise<string[]> }> {
    const client = new Redis(url, { ...(password && { password }) });
    clients.push(client);
    const messages: string[] = [];
    client.on('message', (_channel: string, message: string) => void messages.push(message));
    await client.subscribe(channel);
    return {
      messages,
      next: async (n) => {
        for (let i = 0; i < 300 && messages.length < n; i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(messages.length >= n, `expected ${n} messages on ${channel}, got ${messages.length}`);
        return messages.slice();
      },
    };
  }

  async function publisher(url: string, password?: string): Promise<Redis> {
    const client = new Redis(url, { ...(password && { password }) });
    clients.push(client);
    return client;
  }

  async function start(t: TestContext, config: Record<string, unknown>, options: FakeContextOptions = {}): Promise<{ plugin: PluginInstance; fake: FakePluginContext; stop: () => Promise<void> } | undefined> {
    if (!requireRedis(t, redis)) return undefined;
    const fake = fakePluginContext({ url: redis.url, ...config }, { name: 'bus', env: 'staging', ...options });
    const plugin = await create(fake.ctx);
    await plugin.start!();
    return {
      plugin,
      fake,
      stop: async () => {
        fake.abort();
        await plugin.stop?.();
      },
    };
  }

  it('publishes the selected events as JSON on berth:<env>:events', async (t) => {
    const run = await start(t, {});
    if (!run || !redis) return;
    const sub = await listen(redis.url, 'berth:staging:events');
    const drift = berthEvent('drift.detected', { env: 'staging', revision: 'main@sha1:' + 'b'.repeat(40), apps: ['web'], selfHeal: false, description: 'x' });
    await run.plugin.eventHandler!.handle(berthEvent('app.progress', { env: 'staging', app: 'web', phase: 'start', message: 'chatty' }));
    await run.plugin.eventHandler!.handle(drift);
    const [message] = await sub.next(1);
    assert.deepEqual(JSON.parse(message!), drift);
    assert.equal(sub.messages.length, 1, 'app.progress is left out by default');
    assert.deepEqual(await run.plugin.health!(), { ok: true, message: 'publisher ready, subscriber ready; published 1, dropped 0' });
    await run.stop();
    assert.equal((await run.plugin.health!()).ok, false, 'not healthy once stopped');
  });

  it('a published "sync" calls controls.sync and is answered; JSON commands carry their id and reason', async (t) => {
    const run = await start(t, {});
    if (!run || !redis) return;
    const replies = await listen(redis.url, 'berth:staging:replies');
    const pub = await publisher(redis.url);
    await pub.publish('berth:staging:commands', 'sync');
    await pub.publish('berth:staging:commands', JSON.stringify({ command: 'suspend', reason: 'maintenance window', id: 'a1' }));
    await pub.publish('berth:staging:commands', JSON.stringify({ command: 'resume', id: 'a2' }));
    const answers = (await replies.next(3)).map((m) => JSON.parse(m) as unknown);
    assert.deepEqual(answers, [
      { id: null, ok: true },
      { id: 'a1', ok: true },
      { id: 'a2', ok: true },
    ]);
    assert.deepEqual(run.fake.controlCalls, [{ control: 'sync', reason: 'sync requested on Redis channel berth:staging:commands' }, { control: 'suspend', reason: 'maintenance window' }, { control: 'resume' }]);
    assert.equal(run.fake.logged('info', 'command received').length, 3);
    await run.stop();
  });

  it('invalid commands get ok: false and a warning, never a throw or a control call', async (t) => {
    const run = await start(t, { commands: ['sync'] });
    if (!run || !redis) return;
    const replies = await listen(redis.url, 'berth:staging:replies');
    const pub = await publisher(redis.url);
    for (const m of ['reboot', '{"command":"sync","force":true,"id":"x1"}', '{"command":"suspend","id":"x2"}', 'not json {']) await pub.publish('berth:staging:commands', m);
    const answers = (await replies.next(4)).map((m) => JSON.parse(m) as { id: string | null; ok: boolean; error: string });
    assert.deepEqual(answers.map((a) => [a.id, a.ok]), [
      [null, false],
      ['x1', false],
      ['x2', false],
      [null, false],
    ]);
    assert.match(answers[1]!.error, /unknown field "force"/);
    assert.match(answers[2]!.error, /not allowed/);
    assert.deepEqual(run.fake.controlCalls, []);
    assert.equal(run.fake.logged('warn', 'invalid command').length, 4);
    await run.stop();
  });

  it('a control that throws is answered ok: false with its message', async (t) => {
    const run = await start(t, {}, { failControl: (c) => (c === 'sync' ? new Error('controller is not running') : undefined) });
    if (!run || !redis) return;
    const replies = await listen(redis.url, 'berth:staging:replies');
    const pub = await publisher(redis.url);
    await pub.publish('berth:staging:commands', '{"command":"sync","id":"s1"}');
    assert.deepEqual(JSON.parse((await replies.next(1))[0]!), { id: 's1', ok: false, error: 'controller is not running' });
    await run.stop();
  });

  it('uses the channels the config names', async (t) => {
    const run = await start(t, { eventsChannel: 'ops:events', commandsChannel: 'ops:in', repliesChannel: 'ops:out', events: ['reconcile.error'] });
    if (!run || !redis) return;
    const events = await listen(redis.url, 'ops:events');
    const replies = await listen(redis.url, 'ops:out');
    await (await publisher(redis.url)).publish('ops:in', 'sync');
    await run.plugin.eventHandler!.handle(berthEvent('reconcile.error', { env: 'staging', trigger: 'poll', reason: 'SourceUnavailable', message: 'x' }));
    await replies.next(1);
    await events.next(1);
    await run.stop();
  });

  it('reconnects after Redis drops the connections (logged), re-subscribes, and goes on', async (t) => {
    const run = await start(t, {});
    if (!run || !redis) return;
    const admin = await publisher(redis.url);
    const replies = await listen(redis.url, 'berth:staging:replies');
    // Kill every client but the test's own: the bridge's publisher and subscriber.
    const list = String(await admin.client('LIST'));
    for (const name of ['berth-staging-bus-pub', 'berth-staging-bus-sub']) {
      const id = new RegExp(`id=(\\d+) [^\\n]*name=${name}`).exec(list)?.[1];
      assert.ok(id, `${name} is connected: ${list}`);
      await admin.client('KILL', 'ID', id);
    }
    for (let i = 0; i < 300 && run.fake.logged('info', 'redis connection restored').length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(run.fake.logged('warn', 'redis connection lost: reconnecting').length, 2);
    assert.equal(run.fake.logged('info', 'redis connection restored').length, 2);
    for (let i = 0; i < 300 && Number(((await admin.pubsub('NUMSUB', 'berth:staging:commands')) as [string, number])[1]) < 1; i++) await new Promise((r) => setTimeout(r, 10));
    await admin.publish('berth:staging:commands', '{"command":"sync","id":"after"}');
    assert.deepEqual(JSON.parse((await replies.next(1))[0]!), { id: 'after', ok: true });
    await run.stop();
  });

  it('while Redis is away, events are dropped and counted (not queued), health says so; it all comes back with Redis', async (t) => {
    // A server of its own: this test takes it down.
    const own = await startRedis();
    if (!requireRedis(t, own)) return;
    try {
      const fake = fakePluginContext({ url: own.url }, { name: 'bus', env: 'staging' });
      const plugin = await create(fake.ctx);
      await plugin.start!();
      const event = berthEvent('reconcile.error', { env: 'staging', trigger: 'poll', reason: 'SourceUnavailable', message: 'x' });
      await own.kill();
      for (let i = 0; i < 300 && fake.logged('warn', 'redis connection lost: reconnecting').length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      await plugin.eventHandler!.handle(event);
      await plugin.eventHandler!.handle(event);
      assert.equal(fake.logged('warn', 'events not published: dropping them until Redis is back').length, 1);
      const down = await plugin.health!();
      assert.equal(down.ok, false);
      assert.match(down.message ?? '', /published 0, dropped 2/);

      await own.restart();
      for (let i = 0; i < 500 && fake.logged('info', 'redis connection restored').length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(fake.logged('info', 'redis connection restored').length, 2);
      const sub = await listen(own.url, 'berth:staging:events');
      await plugin.eventHandler!.handle(event);
      await sub.next(1);
      assert.equal(fake.logged('info', 'publishing events again')[0]?.fields?.dropped, 2);
      assert.equal((await plugin.health!()).ok, true);
      fake.abort();
      await plugin.stop!();
    } finally {
      for (const c of clients.splice(0)) c.disconnect();
      await own.stop();
    }
  });

  it('start fails with a clear message when Redis is unreachable within connectTimeoutSeconds', async (t) => {
    if (!requireRedis(t, redis)) return;
    const port = await closedPort();
    const fake = fakePluginContext({ url: `redis://127.0.0.1:${port}`, connectTimeoutSeconds: 0.3 }, { name: 'bus' });
    const plugin = await create(fake.ctx);
    const started = performance.now();
    await assert.rejects(plugin.start!() as Promise<void>, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_PLUGIN');
      assert.match(err.message, new RegExp(`redis-bridge: cannot reach Redis at 127\\.0\\.0\\.1:${port} within 0\\.3s \\(.*ECONNREFUSED.*\\)`));
      return true;
    });
    assert.ok(performance.now() - started < 2000);
    assert.equal((await plugin.health!()).ok, false);
    await plugin.stop?.();
  });

  it('authenticates with config.password and never logs it; a wrong one fails start', async (t) => {
    if (!requireRedis(t, locked)) return;
    const good = fakePluginContext({ url: locked.url, password: PASSWORD }, { name: 'bus', env: 'staging' });
    const plugin = await create(good.ctx);
    await plugin.start!();
    const sub = await listen(locked.url, 'berth:staging:events', PASSWORD);
    await plugin.eventHandler!.handle(berthEvent('drift.resolved', { env: 'staging', revision: 'r', description: 'x' }));
    await sub.next(1);
    good.abort();
    await plugin.stop!();

    const bad = fakePluginContext({ url: locked.url, password: 'wrong-password-xyz', connectTimeoutSeconds: 0.5 }, { name: 'bus' });
    const refused = await create(bad.ctx);
    await assert.rejects(refused.start!() as Promise<void>, { code: 'E_PLUGIN', message: /WRONGPASS|invalid password|NOAUTH/ });
    await refused.stop?.();
    for (const text of [good.logText(), bad.logText()]) {
      assert.ok(!text.includes(PASSWORD) && !text.includes('wrong-password-xyz'), text);
    }
  });
});
