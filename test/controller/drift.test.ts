import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { memoryRevision } from '../support/repo.js';
import { ENV, app, harness, repo, repoYaml, triggerCount, until, versions, web, type Harness } from './harness.js';

// Drift in seconds (runtime events, proxy file changes, lost streams), the flapping guard, and the
// health monitor acting, through the real controller, reconcile, planner and apply on fakes.

/** Starts the watchers and waits until the runtime's and the proxy's streams are open. */
async function watching(h: Harness): Promise<void> {
  h.controller.watch();
  await until(() => h.runtime.feed.open === 1 && h.proxy.feed.open === 1, 1000, 'the event streams to open');
}

/** Waits for the controller to go quiet (a re-check may follow its own apply's events). */
async function settled(h: Harness, ms = 150): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, ms));
    await h.controller.idle();
    await h.bus.flush();
  }
}

/** Kills the first running replica of web (selfHeal heals it) and waits for the reconcile. */
async function killOne(h: Harness): Promise<void> {
  h.runtime.kill(h.runtime.running('web')[0]!.id);
  await h.sync('poll');
}

const heals = async (h: Harness) => (await h.records()).filter((r) => r.trigger !== 'startup');

describe('controller: drift through events', () => {
  it('a replica removed by hand is reported within the debounce, by a re-check that asks no Git server (selfHeal off)', async () => {
    const h = await harness(repo({ web: web('v1') }), { runtimeDebounceMs: 20 });
    try {
      await h.sync('startup');
      await watching(h);
      const reads = h.reads;
      const t0 = Date.now();

      h.runtime.removeByHand(h.runtime.running('web')[0]!.id);
      await until(() => h.ofType('drift.detected').length > 0, 2000, 'drift.detected');

      assert.ok(Date.now() - t0 < 1000, `reported after ${Date.now() - t0} ms`);
      const [e] = h.ofType('drift.detected');
      assert.deepEqual([e!.apps, e!.selfHeal, e!.reason], [['web'], false, 'Drift']);
      assert.equal(e!.description, 'web: 1 of 2 replicas missing');
      await settled(h);
      assert.equal(await triggerCount(h.metrics, 'runtime'), 1, 'kill, die and destroy are one re-check');
      assert.equal(await triggerCount(h.metrics, 'poll'), 0);
      assert.equal(h.reads, reads, 'the re-check compared with the revision already read');
      assert.equal(h.runtime.running('web').length, 1, 'not healed: selfHeal is off');
      assert.equal(h.appStatus('web').syncStatus, 'OutOfSync');
    } finally {
      await h.close();
    }
  });

  const healCases = [
    { name: 'removed (docker rm -f)', act: (h: Harness) => h.runtime.removeByHand(h.runtime.running('web')[0]!.id) },
    { name: 'killed (docker kill)', act: (h: Harness) => h.runtime.kill(h.runtime.running('web')[0]!.id) },
  ];
  for (const c of healCases) {
    it(`with selfHeal, a replica ${c.name} is healed by the event's re-check: drift.detected, then drift.healed`, async () => {
      const h = await harness(repo({ web: web('v1') }, repoYaml('selfHeal: true')), { runtimeDebounceMs: 20 });
      try {
        await h.sync('startup');
        await watching(h);

        c.act(h);
        await until(() => h.ofType('drift.healed').length > 0, 2000, 'drift.healed');
        await settled(h);

        assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);
        assert.deepEqual(h.ofType('drift.detected').map((e) => [e.apps, e.selfHeal]), [[['web'], true]]);
        assert.equal(h.controller.status.syncStatus, 'Synced');
        const [record] = await heals(h);
        assert.equal(record?.trigger, 'runtime');
        assert.equal(record?.result, 'Succeeded');
        assert.equal((await heals(h)).length, 1, "the re-check after berth's own changes found nothing to do");
      } finally {
        await h.close();
      }
    });
  }

  it('a hand edit of the proxy file is reported as drift, and rewritten with selfHeal', async () => {
    const h = await harness(repo({ web: web('v1') }), { runtimeDebounceMs: 20 });
    try {
      await h.sync('startup');
      await watching(h);

      h.proxy.editByHand('memory file edited: line 3 is "server 10.9.9.9:80;", berth wrote "server 127.0.0.1:20000;"');
      await until(() => h.ofType('drift.detected').length > 0, 2000, 'drift.detected');
      await settled(h);
      const [e] = h.ofType('drift.detected');
      assert.deepEqual(e!.apps, []);
      assert.equal(e!.selfHeal, false);
      assert.equal(e!.description, 'memory file edited');
      assert.match(e!.proxy ?? '', /^memory file edited: line 3/);
      assert.match(e!.proxy ?? '', /line 3/);
      assert.equal(h.controller.lastPlan?.proxy.rewrite, e!.proxy);
      assert.equal(h.controller.lastPlan?.empty, false, 'a hand-edited proxy file is a change');
      assert.equal(h.controller.status.syncStatus, 'OutOfSync');
      assert.ok(h.proxy.edited, 'selfHeal off: left as it is');
      assert.equal(await triggerCount(h.metrics, 'proxy'), 1);

      // selfHeal on (a new commit): the file is written again.
      h.serve(repo({ web: web('v1') }, repoYaml('selfHeal: true')));
      await h.sync('webhook');
      h.proxy.editByHand();
      await until(() => h.ofType('drift.healed').length > 0, 2000, 'drift.healed');
      await settled(h);
      assert.equal(h.proxy.edited, undefined, 'rewritten');
      assert.equal(h.controller.status.syncStatus, 'Synced');
      const healed = h.ofType('drift.healed')[0]!;
      assert.deepEqual([healed.apps, typeof healed.proxy], [[], 'string']);
    } finally {
      await h.close();
    }
  });

  it('a lost runtime event stream reconnects with backoff, then re-checks once and finds what it missed', async () => {
    const h = await harness(repo({ web: web('v1') }), { runtimeDebounceMs: 20 });
    try {
      await h.sync('startup');
      await watching(h);

      h.runtime.feed.break(new Error('dockerd went away'));
      // While nothing listens: removed by hand, no event reaches berth.
      h.runtime.removeByHand(h.runtime.running('web')[0]!.id);
      await until(() => h.runtime.feed.opened === 2 && h.runtime.feed.open === 1, 2000, 'the stream reopened');
      await until(() => h.ofType('drift.detected').length > 0, 2000, 'drift.detected after the reconnect');
      await settled(h);

      assert.equal(await triggerCount(h.metrics, 'runtime'), 1, 'one full re-check after the reconnect');
      assert.ok(h.logs.some((l) => l.msg === 'event stream lost; reconnecting' && l.err === 'dockerd went away'));
      assert.deepEqual(h.ofType('drift.detected').map((e) => e.apps), [['web']]);
    } finally {
      await h.close();
    }
  });

  it("Docker's health_status event makes the monitor probe that replica at once", async () => {
    const h = await harness(repo({ web: web('v1') }), { runtimeDebounceMs: 20 });
    try {
      await h.sync('startup');
      await watching(h);
      await settled(h);
      const [c] = h.runtime.running('web');
      const execs = h.runtime.calls.exec;
      h.runtime.feed.push({ action: 'health_status', id: c!.id, name: c!.name, env: ENV, app: 'web', host: 'local', time: Date.now() });
      await until(() => h.runtime.calls.exec > execs, 1000, 'a probe');
      await settled(h);
      assert.equal(await triggerCount(h.metrics, 'runtime'), 0, 'a health_status is no drift');
    } finally {
      await h.close();
    }
  });

  it('a replica Docker is still removing (between die and destroy) is waited for, not planned around', async () => {
    const h = await harness(repo({ web: web('v1') }, repoYaml('selfHeal: true')));
    try {
      await h.sync('startup');
      const victim = h.runtime.running('web')[0]!;
      victim.state = 'removing';
      // Docker finishes the removal while berth looks again.
      const list = h.runtime.list.bind(h.runtime);
      let lists = 0;
      h.runtime.list = async (env) => {
        if (++lists === 3) h.runtime.containers.delete(victim.id);
        return list(env);
      };
      await h.sync('runtime');
      const record = (await h.records()).at(-1)!;
      assert.deepEqual([record.trigger, record.result], ['runtime', 'Succeeded']);
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);
    } finally {
      await h.close();
    }
  });

  it('a push coalesced with re-checks is still fetched; re-checks alone read nothing', async () => {
    const h = await harness(repo({ web: web('v1') }));
    try {
      await h.sync('startup');
      let reads = h.reads;
      const release = h.blockReads();
      h.controller.trigger('poll');
      await until(() => h.reads === reads + 1, 1000, 'the reconcile to start reading');
      h.serve(repo({ web: web('v2') }));
      h.controller.trigger('webhook');
      h.controller.trigger('runtime');
      h.controller.trigger('health');
      release();
      await h.controller.idle();
      await h.bus.flush();
      assert.equal(h.reads, reads + 2, 'the follow-up read the source');
      assert.deepEqual(versions(h.runtime, 'web'), ['v2', 'v2']);

      reads = h.reads;
      await h.sync('runtime');
      await h.sync('proxy');
      assert.equal(h.reads, reads);
    } finally {
      await h.close();
    }
  });
});

describe('controller: the flapping guard', () => {
  it('heals an app at most 5 times in 10 minutes, then leaves it Degraded (HealLimitReached) and reports it once', async () => {
    const h = await harness(repo({ web: web('v1') }, repoYaml('selfHeal: true')));
    try {
      await h.sync('startup');
      for (let i = 0; i < 5; i++) await killOne(h);
      assert.equal((await heals(h)).length, 5);
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);

      await killOne(h);
      assert.equal((await heals(h)).length, 5, 'the sixth is not healed');
      assert.equal(h.runtime.running('web').length, 1);
      const limited = h.ofType('drift.detected').filter((e) => e.reason === 'HealLimitReached');
      assert.equal(limited.length, 1);
      assert.deepEqual([limited[0]!.apps, limited[0]!.selfHeal], [['web'], false]);
      assert.match(limited[0]!.description, /^web healed 5 times in 10 min; berth leaves it alone until the repo changes it or a sync is forced$/);
      const status = h.appStatus('web');
      assert.deepEqual([status.health, status.reason, status.syncStatus], ['Degraded', 'HealLimitReached', 'OutOfSync']);
      assert.equal(h.controller.status.health, 'Degraded');

      // More drift checks: still left alone, reported once.
      for (let i = 0; i < 2; i++) await h.sync('runtime');
      assert.equal(h.runtime.running('web').length, 1);
      assert.equal(h.ofType('drift.detected').filter((e) => e.reason === 'HealLimitReached').length, 1);

      // A restarted berth remembers.
      await h.controller.stop();
      const again = await h.restart();
      again.trigger('startup');
      await again.idle();
      await h.bus.flush();
      assert.equal(h.runtime.running('web').length, 1, 'the restarted controller does not heal it either');
      assert.equal(again.status.apps.find((a) => a.app === 'web')?.reason, 'HealLimitReached');

      // A person forces a sync: healed, and the count starts again.
      again.trigger('manual', { force: true });
      await again.idle();
      await h.bus.flush();
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);
      assert.equal(again.status.apps.find((a) => a.app === 'web')?.reason, undefined);
      h.runtime.kill(h.runtime.running('web')[0]!.id);
      again.trigger('poll');
      await again.idle();
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1'], 'healed again after the forced sync');
    } finally {
      await h.close();
    }
  });

  it('counts heals within the window only, and a repo change of the app lifts the limit', async () => {
    const h = await harness(repo({ web: web('v1'), docs: app('docs', 'v1') }, repoYaml('selfHeal: true')));
    const clock = h.controller.deps.clock as unknown as { t: number };
    try {
      await h.sync('startup');
      // Spread out: never more than 3 heals in any 10 minutes.
      for (let i = 0; i < 8; i++) {
        await killOne(h);
        clock.t += 250_000;
      }
      assert.equal((await heals(h)).length, 8, 'heals spread over time are all done');
      assert.equal(h.ofType('drift.detected').filter((e) => e.reason === 'HealLimitReached').length, 0);

      // The last two heals are within 10 minutes: three more are allowed, the next kill is left alone.
      const before = (await heals(h)).length;
      for (let i = 0; i < 10 && h.appStatus('web').reason !== 'HealLimitReached'; i++) await killOne(h);
      assert.equal((await heals(h)).length - before, 3);
      assert.equal(h.appStatus('web').reason, 'HealLimitReached');
      clock.t += 3_600_000;
      await h.sync('poll');
      assert.equal(h.runtime.running('web').length, 1, 'the limit holds past the window: only the repo or a person lifts it');

      // Another app is healed meanwhile; a commit that does not change web keeps web alone.
      h.runtime.kill(h.runtime.running('docs')[0]!.id);
      h.serve(repo({ web: web('v1'), docs: app('docs', 'v1', '  env: { A: "1" }\n') }, repoYaml('selfHeal: true')));
      await h.sync('webhook');
      assert.equal(h.runtime.running('docs').length, 2);
      assert.equal(h.runtime.running('web').length, 1, 'a commit that leaves web as it is does not lift its limit');

      h.serve(repo({ web: web('v2'), docs: app('docs', 'v1', '  env: { A: "1" }\n') }, repoYaml('selfHeal: true')));
      await h.sync('webhook');
      assert.deepEqual(versions(h.runtime, 'web'), ['v2', 'v2']);
      assert.equal(h.appStatus('web').health, 'Healthy');
      await killOne(h);
      assert.deepEqual(versions(h.runtime, 'web'), ['v2', 'v2'], 'the changed app is healed again');
    } finally {
      await h.close();
    }
  });

  it('healLimit in berth.yaml sets the limit', async () => {
    const berth = repoYaml('selfHeal: true, healLimit: { heals: 2, windowSeconds: 60 }');
    const rendered = renderEnvironment(memoryRevision(repo({ web: web('v1') }, berth)), ENV, { secrets: envSecretSource({}) });
    assert.ok(rendered.ok, 'berth.yaml with healLimit is valid');
    assert.deepEqual(rendered.state.settings.healLimit, { heals: 2, windowSeconds: 60 });
    const h = await harness(repo({ web: web('v1') }, berth));
    try {
      await h.sync('startup');
      for (let i = 0; i < 3; i++) await killOne(h);
      assert.equal((await heals(h)).length, 2);
      assert.match(h.ofType('drift.detected').find((e) => e.reason === 'HealLimitReached')?.description ?? '', /healed 2 times in 1 min/);
    } finally {
      await h.close();
    }
  });
});

describe('controller: the health monitor acts', () => {
  it('a replica failing its health check failureThreshold times is replaced through the strategy; event and reason recorded (selfHeal off)', async () => {
    const h = await harness(repo({ web: web('v1') }));
    try {
      await h.sync('startup');
      const victim = h.runtime.running('web')[0]!;
      h.runtime.healthy = (c) => c.id !== victim.id;
      h.proxy.minServing = Infinity;

      await h.health.checkAll();
      assert.equal(await triggerCount(h.metrics, 'health'), 0, 'one failure is not enough (failureThreshold 2)');
      await h.health.checkAll();
      await h.controller.idle();
      await h.bus.flush();

      const failed = h.ofType('health.failed');
      assert.deepEqual(failed.map((e) => [e.app, e.replica, e.containerId, e.failures]), [['web', victim.name, victim.id, 2]]);
      assert.match(failed[0]!.message, /exec check → exit 1/);
      assert.ok(!h.runtime.containers.has(victim.id), 'the failing replica is gone');
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);
      assert.ok(h.runtime.running('web').every((c) => c.name !== victim.name), 'its replacement has a name of its own');
      assert.equal(h.proxy.minServing, 2, 'rolling: the replacement served before the failing one left');
      const record = (await h.records()).at(-1)!;
      assert.equal(record.trigger, 'health');
      assert.equal(record.result, 'Succeeded');
      assert.match(record.apps[0]!.actions[0]!, new RegExp(`^heal: replica ${victim.name} failed its health check 2 times in a row: exec check → exit 1`));
      assert.deepEqual(h.ofType('drift.detected'), [], 'a failing replica is not drift');
      await h.sync('poll');
      assert.equal(h.controller.status.syncStatus, 'Synced');
      assert.equal(h.appStatus('web').health, 'Healthy');
    } finally {
      await h.close();
    }
  });

  it('with selfHeal off, replacing a failing replica leaves other drift as it is, and reports it', async () => {
    const h = await harness(repo({ web: web('v1'), docs: app('docs', 'v1') }));
    try {
      await h.sync('startup');
      const sick = h.runtime.running('web')[0]!;
      const killed = h.runtime.running('docs')[0]!;
      h.runtime.kill(killed.id);
      h.runtime.healthy = (c) => c.id !== sick.id;
      await h.health.checkAll();
      await h.health.checkAll();
      await h.controller.idle();
      await h.bus.flush();

      assert.ok(!h.runtime.containers.has(sick.id), 'the failing web replica was replaced');
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1']);
      assert.equal(h.runtime.containers.get(killed.id)?.state, 'exited', 'the killed docs replica is left alone');
      assert.deepEqual(h.ofType('drift.detected').map((e) => [e.apps, e.selfHeal]), [[['docs'], false]]);
      assert.deepEqual([...h.ofType('drift.healed'), ...h.ofType('drift.resolved')], [], 'the drift reported is still there: not healed, not resolved');
      const record = (await h.records()).at(-1)!;
      assert.deepEqual(record.apps.map((a) => a.app), ['web']);
      assert.equal(h.appStatus('docs').syncStatus, 'OutOfSync');
    } finally {
      await h.close();
    }
  });

  it('a replacement that fails its gate rolls back without holding the running version, and counts toward the limit', async () => {
    const h = await harness(repo({ web: web('v1') }));
    try {
      await h.sync('startup');
      const [victim, other] = h.runtime.running('web');
      h.runtime.healthy = (c) => c.id === other!.id;
      await h.health.checkAll();
      await h.health.checkAll();
      await h.controller.idle();
      await h.bus.flush();

      const record = (await h.records()).at(-1)!;
      assert.deepEqual([record.trigger, record.result], ['health', 'RolledBack']);
      assert.ok(h.runtime.containers.has(victim!.id), 'the failing replica keeps running: no replacement passed its gate');
      assert.deepEqual(h.controller.memory.held, {}, 'the version that runs is not held');
      for (let i = 0; i < 6; i++) await h.sync('poll');
      const attempts = (await h.records()).filter((r) => r.trigger !== 'startup');
      assert.equal(attempts.length, 5, 'at most 5 replacements in 10 minutes');
      const status = h.appStatus('web');
      assert.deepEqual([status.health, status.reason], ['Degraded', 'HealLimitReached']);
    } finally {
      await h.close();
    }
  });

  it('a re-check heals to the revision last reconciled, never to a newer one that does not render', async () => {
    const h = await harness(repo({ web: web('v1') }, repoYaml('selfHeal: true')));
    try {
      await h.sync('startup');
      h.serve(repo({ web: web('v2').replace('replicas: 2', 'replicas: -1') }, repoYaml('selfHeal: true')));
      await h.sync('poll');
      assert.match((await h.records()).at(-1)!.error ?? '', /problem/, 'the newer revision does not render');
      h.runtime.removeByHand(h.runtime.running('web')[0]!.id);
      await h.sync('runtime');
      assert.deepEqual(versions(h.runtime, 'web'), ['v1', 'v1'], 'healed to the applied revision');
      assert.equal(h.ofType('drift.healed').length, 1);
    } finally {
      await h.close();
    }
  });

  it('drift reported on a revision is resolved on it once a newer revision is applied (selfHeal off)', async () => {
    const h = await harness(repo({ web: web('v1') }));
    try {
      await h.sync('startup');
      h.runtime.removeByHand(h.runtime.running('web')[0]!.id);
      await h.sync('runtime');
      const [detected] = h.ofType('drift.detected');
      assert.ok(detected, 'drift reported');
      h.serve(repo({ web: web('v2') }));
      await h.sync('poll');
      const [resolved] = h.ofType('drift.resolved');
      assert.equal(resolved?.revision, detected.revision, 'on the commit that carried the drift');
      // (The in-memory revisions have no commit, so both read `worktree`; with Git the text says which revision was applied since.)
      assert.match(resolved.description, /^resolved: .* \(was: web: 1 of 2 replicas missing\)$/);
      assert.equal(h.ofType('drift.healed').length, 0, 'not healed: the newer revision replaced it');
    } finally {
      await h.close();
    }
  });
});
