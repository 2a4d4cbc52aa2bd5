import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ScalingLoop } from '../../src/controller/scaling.js';
import { BUILTIN_PLUGINS } from '../../src/plugins/builtin/index.js';
import { discoverPlugins } from '../../src/plugins/catalog.js';
import { PluginHost } from '../../src/plugins/host.js';
import type { Controller } from '../../src/controller/controller.js';
import type { Clock } from '../../src/util/clock.js';
import { appYaml, REPO_YAML } from '../support/repo.js';
import { CHECK, ENV, harness, repo, repoYaml, type Harness } from './harness.js';

// The schedule scaler end to end: the controller on fakes (harness.ts), a real PluginHost running
// the built-in `schedule` plugin from the repo's Plugin document, and the ScalingLoop asking it on
// the harness's fake clock.

const PLUGIN = `apiVersion: berth/v1
kind: Plugin
metadata: { name: office-hours }
spec:
  use: schedule
  config:
    schedules:
      - apps: [web]
        table: { "09:00": 5, "18:00": 1 }
`;

const BOUNDS = '  scaling: { min: 1, max: 4 }\n';

/** web with `replicas` and `scaling` lines (BOUNDS unless given; '' for none). */
function web(replicas: number, scaling = BOUNDS): string {
  return appYaml('web', `  replicas: ${replicas}\n  args: [v1]\n  healthCheck: ${CHECK}\n  route: { host: web.test }\n${scaling}`);
}

function files(webYaml: string, selfHeal: boolean): Record<string, string> {
  return { ...repo({ web: webYaml }, selfHeal ? repoYaml('selfHeal: true') : REPO_YAML), 'plugins/office-hours.yaml': PLUGIN };
}

interface Scaled {
  h: Harness;
  host: PluginHost;
  /** Sets the fake clock to `hh:mm` UTC on 2025-01-0`day` (default 1). */
  at(hhmm: string, day?: number): void;
  /** One scaling round, then whatever reconcile it triggered, then the subscribers. */
  round(controller?: Controller): Promise<Awaited<ReturnType<ScalingLoop['tick']>>>;
  decisions(): { from: number; to: number; declared: number; reason: string }[];
  decisionsCounted(): Promise<number>;
  close(): Promise<void>;
}

async function scaled(repoFiles: Record<string, string>): Promise<Scaled> {
  const h = await harness(repoFiles);
  const clock = h.controller.deps.clock as Clock & { t: number };
  const log = pino({ level: 'silent' });
  const catalog = await discoverPlugins({ builtins: { schedule: BUILTIN_PLUGINS.schedule! } });
  let current = h.controller;
  const host = new PluginHost({
    env: ENV,
    catalog,
    bus: h.bus,
    log,
    metrics: h.metrics,
    now: clock.now,
    controls: { sync: () => void current.trigger('plugin'), rescale: () => {}, suspend: (r) => current.suspend(r), resume: () => current.resume(), status: () => current.status },
  });
  // Shared by every controller the harness makes (restart() too), as `berth run` wires it.
  h.controller.deps.plugins = { manifests: { get: (use) => catalog.get(use)?.manifest, names: () => catalog.list().map((d) => d.manifest.name) }, host };
  const loopFor = (c: Controller) => new ScalingLoop({ env: ENV, scalers: () => host.scalers(), desired: () => c.lastDesired, memory: () => c.memory, trigger: (t) => c.trigger(t), bus: h.bus, metrics: h.metrics, clock, log });
  return {
    h,
    host,
    at: (hhmm, day = 1) => void (clock.t = Date.parse(`2025-01-0${day}T${hhmm}:00Z`)),
    round: async (c = h.controller) => {
      current = c;
      const made = await loopFor(c).tick();
      await c.idle();
      await h.bus.flush();
      return made;
    },
    decisions: () => h.ofType('scaling.decision').map(({ from, to, declared, reason }) => ({ from, to, declared, reason })),
    decisionsCounted: async () => {
      const { values } = await h.metrics.scalingDecisions.get();
      return values.find((v) => v.labels.app === 'web' && v.labels.scaler === 'office-hours')?.value ?? 0;
    },
    close: async () => {
      await h.close();
      await host.close();
    },
  };
}

for (const selfHeal of [false, true]) {
  describe(`schedule scaler under the controller (selfHeal ${selfHeal ? 'on' : 'off'})`, () => {
    it('scales at the table times within the bounds, applies it, and never calls it drift', async () => {
      const s = await scaled(files(web(2), selfHeal));
      const { h } = s;
      try {
        s.at('10:00');
        await h.sync('startup');
        assert.equal(s.host.get('office-hours')?.state, 'running', s.host.get('office-hours')?.lastError?.message);
        assert.equal(h.runtime.running('web').length, 2, 'the repo count until the scaler is asked');

        // 10:00: the table says 5; the bounds allow 4.
        assert.deepEqual(await s.round(), [{ app: 'web', from: 2, to: 4, scaler: 'office-hours' }]);
        assert.deepEqual(s.decisions(), [{ from: 2, to: 4, declared: 2, reason: 'schedule 09:00 (UTC): 5' }]);
        assert.equal(await s.decisionsCounted(), 1);
        assert.deepEqual(h.controller.memory.scaled?.web && { ...h.controller.memory.scaled.web, at: undefined }, { replicas: 4, scaler: 'office-hours', reason: 'schedule 09:00 (UTC): 5', at: undefined });
        assert.equal(h.runtime.running('web').length, 4, 'the reconcile the decision triggered scaled up');
        const up = (await h.records()).at(-1)!;
        assert.equal(up.trigger, 'scaler');
        assert.equal(up.result, 'Succeeded');
        assert.deepEqual(up.apps.map((a) => [a.app, a.result]), [['web', 'Succeeded']]);
        assert.equal(h.appStatus('web').syncStatus, 'Synced');
        assert.equal(h.appStatus('web').health, 'Healthy');
        assert.equal(h.controller.status.syncStatus, 'Synced');
        assert.equal(h.ofType('drift.detected').length, 0, 'a decision applied is no drift');
        assert.equal((await h.controller.drift())?.drifted, false);

        // Polls of the same revision neither scale back to the repo's 2 nor report drift.
        const records = (await h.records()).length;
        const runs = h.runtime.calls.run;
        await h.sync('poll');
        await h.sync('poll');
        assert.equal(h.runtime.running('web').length, 4);
        assert.equal(h.runtime.calls.run, runs);
        assert.equal((await h.records()).length, records, 'nothing recorded');
        assert.equal(h.ofType('drift.detected').length, 0);
        assert.equal((await h.controller.drift())?.drifted, false);
        assert.equal(h.controller.status.syncStatus, 'Synced');

        // Asked again within the same entry: nothing changes.
        assert.deepEqual(await s.round(), []);
        assert.equal(s.decisions().length, 1);

        // 18:00: the table says 1.
        s.at('18:00');
        assert.deepEqual(await s.round(), [{ app: 'web', from: 4, to: 1, scaler: 'office-hours' }]);
        assert.deepEqual(s.decisions()[1], { from: 4, to: 1, declared: 2, reason: 'schedule 18:00 (UTC): 1' });
        assert.equal(h.runtime.running('web').length, 1);
        assert.equal((await h.records()).at(-1)!.trigger, 'scaler');
        assert.equal(await s.decisionsCounted(), 2);
        await h.sync('poll');
        assert.equal(h.runtime.running('web').length, 1);
        assert.equal(h.ofType('drift.detected').length, 0);
        assert.equal((await h.controller.drift())?.drifted, false);
        assert.equal(h.appStatus('web').syncStatus, 'Synced');
      } finally {
        await s.close();
      }
    });

    it("a commit changes the repo's count: the decision still holds, within the new bounds; without bounds the repo's count applies again", async () => {
      const s = await scaled(files(web(2), selfHeal));
      const { h } = s;
      try {
        s.at('18:30');
        await h.sync('startup');
        assert.deepEqual(await s.round(), [{ app: 'web', from: 2, to: 1, scaler: 'office-hours' }]);
        assert.equal(h.runtime.running('web').length, 1);

        // replicas: 3 in the repo; the scaler's 1 is within the bounds and stays.
        h.serve(files(web(3), selfHeal));
        await h.sync('poll');
        assert.equal(h.runtime.running('web').length, 1);
        assert.equal((await h.records()).at(-1)!.result, 'Succeeded');
        assert.deepEqual(await s.round(), [], 'the same proposal: no new decision');
        assert.equal(s.decisions().length, 1);
        assert.equal(h.ofType('drift.detected').length, 0);

        // Bounds narrowed to min 2: the decision is clamped into them, and no decision is announced for it.
        h.serve(files(web(3, '  scaling: { min: 2, max: 4 }\n'), selfHeal));
        await h.sync('poll');
        assert.equal(h.runtime.running('web').length, 2);
        assert.deepEqual(await s.round(), [], 'running 2 already: the proposal (1, clamped to 2) changes nothing');
        assert.equal(s.decisions().length, 1);
        assert.equal((await h.controller.drift())?.drifted, false);

        // No bounds any more: the repo's 3 applies, and the decision is forgotten.
        h.serve(files(web(3, ''), selfHeal));
        await h.sync('poll');
        assert.equal(h.runtime.running('web').length, 3);
        assert.deepEqual(await s.round(), []);
        assert.equal(h.controller.memory.scaled?.web, undefined);
        await h.sync('poll');
        assert.equal(h.runtime.running('web').length, 3);
        assert.equal(h.ofType('drift.detected').length, 0);
        assert.equal((await h.controller.drift())?.drifted, false);
      } finally {
        await s.close();
      }
    });
  });
}

describe('schedule scaler under the controller: memory and drift', () => {
  it('a decision survives a restart: the restarted controller keeps the scaled count', async () => {
    const s = await scaled(files(web(2), false));
    const { h } = s;
    try {
      s.at('10:00');
      await h.sync('startup');
      await s.round();
      assert.equal(h.runtime.running('web').length, 4);
      await h.controller.stop();

      const again = await h.restart();
      assert.equal(again.memory.scaled?.web?.replicas, 4, 'memory.json kept the decision');
      again.trigger('startup');
      await again.idle();
      await h.bus.flush();
      assert.equal(h.runtime.running('web').length, 4);
      assert.equal(h.ofType('drift.detected').length, 0);
      assert.deepEqual(await s.round(again), [], 'the restarted loop sees the decision as current');
      assert.equal(s.decisions().length, 1);
    } finally {
      await s.close();
    }
  });

  // Only a decision not yet applied (memory.scaled[app].pending) is the scaler's change; once applied,
  // a replica count that moves is drift like any other.
  it('selfHeal off: a replica of a scaled app removed by hand is drift, reported and not healed', async () => {
    const s = await scaled(files(web(2), false));
    const { h } = s;
    try {
      s.at('10:00');
      await h.sync('startup');
      await s.round();
      assert.equal(h.runtime.running('web').length, 4);

      h.runtime.removeByHand(h.runtime.running('web')[0]!.id);
      await h.sync('runtime');
      assert.equal(h.runtime.running('web').length, 3, 'not healed: selfHeal is off');
      const drift = h.ofType('drift.detected');
      assert.equal(drift.length, 1);
      assert.deepEqual(drift[0]!.apps, ['web']);
      assert.equal((await h.controller.drift())?.drifted, true);
    } finally {
      await s.close();
    }
  });

  it('while reconciling is suspended a decision is recorded but waits; resume applies it', async () => {
    const s = await scaled(files(web(2), false));
    const { h } = s;
    try {
      s.at('10:00');
      await h.sync('startup');
      h.controller.suspend('maintenance');
      assert.deepEqual(await s.round(), [{ app: 'web', from: 2, to: 4, scaler: 'office-hours' }]);
      assert.equal(h.runtime.running('web').length, 2, 'nothing applied while suspended');
      assert.deepEqual(await s.round(), [], 'decided once, not again on every round');
      h.controller.resume();
      await h.controller.idle();
      await h.bus.flush();
      assert.equal(h.runtime.running('web').length, 4);
      assert.equal((await h.records()).at(-1)!.trigger, 'scaler');
      assert.equal(h.ofType('drift.detected').length, 0);
    } finally {
      await s.close();
    }
  });

  it('selfHeal on: scaler decisions do not count toward the heal limit', async () => {
    const s = await scaled(files(web(2), true));
    const { h } = s;
    try {
      s.at('10:00');
      await h.sync('startup');
      for (const [day, hhmm, want] of [[1, '10:00', 4], [1, '18:00', 1], [2, '09:00', 4], [2, '18:00', 1], [3, '09:00', 4], [3, '18:00', 1]] as const) {
        s.at(hhmm, day);
        await s.round();
        assert.equal(h.runtime.running('web').length, want, `day ${day} ${hhmm}`);
      }
      assert.equal(s.decisions().length, 6);
      assert.equal(h.controller.memory.heals?.web, undefined, 'no heal counted');
      assert.equal(h.ofType('drift.detected').length, 0);
    } finally {
      await s.close();
    }
  });
});
