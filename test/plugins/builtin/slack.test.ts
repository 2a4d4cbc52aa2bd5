import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { BerthEvent, EventPayloads } from '../../../src/events/types.js';
import { formatDuration, manifest, shortRevision, slackMessage, slackPlugin } from '../../../src/plugins/builtin/slack.js';
import type { PluginInstance } from '../../../src/plugins/types.js';
import { compilePluginSchema } from '../../../src/render/schema.js';
import { berthEvent, fakePluginContext, startReceiver, type FakePluginContext, type Receiver } from '../../support/plugin-context.js';

const SHA = '1a2b3c4d5e'.repeat(4);
const REV = `main@sha1:${SHA}`;
const FAST = { baseDelayMs: 5, maxDelayMs: 20, retryAfterCapMs: 100 };

const finished = (over: Partial<EventPayloads['reconcile.finished']> = {}) =>
  berthEvent('reconcile.finished', { env: 'production', revision: REV, trigger: 'webhook', result: 'Succeeded', noop: false, startedAt: '', finishedAt: '', durationMs: 12_345, apps: [], reloads: 1, ...over });

describe('slack: config schema', () => {
  const validate = compilePluginSchema(manifest.configSchema!);
  const cases: { name: string; config: unknown; ok: boolean }[] = [
    { name: 'a hook URL', config: { webhookUrl: 'https://hooks.slack.com/services/T0/B0/XYZ' }, ok: true },
    { name: 'every field', config: { webhookUrl: 'http://127.0.0.1:8080/hook', events: ['drift.*', 'reconcile.finished'], maxAttempts: 2, timeoutSeconds: 1 }, ok: true },
    { name: 'no hook URL', config: {}, ok: false },
    { name: 'url instead of webhookUrl', config: { url: 'https://hooks.slack.com/services/T0/B0/XYZ' }, ok: false },
    { name: 'not a URL', config: { webhookUrl: 'hooks.slack.com/services/x' }, ok: false },
    { name: 'a channel (incoming webhooks ignore it)', config: { webhookUrl: 'https://hooks.slack.com/x', channel: '#ops' }, ok: false },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'rejects'} ${c.name}`, () => assert.equal(validate(structuredClone(c.config)), c.ok, JSON.stringify(validate.errors)));
  }

  it('defaults to the events people act on', () => {
    const config: Record<string, unknown> = { webhookUrl: 'https://hooks.slack.com/x' };
    assert.ok(validate(config));
    assert.deepEqual(config.events, ['reconcile.finished', 'reconcile.error', 'drift.*', 'health.changed']);
  });
});

describe('slack: messages', () => {
  const table: { name: string; event: BerthEvent; text: string | undefined; mrkdwn?: string }[] = [
    {
      name: 'a reconcile that changed apps',
      event: finished({ apps: [{ app: 'web', result: 'Succeeded', actions: [] }, { app: 'api', result: 'Unchanged', actions: [] }, { app: 'worker', result: 'Succeeded', actions: [] }] }),
      text: 'production: reconcile Succeeded at main@1a2b3c4 in 12.3s (webhook): 2 apps changed (web, worker)',
      mrkdwn: '*production*: reconcile *Succeeded* at `main@1a2b3c4` in 12.3s (webhook): 2 apps changed (web, worker)',
    },
    {
      name: 'a rollback, with its app and cause',
      event: finished({ result: 'RolledBack', durationMs: 65_000, apps: [{ app: 'web', result: 'RolledBack', reason: 'HealthCheckFailed', actions: [], error: 'GET /health: 503' }] }),
      text: 'production: reconcile RolledBack at main@1a2b3c4 in 1m05s (webhook): 1 app changed (web); web rolled back (HealthCheckFailed): GET /health: 503',
    },
    {
      name: 'a failed render',
      event: finished({ result: 'Failed', reason: 'RenderFailed', durationMs: 40, error: 'apps/web.yaml:3:1 unknown field' }),
      text: 'production: reconcile Failed at main@1a2b3c4 in 40ms (webhook): no app changed; reason RenderFailed; apps/web.yaml:3:1 unknown field',
    },
    { name: 'a poll that found nothing to do', event: finished({ noop: true }), text: undefined },
    {
      name: 'a reconcile error',
      event: berthEvent('reconcile.error', { env: 'staging', trigger: 'poll', reason: 'SourceUnavailable', message: 'git fetch: connection refused' }),
      text: 'staging: reconcile error (SourceUnavailable, poll): git fetch: connection refused',
    },
    {
      name: 'drift being healed',
      event: berthEvent('drift.detected', { env: 'production', revision: REV, apps: ['web'], selfHeal: true, description: 'web: 1 replica missing' }),
      text: 'production: drift detected at main@1a2b3c4 in web: web: 1 replica missing; healing it',
    },
    {
      name: 'drift only reported',
      event: berthEvent('drift.detected', { env: 'production', revision: REV, apps: ['web', 'api'], selfHeal: false, description: '2 apps differ' }),
      text: 'production: drift detected at main@1a2b3c4 in web, api: 2 apps differ; reported only (selfHeal is off)',
    },
    {
      name: 'drift left alone',
      event: berthEvent('drift.detected', { env: 'production', revision: REV, apps: ['web'], selfHeal: false, reason: 'HealLimitReached', description: 'web differs' }),
      text: 'production: drift detected at main@1a2b3c4 in web: web differs; not healing it: healed too often (HealLimitReached)',
    },
    {
      name: 'drift healed',
      event: berthEvent('drift.healed', { env: 'production', revision: REV, apps: [], proxy: 'nginx', description: 'proxy config restored' }),
      text: 'production: drift healed at main@1a2b3c4 in the proxy: proxy config restored',
    },
    { name: 'drift resolved', event: berthEvent('drift.resolved', { env: 'production', revision: REV, description: 'web put back by hand' }), text: 'production: drift resolved: web put back by hand' },
    {
      name: 'an app turning Degraded',
      event: berthEvent('health.changed', { env: 'production', app: 'web', previous: { status: 'Healthy' }, health: { status: 'Degraded', message: '2 of 3 replicas failing' } }),
      text: 'production: web is Degraded (was Healthy): 2 of 3 replicas failing',
      mrkdwn: '*production*: *web* is *Degraded* (was Healthy): 2 of 3 replicas failing',
    },
    {
      name: 'an app leaving Degraded',
      event: berthEvent('health.changed', { env: 'production', app: 'web', previous: { status: 'Degraded' }, health: { status: 'Healthy' } }),
      text: 'production: web is Healthy again (was Degraded)',
    },
    { name: 'Progressing to Healthy', event: berthEvent('health.changed', { env: 'production', app: 'web', previous: { status: 'Progressing' }, health: { status: 'Healthy' } }), text: undefined },
    { name: 'app.progress', event: berthEvent('app.progress', { env: 'production', app: 'web', phase: 'start', message: 'x' }), text: undefined },
    { name: 'status.changed', event: berthEvent('status.changed', { env: 'production', status: {} as EventPayloads['status.changed']['status'] }), text: undefined },
    {
      name: "Slack's control characters, escaped",
      event: berthEvent('reconcile.error', { env: 'production', trigger: 'poll', reason: 'SourceUnavailable', message: 'a <b> & `c` *d*' }),
      text: 'production: reconcile error (SourceUnavailable, poll): a &lt;b&gt; &amp; `c` *d*',
      mrkdwn: '*production*: reconcile error (SourceUnavailable, poll): a &lt;b&gt; &amp; `c` *d*',
    },
  ];
  for (const c of table) {
    it(c.name, () => {
      const message = slackMessage(c.event);
      assert.equal(message?.text, c.text);
      if (!message) return;
      const [block] = message.blocks as { type: string; text: { type: string; text: string } }[];
      assert.equal(block?.type, 'section');
      assert.equal(block?.text.type, 'mrkdwn');
      if (c.mrkdwn) assert.equal(block?.text.text, c.mrkdwn);
      assert.doesNotMatch(message.text, /:[a-z_]+:/, 'no emoji codes');
    });
  }

  it('names at most five apps', () => {
    const apps = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((app) => ({ app, result: 'Succeeded' as const, actions: [] }));
    assert.match(slackMessage(finished({ apps }))!.text, /7 apps changed \(a, b, c, d, e and 2 more\)/);
  });

  it('keeps a block within Slack\'s 3,000 characters', () => {
    const message = slackMessage(berthEvent('reconcile.error', { env: 'production', trigger: 'poll', reason: 'SourceUnavailable', message: 'x'.repeat(5000) }))!;
    assert.ok(message.text.length <= 3000);
    assert.ok((message.blocks[0] as { text: { text: string } }).text.text.length <= 3000);
  });

  it('short revisions and durations', () => {
    assert.equal(shortRevision(REV), 'main@1a2b3c4');
    assert.equal(shortRevision(SHA), '1a2b3c4');
    assert.equal(shortRevision('dir'), 'dir');
    assert.deepEqual([850, 1500, 59_940, 60_000, 3_725_000].map(formatDuration), ['850ms', '1.5s', '59.9s', '1m00s', '62m05s']);
  });
});

describe('slack: posting', () => {
  let receiver: Receiver;
  before(async () => (receiver = await startReceiver()));
  after(() => receiver.stop());
  beforeEach(() => {
    receiver.requests.length = 0;
    receiver.fallback = { status: 200, body: 'ok' };
  });

  async function start(config: Record<string, unknown>): Promise<{ plugin: PluginInstance; fake: FakePluginContext; stop: () => Promise<void> }> {
    const fake = fakePluginContext(config, { name: 'chat' });
    const plugin = await slackPlugin(FAST)(fake.ctx);
    return {
      plugin,
      fake,
      stop: async () => {
        fake.abort();
        await plugin.stop?.();
      },
    };
  }

  it('posts { text, blocks } as JSON, in order, retrying through the shared delivery code', async () => {
    receiver.reply({ status: 500 }, { status: 429, headers: { 'retry-after': '0' } });
    const hook = `${receiver.url}/services/T0/B0/SECRETPATH`;
    const { plugin, stop } = await start({ webhookUrl: hook });
    await plugin.eventHandler!.handle(finished({ apps: [{ app: 'web', result: 'Succeeded', actions: [] }] }));
    await plugin.eventHandler!.handle(berthEvent('app.progress', { env: 'production', app: 'web', phase: 'start', message: 'x' }));
    await plugin.eventHandler!.handle(berthEvent('drift.resolved', { env: 'production', revision: REV, description: 'put back' }));
    const reqs = await receiver.waitFor(4);
    await stop();
    assert.deepEqual(reqs.map((r) => r.url), Array(4).fill('/services/T0/B0/SECRETPATH'));
    assert.equal(reqs[0]!.headers['content-type'], 'application/json');
    const bodies = reqs.map((r) => JSON.parse(r.body) as { text: string; blocks: unknown[] });
    assert.deepEqual(bodies.map((b) => b.text.split(':')[1]), [' reconcile Succeeded at main@1a2b3c4 in 12.3s (webhook)', ' reconcile Succeeded at main@1a2b3c4 in 12.3s (webhook)', ' reconcile Succeeded at main@1a2b3c4 in 12.3s (webhook)', ' drift resolved']);
    assert.equal(bodies[3]!.blocks.length, 1);
  });

  it('never logs the hook URL, even when Slack echoes it', async () => {
    receiver.reply({ status: 404, body: 'no_service for /services/T0/B0/SECRETPATH' });
    const { plugin, fake, stop } = await start({ webhookUrl: `${receiver.url}/services/T0/B0/SECRETPATH` });
    await plugin.eventHandler!.handle(berthEvent('drift.resolved', { env: 'production', revision: REV, description: 'put back' }));
    await receiver.waitFor(1);
    for (let i = 0; i < 100 && !fake.logged('warn').length; i++) await new Promise((r) => setTimeout(r, 10));
    await stop();
    const [warn] = fake.logged('warn', 'delivery failed: giving up on it');
    assert.equal(warn?.fields?.status, 404);
    assert.match(String(warn?.fields?.error), /no_service/);
    assert.ok(!fake.logText().includes('SECRETPATH'), fake.logText());
    assert.equal((await plugin.health!()).ok, false);
  });

  it('ignores events outside config.events', async () => {
    const { plugin, stop } = await start({ webhookUrl: receiver.url, events: ['drift.*'] });
    await plugin.eventHandler!.handle(finished({ result: 'Failed' }));
    await plugin.eventHandler!.handle(berthEvent('drift.resolved', { env: 'production', revision: REV, description: 'put back' }));
    await receiver.waitFor(1);
    await new Promise((r) => setTimeout(r, 30));
    await stop();
    assert.equal(receiver.requests.length, 1);
    assert.match((JSON.parse(receiver.requests[0]!.body) as { text: string }).text, /drift resolved/);
  });
});
