import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { app, harness, repo, repoYaml, rolledOut, triggerCount, until, versions, web } from './harness.js';

// The controller driven end to end with fakes only (see harness.ts).
describe('controller (in-memory runtime, proxy and repo)', () => {
  it('a version that rolled back is held: polls start nothing and record nothing until forced or changed', async () => {
    const h = await harness(repo({ web: web('v1') }));
    try {
      await h.sync('startup');
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);

      h.serve(repo({ web: web('v2-broken') }));
      await h.sync('poll');
      const afterRollback = await h.records();
      assert.deepEqual(afterRollback.map((r) => r.result), ['Succeeded', 'RolledBack']);
      assert.deepEqual(afterRollback[1]!.apps.map((a) => [a.app, a.result, a.reason]), [['web', 'RolledBack', 'RolledBack']]);
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1'], 'the old version keeps serving');
      const gateMessage = afterRollback[1]!.apps.find((a) => a.app === 'web')?.error;
      assert.match(gateMessage ?? '', /failed its health check/);

      const runs = h.runtime.calls.run;
      for (let i = 0; i < 3; i++) await h.sync('poll');
      assert.equal(h.runtime.calls.run, runs, 'no poll starts a container of the held version');
      assert.equal((await h.records()).length, 2, 'no poll adds a history record');
      assert.equal(h.ofType('reconcile.started').length, 2, 'no poll starts an apply');
      const status = h.appStatus('web');
      assert.equal(status.health, 'Degraded');
      assert.equal(status.reason, 'RolledBack');
      assert.equal(status.healthMessage, gateMessage);
      assert.equal(status.syncStatus, 'OutOfSync');
      assert.equal(h.controller.status.syncStatus, 'OutOfSync');
      assert.equal(h.controller.status.health, 'Degraded');

      await h.sync('manual', { force: true });
      assert.ok(h.runtime.calls.run > runs, 'a forced sync tries the held version again');
      assert.deepEqual((await h.records()).map((r) => r.result), ['Succeeded', 'RolledBack', 'RolledBack']);
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);

      h.serve(repo({ web: web('v3') }));
      await h.sync('poll');
      const last = (await h.records()).at(-1)!;
      assert.equal(last.result, 'Succeeded');
      assert.deepEqual(versions(h.runtime, 'web'), ['v3', 'v3']);
      const after = h.appStatus('web');
      assert.equal(after.held, undefined);
      assert.equal(after.syncStatus, 'Synced');
      assert.equal(after.health, 'Healthy');
      assert.equal(h.controller.status.syncStatus, 'Synced');
    } finally {
      await h.close();
    }
  });

  it('a held version stays held across a restart (memory in the state dir)', async () => {
    const h = await rolledOut(repo({ web: web('v1') }), repo({ web: web('v2-broken') }));
    try {
      const runs = h.runtime.calls.run;
      await h.controller.stop();

      const again = await h.restart();
      again.trigger('startup');
      await again.idle();
      await h.bus.flush();
      assert.equal(h.runtime.calls.run, runs, 'the restarted controller does not retry the held version');
      assert.equal((await h.records()).length, 2);
      assert.equal(again.status.apps.find((a) => a.app === 'web')?.reason, 'RolledBack');
    } finally {
      await h.close();
    }
  });

  it("a held app's dependents are held; an unrelated app in the same revision applies", async () => {
    const api = (v: string) => app('api', v, '  dependsOn: [db]\n');
    const h = await rolledOut(repo({ db: app('db', 'v1'), api: api('v1'), docs: app('docs', 'v1') }), repo({ db: app('db', 'v2-broken'), api: api('v2'), docs: app('docs', 'v2') }));
    try {
      const record = (await h.records()).at(-1)!;
      const byApp = Object.fromEntries(record.apps.map((a) => [a.app, [a.result, a.reason]]));
      assert.deepEqual(byApp, { db: ['RolledBack', 'RolledBack'], api: ['Skipped', 'DependencyFailed'], docs: ['Succeeded', undefined] });
      assert.deepEqual(versions(h.runtime, 'db'), ['v1', 'v1']);
      assert.deepEqual(versions(h.runtime, 'api'), ['v1', 'v1'], 'the dependent was not rolled out');
      assert.deepEqual(versions(h.runtime, 'docs'), ['v2', 'v2']);

      // Same revision again: both stay held, and the dependent's change is not taken for drift.
      const runs = h.runtime.calls.run;
      await h.sync('poll');
      assert.equal(h.runtime.calls.run, runs);
      assert.deepEqual(h.ofType('drift.detected'), []);
      const held = Object.fromEntries(h.controller.lastPlan!.apps.filter((a) => a.held).map((a) => [a.app, a.held!.reason]));
      assert.deepEqual(held, { db: 'RolledBack', api: 'DependencyFailed' });
      assert.equal(h.appStatus('api').syncStatus, 'OutOfSync');

      // A new revision that changes only docs: docs applies, db and api stay on v1.
      h.serve(repo({ db: app('db', 'v2-broken'), api: api('v2'), docs: app('docs', 'v3') }));
      await h.sync('poll');
      const next = (await h.records()).at(-1)!;
      const nextByApp = Object.fromEntries(next.apps.map((a) => [a.app, [a.result, a.reason]]));
      assert.deepEqual(nextByApp, { db: ['Skipped', 'RolledBack'], api: ['Skipped', 'DependencyFailed'], docs: ['Succeeded', undefined] });
      assert.deepEqual(versions(h.runtime, 'db'), ['v1', 'v1']);
      assert.deepEqual(versions(h.runtime, 'api'), ['v1', 'v1']);
      assert.deepEqual(versions(h.runtime, 'docs'), ['v3', 'v3']);
    } finally {
      await h.close();
    }
  });

  it('an app held for its dependency shows why, not Missing', async () => {
    const api = (v: string) => app('api', v, '  dependsOn: [db]\n');
    const h = await rolledOut(repo({ db: app('db', 'v1'), api: api('v1') }), repo({ db: app('db', 'v2-broken'), api: api('v2') }));
    try {
      await h.sync('poll');
      const status = h.appStatus('api');
      assert.equal(status.reason, 'DependencyFailed');
      assert.notEqual(status.health, 'Missing');
      assert.match(status.healthMessage ?? '', /dependency "db"/);
    } finally {
      await h.close();
    }
  });

  it('drift with selfHeal off: reported once, nothing touched, OutOfSync', async () => {
    const h = await harness(repo({ web: web('v1') }));
    try {
      await h.sync('startup');
      const victim = h.runtime.running('web')[0]!;
      h.runtime.kill(victim.id);
      const calls = { ...h.runtime.calls };
      const records = (await h.records()).length;

      await h.sync('poll');
      assert.equal(h.runtime.containers.get(victim.id)?.state, 'exited', 'the killed container is left as it is');
      assert.deepEqual({ ...h.runtime.calls, exec: 0 }, { ...calls, exec: 0 }, 'no container started, stopped or removed');
      const detected = h.ofType('drift.detected');
      assert.equal(detected.length, 1);
      assert.deepEqual([detected[0]!.apps, detected[0]!.selfHeal], [['web'], false]);
      assert.equal(h.controller.status.syncStatus, 'OutOfSync');
      assert.equal(h.appStatus('web').syncStatus, 'OutOfSync');
      assert.equal((await h.records()).length, records, 'drift is not a reconcile record');

      await h.sync('poll');
      assert.equal(h.ofType('drift.detected').length, 1, 'the same drift is not reported again');
      assert.deepEqual(h.ofType('drift.healed'), []);
    } finally {
      await h.close();
    }
  });

  it('drift with selfHeal on: healed, drift.detected then drift.healed', async () => {
    const h = await harness(repo({ web: web('v1') }, repoYaml('selfHeal: true')));
    try {
      await h.sync('startup');
      const victim = h.runtime.running('web')[0]!;
      h.runtime.kill(victim.id);

      await h.sync('poll');
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1'], 'two replicas run again');
      assert.ok(!h.runtime.containers.has(victim.id) || h.runtime.containers.get(victim.id)!.state === 'running');
      const detected = h.ofType('drift.detected');
      assert.deepEqual(detected.map((e) => [e.apps, e.selfHeal]), [[['web'], true]]);
      assert.deepEqual(h.ofType('drift.healed').map((e) => e.apps), [['web']]);
      assert.equal(h.controller.status.syncStatus, 'Synced');
      const metrics = await h.metrics.registry.metrics();
      assert.match(metrics, /berth_drift_detected_total\{env="[^"]+"\} 1/);
      assert.match(metrics, /berth_drift_healed_total\{env="[^"]+"\} 1/);
    } finally {
      await h.close();
    }
  });

  it('drift with selfHeal off is not healed while another app is held', async () => {
    const h = await rolledOut(repo({ web: web('v1'), docs: app('docs', 'v1') }), repo({ web: web('v1'), docs: app('docs', 'v2-broken') }));
    try {
      assert.equal((await h.records()).at(-1)?.result, 'RolledBack');

      const victim = h.runtime.running('web')[0]!;
      h.runtime.kill(victim.id);
      const runs = h.runtime.calls.run;
      await h.sync('poll');
      assert.equal(h.runtime.calls.run, runs, 'selfHeal is off: the killed replica is not replaced');
      assert.equal(h.runtime.containers.get(victim.id)?.state, 'exited');
      assert.deepEqual(h.ofType('drift.detected').map((e) => e.apps), [['web']]);
    } finally {
      await h.close();
    }
  });

  it('an unreachable source: Unknown, reconcile.error SourceUnavailable, retries with backoff, nothing torn down', async () => {
    const h = await harness(repo({ web: web('v1') }), { backoff: { baseMs: 10, maxMs: 40 } });
    try {
      await h.sync('startup');
      const calls = { ...h.runtime.calls };
      h.failReads(new Error('connection refused'));

      await h.sync('poll');
      assert.equal(h.controller.status.syncStatus, 'Unknown');
      assert.deepEqual(h.controller.status.apps.map((a) => a.syncStatus), ['Unknown']);
      // The poll's failure first; a retry (10 ms later) may already have failed too.
      const errors = h.ofType('reconcile.error');
      assert.deepEqual(errors.map((e) => [e.reason, e.trigger])[0], ['SourceUnavailable', 'poll']);
      assert.ok(errors.slice(1).every((e) => e.trigger === 'retry'), JSON.stringify(errors.map((e) => e.trigger)));

      await until(async () => (await triggerCount(h.metrics, 'retry')) >= 3, 5000, 'three retries');
      await h.controller.idle();
      // Each failure doubles the delay, capped at maxMs: the first failure and three failed retries.
      const delays = h.logs.filter((l) => l.retryInMs !== undefined).map((l) => l.retryInMs);
      assert.deepEqual(delays.slice(0, 4), [10, 20, 40, 40]);
      assert.ok(h.ofType('reconcile.error').every((e) => e.reason === 'SourceUnavailable'));
      assert.deepEqual({ ...h.runtime.calls, exec: 0 }, { ...calls, exec: 0 }, 'nothing stopped, removed or started');
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);

      // The source comes back: a retry reconciles, and the retries stop.
      h.failReads(undefined);
      await until(() => h.controller.status.syncStatus === 'Synced', 5000, 'Synced again');
      await h.controller.idle();
      const retries = await triggerCount(h.metrics, 'retry');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await triggerCount(h.metrics, 'retry'), retries, 'no retry after a successful reconcile');
    } finally {
      await h.close();
    }
  });

  const pruneCases: { name: string; settings: string; kept: boolean }[] = [
    { name: 'prune: false keeps the containers of an app removed from the repo', settings: 'prune: false', kept: true },
    { name: 'without a prune key, an app removed from the repo is removed', settings: '', kept: false },
  ];
  for (const c of pruneCases) {
    it(c.name, async () => {
      const berth = repoYaml(c.settings);
      const h = await harness(repo({ web: web('v1'), docs: app('docs', 'v1') }, berth));
      try {
        await h.sync('startup');
        assert.equal(h.runtime.of('docs').length, 2);
        h.serve(repo({ web: web('v1') }, berth));
        await h.sync('poll');
        assert.equal(h.runtime.of('docs').length, c.kept ? 2 : 0);
        assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1'], 'the app still in the repo is untouched');
        assert.equal((await h.records()).at(-1)?.result, 'Succeeded');
      } finally {
        await h.close();
      }
    });
  }

  it('a revision that fails to render is recorded once, however many polls see it', async () => {
    const h = await harness(repo({ web: web('v1') }));
    try {
      await h.sync('startup');
      const calls = { ...h.runtime.calls };
      h.serve(repo({ web: web('v1').replace('replicas: 2', 'replicas: two') }));
      for (let i = 0; i < 3; i++) await h.sync('poll');
      const records = await h.records();
      assert.deepEqual(records.map((r) => [r.result, r.reason]), [['Succeeded', undefined], ['Failed', 'RenderFailed']]);
      assert.match(records[1]!.error ?? '', /problem/);
      assert.equal(h.controller.status.lastReconcile?.reason, 'RenderFailed');
      assert.deepEqual({ ...h.runtime.calls, exec: 0 }, { ...calls, exec: 0 }, 'nothing applied');
      assert.equal(await triggerCount(h.metrics, 'retry'), 0, 'a render failure is not retried: only a new revision can fix it');

      // Fixed in the repo: applies as usual.
      h.serve(repo({ web: web('v2') }));
      await h.sync('poll');
      assert.equal((await h.records()).at(-1)?.result, 'Succeeded');
      assert.deepEqual(versions(h.runtime, 'web'), ['v2', 'v2']);
    } finally {
      await h.close();
    }
  });

  it('triggers while a reconcile runs become one follow-up, of the newest revision', async () => {
    const h = await harness(repo({ web: web('v1') }));
    try {
      await h.sync('startup');
      const reads = h.reads;
      const release = h.blockReads();
      assert.deepEqual(h.controller.trigger('poll'), { coalesced: false });
      await until(() => h.reads === reads + 1, 1000, 'the reconcile to start reading');
      h.serve(repo({ web: web('v2') }));
      for (const t of ['poll', 'webhook', 'cron'] as const) assert.deepEqual(h.controller.trigger(t), { coalesced: true });
      release();
      await h.controller.idle();
      await h.bus.flush();
      assert.equal(h.reads, reads + 2, 'one follow-up for three triggers');
      assert.deepEqual(versions(h.runtime, 'web'), ['v2', 'v2']);
    } finally {
      await h.close();
    }
  });

  it('a trigger that arrives as a reconcile ends is never lost', async () => {
    // Bus subscribers (plugins, reporters) run in microtasks while a reconcile finishes; one that
    // triggers after k ticks must either start a reconcile or be run as the follow-up, for every k.
    const h = await harness(repo({ web: web('v1') }), { backoff: { baseMs: 1e9, maxMs: 1e9 } });
    try {
      h.failReads(new Error('offline'));
      let ticks = -1;
      h.bus.on('reconcile.error', async () => {
        if (ticks < 0) return;
        const k = ticks;
        ticks = -1;
        for (let i = 0; i < k; i++) await null;
        h.controller.trigger('poll');
      });
      const lost: number[] = [];
      for (let k = 0; k < 20; k++) {
        const reads = h.reads;
        ticks = k;
        h.controller.trigger('poll');
        await h.controller.idle();
        await h.bus.flush();
        await h.controller.idle();
        if (h.reads !== reads + 2) lost.push(k);
      }
      assert.deepEqual(lost, [], 'triggers lost after these numbers of ticks');
    } finally {
      await h.close();
    }
  });

  it('a forced trigger folded into a follow-up keeps its force', async () => {
    const h = await rolledOut(repo({ web: web('v1') }), repo({ web: web('v2-broken') }));
    try {
      const runs = h.runtime.calls.run;
      const reads = h.reads;
      const release = h.blockReads();
      h.controller.trigger('poll');
      await until(() => h.reads === reads + 1, 1000, 'the reconcile to start reading');
      h.controller.trigger('manual', { force: true });
      h.controller.trigger('poll');
      release();
      await h.controller.idle();
      await h.bus.flush();
      assert.equal(h.reads, reads + 2);
      assert.ok(h.runtime.calls.run > runs, 'the follow-up was forced: the held version was tried again');
    } finally {
      await h.close();
    }
  });
});
