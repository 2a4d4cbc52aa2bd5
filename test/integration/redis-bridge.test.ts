import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { PluginView } from '../../src/plugins/host.js';
import type { ReconcileRecord } from '../../src/report/history.js';
import { stage, type Stage } from '../support/env.js';
import { seedRepo, startGitServer, type GitServer } from '../support/git-server.js';
import { freePort, get } from '../support/nginx.js';
import { requireRedis, startRedis, type TestRedis } from '../support/redis.js';
import { editFile } from '../support/repo.js';
import { pushWebhook, startBerthRun, waitFor, type RunningBerth } from '../support/run.js';
import { followEvents } from '../support/sse.js';

const SECRET = 'redis-bridge-webhook-secret';
const TOKEN = 'redis-bridge-api-token';
const PLUGIN = 'bus';

/** A message seen on one of the bridge's channels, parsed, with its arrival time. */
interface Seen<T> {
  data: T;
  at: number;
}
/** An event as the bridge publishes it: berth's event JSON. */
type BusEvent = { type: string; seq: number; time: string; env: string; revision?: string; trigger?: string; result?: string; noop?: boolean } & Record<string, unknown>;
type Reply = { id: string | null; ok: boolean; error?: string };
type Health = { plugin: string; state: string; ok: boolean; message?: string };

// Issue #10: the built-in `redis-bridge` plugin in a real `berth run` (real git http-backend, dockerd,
// nginx) talking to a real redis-server: events out on berth:<env>:events, commands in on
// berth:<env>:commands, answers on berth:<env>:replies.
describe('redis-bridge plugin: events out and sync/suspend/resume in over a real Redis (real berth run, Docker, nginx)', () => {
  let st: Stage | undefined;
  let redis: TestRedis | undefined;
  let git: GitServer | undefined;
  let work: Awaited<ReturnType<typeof seedRepo>>;
  let berth: RunningBerth | undefined;
  /** The test's own Redis clients: one subscribed to events and replies, one to publish commands. */
  let listener: Redis | undefined;
  let commander: Redis | undefined;
  const events: Seen<BusEvent>[] = [];
  const replies: Seen<Reply>[] = [];
  let channels: { events: string; commands: string; replies: string };
  let env: string;

  const json = async <T>(p: string): Promise<T> => (await fetch(`${berth!.api}${p}`)).json() as Promise<T>;
  const history = () => json<ReconcileRecord[]>('/api/v1/history?limit=100');
  const health = async (): Promise<{ status: number; body: Health }> => {
    const res = await fetch(`${berth!.api}/api/v1/plugins/${PLUGIN}/health`);
    return { status: res.status, body: (await res.json()) as Health };
  };
  const plugin = async (): Promise<PluginView | undefined> => (await json<PluginView[]>('/api/v1/plugins')).find((p) => p.name === PLUGIN);
  /** berth_triggers_total of `trigger` on berth's /metrics (0 before the first). */
  const triggers = async (trigger: string): Promise<number> => {
    const text = await (await fetch(`${berth!.api}/metrics`)).text();
    return Number(new RegExp(`^berth_triggers_total\\{env="${env}",trigger="${trigger}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  };
  const web = async (): Promise<string> => (await get(st!.nginx.port, 'web.example.test')).body;
  /** Sets web's APP_VERSION in the work clone and pushes it; returns the commit. */
  const pushWeb = (from: string, to: string): Promise<string> => {
    editFile(work.work, 'apps/web.yaml', `APP_VERSION: "${from}"`, `APP_VERSION: "${to}"`);
    return work.push(`web ${to}`);
  };

  /** waitFor, with the controller's last log lines in the failure message. */
  const until = async <T>(check: () => Promise<T> | T, ms: number, what: string) => {
    try {
      return await waitFor(check, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- berth run log (tail) ---\n${berth?.logs().split('\n').slice(-25).join('\n')}`);
    }
  };

  /** The first event on the events channel of `type`, seen at or after `since`, that `match` accepts. */
  const event = (type: string, since: number, match: (e: BusEvent) => boolean = () => true): BusEvent | undefined => events.find((e) => e.at >= since && e.data.type === type && match(e.data))?.data;

  /** Waits until no reconcile finished for 1.5 s (berth's own container events ask for a re-check 0.5 s after them). */
  const quiet = () =>
    until(() => {
      const finished = events.filter((e) => e.data.type === 'reconcile.finished');
      const started = events.filter((e) => e.data.type === 'reconcile.started');
      const last = Math.max(0, ...[...finished, ...started].map((e) => e.at));
      return Date.now() - last >= 1500 && started.length <= finished.length;
    }, 30_000, 'the controller to go quiet');

  /** Publishes `message` on the commands channel once berth listens there; resolves with the answer on the replies channel. */
  const command = async (message: string, ms = 10_000): Promise<Reply> => {
    await until(async () => ((await commander!.pubsub('NUMSUB', channels.commands)) as [string, number])[1] >= 1, 15_000, 'berth subscribed to the commands channel');
    const seen = replies.length;
    await commander!.publish(channels.commands, message);
    return (await until(() => replies[seen], ms, `the reply to ${message}`)).data;
  };

  after(async () => {
    await berth?.stop();
    listener?.disconnect();
    commander?.disconnect();
    await st?.teardown();
    await git?.stop();
    await redis?.stop();
  });

  it('the startup reconcile\'s reconcile.started and reconcile.finished reach a Redis subscriber; the API shows the plugin running and healthy', async (t) => {
    redis = await startRedis();
    if (!requireRedis(t as TestContext, redis)) return;
    st = await stage(t as TestContext);
    if (!st) return;
    env = st.repo.env;
    channels = { events: `berth:${env}:events`, commands: `berth:${env}:commands`, replies: `berth:${env}:replies` };
    mkdirSync(path.join(st.repo.dir, 'plugins'), { recursive: true });
    writeFileSync(
      path.join(st.repo.dir, `plugins/${PLUGIN}.yaml`),
      ['apiVersion: berth/v1', 'kind: Plugin', `metadata: { name: ${PLUGIN} }`, 'spec:', '  use: redis-bridge', '  config:', `    url: ${redis.url}`, ''].join('\n'),
    );
    git = await startGitServer();
    work = await seedRepo(git, 'deploy', st.repo.dir);
    const sha = await work.push('initial deployment, with the redis bridge');

    // Subscribed before berth starts: pub/sub keeps nothing for a listener that comes later.
    listener = new Redis(redis.url, { lazyConnect: true });
    commander = new Redis(redis.url, { lazyConnect: true });
    // Redis goes away in the last test: the clients reconnect; their errors are expected then.
    for (const client of [listener, commander]) client.on('error', () => {});
    await Promise.all([listener.connect(), commander.connect()]);
    listener.on('message', (channel: string, message: string) => {
      if (channel === channels.events) events.push({ data: JSON.parse(message) as BusEvent, at: Date.now() });
      if (channel === channels.replies) replies.push({ data: JSON.parse(message) as Reply, at: Date.now() });
    });
    await listener.subscribe(channels.events, channels.replies);

    berth = await startBerthRun(['--env', env, '--repo', git.url('deploy.git'), '--interval', '1h'], { ...st.cliEnv, BERTH_WEBHOOK_SECRET: SECRET, BERTH_API_TOKEN: TOKEN, BERTH_LOG_LEVEL: 'info' }, await freePort());
    const revision = `main@sha1:${sha}`;
    const finished = await until(() => event('reconcile.finished', 0, (e) => e.trigger === 'startup'), 45_000, 'reconcile.finished of the startup reconcile on Redis');
    const started = event('reconcile.started', 0, (e) => e.trigger === 'startup');
    assert.deepEqual({ env: started?.env, revision: started?.revision, trigger: started?.trigger }, { env, revision, trigger: 'startup' });
    assert.deepEqual({ env: finished.env, revision: finished.revision, trigger: finished.trigger, result: finished.result, noop: finished.noop }, { env, revision, trigger: 'startup', result: 'Succeeded', noop: false });
    assert.ok(started!.seq < finished.seq, 'reconcile.started comes first');
    assert.ok(!Number.isNaN(Date.parse(finished.time)), 'each event carries its time');
    assert.ok(!events.some((e) => e.data.type === 'app.progress'), 'app.progress is not in the default selection (*)');
    assert.ok(events.some((e) => e.data.type === 'app.result' && e.data.app === 'web' && e.data.revision === revision), 'app.result of web');
    assert.equal(await web(), 'web 1.0\n');

    const view = await plugin();
    assert.deepEqual(
      view && { use: view.use, origin: view.origin, state: view.state, provides: view.provides, file: view.file, lastError: view.lastError },
      { use: 'redis-bridge', origin: 'builtin', state: 'running', provides: ['message-queue', 'event-handler'], file: `plugins/${PLUGIN}.yaml`, lastError: undefined },
    );
    const h = await health();
    assert.equal(h.status, 200);
    assert.deepEqual({ plugin: h.body.plugin, state: h.body.state, ok: h.body.ok }, { plugin: PLUGIN, state: 'running', ok: true });
    assert.match(h.body.message ?? '', /^publisher ready, subscriber ready; published [1-9]\d*, dropped 0$/);
    assert.ok(!berth.logs().includes(redis.url), 'Redis is logged as host:port, never as its URL');
    await quiet();
  });

  it('`sync` and {"command":"sync","id":"t1"} on the commands channel each make berth reconcile (trigger plugin), answered ok', async (t) => {
    if (!berth || !st) return t.skip('berth not running');
    const before = await triggers('plugin');
    assert.equal(before, 0);

    let since = Date.now();
    assert.deepEqual(await command('sync'), { id: null, ok: true });
    const first = await until(() => event('reconcile.finished', since, (e) => e.trigger === 'plugin'), 30_000, 'reconcile.finished of trigger plugin');
    assert.equal(first.result, 'Succeeded');
    assert.equal(await triggers('plugin'), 1);

    // A commit pushed without a webhook: only the command makes berth fetch and apply it.
    await quiet();
    const sha = await pushWeb('1.0', '1.1');
    since = Date.now();
    assert.deepEqual(await command(JSON.stringify({ command: 'sync', id: 't1' })), { id: 't1', ok: true });
    const second = await until(() => event('reconcile.finished', since, (e) => e.trigger === 'plugin'), 30_000, 'reconcile.finished of the sync t1');
    assert.deepEqual({ revision: second.revision, result: second.result, noop: second.noop }, { revision: `main@sha1:${sha}`, result: 'Succeeded', noop: false });
    assert.equal(await triggers('plugin'), 2);
    assert.equal(await web(), 'web 1.1\n');
    assert.equal((await history()).find((r) => r.revision === `main@sha1:${sha}`)?.trigger, 'plugin');
    assert.match(berth.logs(), /"msg":"command received"/);
  });

  it('an invalid command is answered ok: false, triggers nothing and leaves the bridge running', async (t) => {
    if (!berth) return t.skip('berth not running');
    await quiet();
    const since = Date.now();
    const cases: [string, string | null][] = [
      ['reboot', null],
      ['{"command": "sync"', null],
      [JSON.stringify({ command: 'reboot', id: 'bad-1' }), 'bad-1'],
      [JSON.stringify({ command: 'sync', id: 'bad-2', force: true }), 'bad-2'],
      [JSON.stringify({ command: 'sync', id: 'bad-3', reason: 42 }), 'bad-3'],
    ];
    for (const [message, id] of cases) {
      const reply = await command(message);
      assert.deepEqual({ id: reply.id, ok: reply.ok }, { id, ok: false }, message);
      assert.ok(typeof reply.error === 'string' && reply.error.length > 0, `an error for ${message}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await triggers('plugin'), 2, 'no sync was triggered');
    assert.equal(event('reconcile.finished', since), undefined, 'no reconcile ran');
    assert.match(berth.logs(), /"msg":"invalid command"/);
    const view = await plugin();
    assert.deepEqual(view && { state: view.state, failures: view.failures }, { state: 'running', failures: 0 });
  });

  it('`suspend` holds a push + webhook: nothing reconciles until `resume`, which runs the reconcile that waited', async (t) => {
    if (!berth || !st) return t.skip('berth not running');
    await quiet();
    assert.deepEqual(await command(JSON.stringify({ command: 'suspend', reason: 'db migration', id: 's1' })), { id: 's1', ok: true });
    await until(() => /"reason":"db migration".*"msg":"reconciling suspended"|"msg":"reconciling suspended".*"reason":"db migration"/.test(berth!.logs()), 5000, 'berth to log the suspension');

    const since = Date.now();
    const webhooks = await triggers('webhook');
    const sha = await pushWeb('1.1', '1.2');
    const res = await pushWebhook(berth.api, 'main', sha, SECRET);
    assert.equal(res.status, 202);
    assert.equal(((await res.json()) as { coalesced?: boolean }).coalesced, true, 'the webhook is held, not run');
    assert.equal(await triggers('webhook'), webhooks + 1, 'the trigger is counted');
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual(
      events.filter((e) => e.at >= since && e.data.type.startsWith('reconcile.')).map((e) => e.data.type),
      [],
      'no reconcile while suspended',
    );
    assert.equal(await web(), 'web 1.1\n', 'nothing applied while suspended');
    assert.equal((await history()).find((r) => r.revision === `main@sha1:${sha}`), undefined);

    const resumedAt = Date.now();
    assert.deepEqual(await command(JSON.stringify({ command: 'resume', id: 'r1' })), { id: 'r1', ok: true });
    const finished = await until(() => event('reconcile.finished', resumedAt, (e) => e.revision === `main@sha1:${sha}`), 30_000, 'the held reconcile to finish after resume');
    assert.deepEqual({ trigger: finished.trigger, result: finished.result }, { trigger: 'webhook', result: 'Succeeded' });
    assert.equal(await web(), 'web 1.2\n');
    assert.match(berth.logs(), /"msg":"reconciling resumed"/);
  });

  it('with redis-server stopped, GET …/plugins/bus/health answers 503 while reconciles still succeed; when it is back, so is the bridge', async (t) => {
    if (!berth || !st || !redis) return t.skip('berth not running');
    await quiet();
    await redis.kill();
    const down = await until(async () => {
      const h = await health();
      return h.status === 503 ? h : undefined;
    }, 10_000, 'the bridge\'s health to answer 503');
    assert.deepEqual({ plugin: down.body.plugin, state: down.body.state, ok: down.body.ok }, { plugin: PLUGIN, state: 'running', ok: false });
    assert.match(down.body.message ?? '', /^publisher (?!ready)\w+, subscriber (?!ready)\w+; published \d+, dropped \d+$/);

    // A push + webhook, and a sync through the API: both reconcile; the bridge drops their events.
    const sha = await pushWeb('1.2', '1.3');
    assert.equal((await pushWebhook(berth.api, 'main', sha, SECRET)).status, 202);
    const record = await until(async () => (await history()).find((r) => r.revision === `main@sha1:${sha}`), 30_000, 'the reconcile of the push while Redis is down');
    assert.deepEqual({ result: record.result, trigger: record.trigger }, { result: 'Succeeded', trigger: 'webhook' });
    assert.equal(await web(), 'web 1.3\n');
    await until(async () => /dropped [1-9]\d*$/.test((await health()).body.message ?? ''), 10_000, 'the bridge to count dropped events');
    const finishedOnApi = await followEvents<{ trigger: string; result: string }>(berth.api, 'reconcile.finished');
    try {
      const manual = await triggers('manual');
      const sync = await fetch(`${berth.api}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(sync.status, 202);
      assert.equal(await triggers('manual'), manual + 1);
      const viaApi = await until(() => finishedOnApi.seen.find((e) => e.data.trigger === 'manual'), 30_000, 'reconcile.finished of the API sync (SSE)');
      assert.equal(viaApi.data.result, 'Succeeded');
    } finally {
      await finishedOnApi.close();
    }
    const view = await plugin();
    assert.deepEqual(view && { state: view.state, failures: view.failures }, { state: 'running', failures: 0 }, 'an absent Redis is not a plugin failure');
    assert.equal(berth.child.exitCode, null);

    // Back on the same port: ioredis reconnects and subscribes again.
    await redis.restart();
    await until(async () => (await health()).status === 200, 15_000, 'the bridge healthy again');
    await until(async () => listener!.status === 'ready', 15_000, "the test's subscriber back");
    await quiet();
    const since = Date.now();
    assert.deepEqual(await command(JSON.stringify({ command: 'sync', id: 'after-outage' })), { id: 'after-outage', ok: true });
    const finished = await until(() => event('reconcile.finished', since, (e) => e.trigger === 'plugin'), 30_000, 'reconcile.finished after the outage');
    assert.equal(finished.result, 'Succeeded');
  });
});
