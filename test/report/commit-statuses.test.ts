import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus } from '../../src/events/bus.js';
import type { BerthEvent, EventPayloads } from '../../src/events/types.js';
import { describeReconcile, fitDescription, reportCommitStatuses, statusContexts, statusFor, StatusReporter } from '../../src/forge/statuses.js';
import type { StatusRequest } from '../../src/forge/types.js';

const SHA = 'a'.repeat(40);
const REV = `main@sha1:${SHA}`;
const contexts = statusContexts('berth/production');

function event<K extends keyof EventPayloads>(type: K, payload: EventPayloads[K]): BerthEvent<K> {
  return { type, seq: 1, time: new Date(0).toISOString(), ...payload } as unknown as BerthEvent<K>;
}

const finished = (over: Partial<EventPayloads['reconcile.finished']>) =>
  event('reconcile.finished', { env: 'production', revision: REV, trigger: 'webhook', result: 'Succeeded', noop: false, startedAt: '', finishedAt: '', durationMs: 1, apps: [], reloads: 0, ...over });

/** A forge that records, failing as told. */
function recorder(fail: (n: number, s: StatusRequest) => Error | undefined = () => undefined) {
  const calls: StatusRequest[] = [];
  let n = 0;
  return {
    calls,
    target: {
      name: 'local' as const,
      setStatus: async (s: StatusRequest) => {
        const err = fail(++n, s);
        if (err) throw err;
        calls.push(s);
      },
    },
  };
}

const transientError = () => Object.assign(new Error('503 Service Unavailable'), { transient: true });
const fast = { retry: { baseMs: 2, maxMs: 10, attempts: 5 } };

describe('commit statuses: what each event says', () => {
  it('a rollout: pending, then "applied 3 apps, 1 rolled back: api health check failed"', () => {
    const started = statusFor(event('reconcile.started', { env: 'production', revision: REV, trigger: 'webhook', apps: 4, counts: {} }), contexts, 'https://berth.example.com/');
    assert.deepEqual(started, { sha: SHA, context: 'berth/production', state: 'pending', description: 'applying 4 apps', targetUrl: 'https://berth.example.com/api/v1/status' });
    const apps = [
      { app: 'web', result: 'Succeeded' as const, actions: [] },
      { app: 'api', result: 'RolledBack' as const, reason: 'HealthCheckFailed' as const, actions: [], error: 'GET /health → 500' },
      { app: 'docs', result: 'Succeeded' as const, actions: [] },
      { app: 'worker', result: 'Succeeded' as const, actions: [] },
    ];
    const done = statusFor(finished({ result: 'RolledBack', apps }), contexts);
    assert.deepEqual([done?.state, done?.description, done?.targetUrl], ['failure', 'applied 3 apps, 1 rolled back: api health check failed', undefined]);
  });

  it('not valid → failure; berth crashed → error; a quiet poll → nothing', () => {
    assert.deepEqual(describeReconcile(finished({ result: 'Failed', reason: 'RenderFailed', error: '2 problem(s) in the config repo; first: apps/web.yaml:3:5  bad' })), { state: 'failure', description: 'not applied: apps/web.yaml:3:5  bad' });
    assert.equal(describeReconcile(finished({ result: 'Failed', reason: 'InternalError', error: 'apply failed: TypeError: x' })).state, 'error');
    assert.equal(statusFor(finished({ noop: true }), contexts), undefined);
    assert.equal(statusFor(finished({ revision: 'worktree' }), contexts), undefined, 'a plain directory has no commit');
  });

  it('drift: failure with the summary on <context>/drift, then success when healed or resolved', () => {
    const detected = statusFor(event('drift.detected', { env: 'production', revision: REV, apps: ['web'], selfHeal: false, description: 'web: 1 of 3 replicas missing; nginx file edited' }), contexts);
    assert.deepEqual([detected?.context, detected?.state, detected?.description], ['berth/production/drift', 'failure', 'web: 1 of 3 replicas missing; nginx file edited']);
    const healing = statusFor(event('drift.detected', { env: 'production', revision: REV, apps: ['web'], selfHeal: true, description: 'web: 1 of 3 replicas missing' }), contexts);
    assert.equal(healing?.description, 'web: 1 of 3 replicas missing; healing');
    const healed = statusFor(event('drift.healed', { env: 'production', revision: REV, apps: ['web'], description: 'healed: web: 1 of 3 replicas missing' }), contexts);
    assert.deepEqual([healed?.state, healed?.description], ['success', 'healed: web: 1 of 3 replicas missing']);
    const resolved = statusFor(event('drift.resolved', { env: 'production', revision: REV, description: 'resolved: live state matches the revision again' }), contexts);
    assert.deepEqual([resolved?.context, resolved?.state], ['berth/production/drift', 'success']);
  });

  it('descriptions fit 140 characters, cut at a word', () => {
    const long = fitDescription(`applied 1 app, 1 failed: ${'word '.repeat(60)}`);
    assert.ok(long.length <= 140);
    assert.match(long, /word…$/);
  });
});

describe('StatusReporter: off the reconcile path, in order, retried', () => {
  it('delivers in order: pending first, then the result', async () => {
    const r = recorder();
    const reporter = new StatusReporter(r.target, fast);
    const bus = new EventBus();
    reportCommitStatuses(bus, [reporter], { context: 'berth/production' });
    bus.emit('reconcile.started', { env: 'production', revision: REV, trigger: 'webhook', apps: 1, counts: {} });
    bus.emit('reconcile.finished', { env: 'production', revision: REV, trigger: 'webhook', result: 'Succeeded', noop: false, startedAt: '', finishedAt: '', durationMs: 1, apps: [{ app: 'web', result: 'Succeeded', actions: [] }], reloads: 1 });
    await bus.flush();
    assert.equal(await reporter.flush(), true);
    assert.deepEqual(r.calls.map((c) => c.state), ['pending', 'success']);
    assert.deepEqual(reporter.recent().map((d) => [d.state, d.outcome, d.attempts]), [['success', 'delivered', 1], ['pending', 'delivered', 1]]);
  });

  it('a transient failure is retried with backoff until delivered', async () => {
    const r = recorder((n) => (n <= 2 ? transientError() : undefined));
    const reporter = new StatusReporter(r.target, fast);
    reporter.post({ sha: SHA, context: 'berth/production', state: 'success', description: 'ok' });
    assert.equal(await reporter.flush(), true);
    assert.equal(r.calls.length, 1);
    assert.equal(reporter.recent()[0]!.attempts, 3);
  });

  it('a permanent failure (401) is not retried, and is reported once', async () => {
    const errors: string[] = [];
    const r = recorder(() => Object.assign(new Error('401 Bad credentials'), { transient: false }));
    const reporter = new StatusReporter(r.target, { ...fast, onError: (_s, e) => void errors.push((e as Error).message) });
    reporter.post({ sha: SHA, context: 'berth/production', state: 'success', description: 'ok' });
    await reporter.flush();
    assert.deepEqual(errors, ['401 Bad credentials']);
    assert.deepEqual(reporter.recent().map((d) => [d.outcome, d.attempts]), [['failed', 1]]);
  });

  it('a status being retried is dropped when a newer one for the same commit and context arrives', async () => {
    let down = true;
    const r = recorder(() => (down ? transientError() : undefined));
    const reporter = new StatusReporter(r.target, { retry: { baseMs: 50, maxMs: 50, attempts: 100 } });
    reporter.post({ sha: SHA, context: 'berth/production', state: 'pending', description: 'applying 1 app' });
    await new Promise((res) => setTimeout(res, 20));
    reporter.post({ sha: SHA, context: 'berth/production', state: 'success', description: 'applied 1 app' });
    down = false;
    assert.equal(await reporter.flush(2000), true);
    assert.deepEqual(r.calls.map((c) => c.state), ['success'], 'the forge ends with the newest state');
    assert.deepEqual(reporter.recent().map((d) => [d.state, d.outcome]), [['success', 'delivered'], ['pending', 'superseded']]);
  });

  it('a status being retried does not hold up the statuses behind it', async () => {
    const other = 'b'.repeat(40);
    const r = recorder((_n, s) => (s.sha === SHA ? transientError() : undefined));
    const reporter = new StatusReporter(r.target, { retry: { baseMs: 300, maxMs: 300, attempts: 2 } });
    const t0 = Date.now();
    reporter.post({ sha: SHA, context: 'berth/production', state: 'success', description: 'ok' });
    reporter.post({ sha: other, context: 'berth/production', state: 'success', description: 'ok' });
    while (!r.calls.some((c) => c.sha === other)) await new Promise((res) => setTimeout(res, 5));
    assert.ok(Date.now() - t0 < 250, `the other commit's status went out after ${Date.now() - t0} ms, not after the first one's backoff`);
    await reporter.flush();
    assert.deepEqual(reporter.recent().map((d) => [d.sha === SHA ? 'failing' : 'other', d.outcome, d.attempts]), [['failing', 'failed', 2], ['other', 'delivered', 1]]);
  });

  it('a forge that hangs never holds up the bus (the reconcile path)', async () => {
    const reporter = new StatusReporter({ name: 'github' as const, setStatus: () => new Promise(() => {}) }, fast);
    const bus = new EventBus();
    reportCommitStatuses(bus, [reporter], { context: 'berth/production' });
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) bus.emit('reconcile.started', { env: 'production', revision: REV, trigger: 'poll', apps: 1, counts: {} });
    await bus.flush();
    assert.ok(Date.now() - t0 < 500);
    assert.equal(await reporter.flush(50), false, 'flush gives up at its timeout');
    reporter.close();
  });
});
