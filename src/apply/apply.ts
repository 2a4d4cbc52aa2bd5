import { waitHealthy } from '../health/gate.js';
import type { LiveContainer, LiveState, ProxyRoute, UpstreamServer } from '../runtime/types.js';
import { desiredRoute, serverAddress } from '../plan/plan.js';
import type { AppPlan, Plan } from '../plan/types.js';
import type { DesiredApp, DesiredState } from '../render/types.js';
import { toCreateSpec } from './container-spec.js';
import type { AppOutcome, ApplyDeps, ApplyReport, Phase, ReconcileResult } from './types.js';

class RolledBack extends Error {}

/** Drain time for an app leaving the repo (its route.drainSeconds is gone with it). */
const PRUNE_DRAIN_MS = 2000;

/** The stop grace period a container was created with (from its berth.spec label), default 10 s. */
function graceOf(c: LiveContainer): number {
  try {
    const grace = (JSON.parse(c.spec) as { stopGracePeriodSeconds?: unknown }).stopGracePeriodSeconds;
    return typeof grace === 'number' ? grace : 10;
  } catch {
    return 10;
  }
}

/** Shared state of one apply: the proxy model and the revision label. */
class ApplyRun {
  readonly routes = new Map<string, ProxyRoute>();
  reloads = 0;

  constructor(
    readonly deps: ApplyDeps,
    readonly env: string,
    readonly revision: string,
    live: LiveState,
  ) {
    for (const r of live.proxy.routes) this.routes.set(r.app, structuredClone(r));
  }

  event(app: string, phase: Phase, message: string): void {
    this.deps.onEvent?.({ app, phase, message });
  }

  /** Points the app's upstream at `containers` (weights optional); an empty set keeps the last good servers. */
  setServers(app: DesiredApp, containers: LiveContainer[], weights?: Map<string, number>): void {
    const route = this.routes.get(app.name);
    if (!route) return;
    const servers: UpstreamServer[] = [];
    for (const c of containers) {
      const address = serverAddress(app, c);
      if (address) servers.push({ address, containerId: c.id, ...(weights?.has(c.id) && { weight: weights.get(c.id)! }) });
    }
    if (servers.length === 0 && route.servers.length > 0) return;
    route.servers = servers;
  }

  /** Writes the proxy config if it changed: one test + one reload for everything changed since the last sync. */
  async syncProxy(): Promise<boolean> {
    const { changed } = await this.deps.proxy.apply({ env: this.env, routes: [...this.routes.values()] });
    if (changed) this.reloads++;
    return changed;
  }
}

/** Executes a plan: per app in dependsOn order, with its strategy; one failing app never stops independent ones. */
export async function applyPlan(planned: Plan, desired: DesiredState, live: LiveState, deps: ApplyDeps): Promise<ApplyReport> {
  const started = deps.clock.now();
  const run = new ApplyRun(deps, desired.environment, desired.revision.sha ?? 'worktree', live);
  const outcomes = new Map<string, AppOutcome>();

  for (const appPlan of planned.apps) {
    const name = appPlan.app;
    if (appPlan.actions.length === 0) {
      outcomes.set(name, { app: name, result: 'Unchanged', actions: [] });
      continue;
    }
    const blocked = (appPlan.desired?.spec.dependsOn ?? []).find((d) => {
      const r = outcomes.get(d)?.result;
      return r === 'Failed' || r === 'RolledBack' || r === 'Skipped';
    });
    if (blocked) {
      const why = `dependency "${blocked}" ${outcomes.get(blocked)!.result === 'Skipped' ? 'was skipped' : 'did not apply'}`;
      run.event(name, 'skipped', why);
      outcomes.set(name, { app: name, result: 'Skipped', actions: [], error: why });
      continue;
    }
    const done: string[] = [];
    try {
      await convergeApp(run, appPlan, done);
      run.event(name, 'done', done.join(', ') || 'up to date');
      outcomes.set(name, { app: name, result: 'Succeeded', actions: done });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof RolledBack) {
        run.event(name, 'rolled-back', message);
        outcomes.set(name, { app: name, result: 'RolledBack', actions: done, error: message });
      } else {
        run.event(name, 'failed', message);
        outcomes.set(name, { app: name, result: 'Failed', actions: done, error: message });
      }
    }
  }

  // Routes of apps that left the repo, and any route change not yet written.
  for (const r of planned.staleRoutes) run.routes.delete(r.app);
  try {
    await run.syncProxy();
  } catch (err) {
    outcomes.set('(proxy)', { app: '(proxy)', result: 'Failed', actions: [], error: (err as Error).message });
  }

  const apps = [...outcomes.values()];
  const result: ReconcileResult = apps.some((a) => a.result === 'Failed') ? 'Failed' : apps.some((a) => a.result === 'RolledBack' || a.result === 'Skipped') ? 'RolledBack' : 'Succeeded';
  return { env: desired.environment, revision: run.revision, result, apps, durationMs: deps.clock.now() - started, reloads: run.reloads };
}

async function ensureImage(run: ApplyRun, app: DesiredApp): Promise<void> {
  const { runtime } = run.deps;
  if (await runtime.hasImage(app.spec.image)) return;
  run.event(app.name, 'pull', `pulling ${app.spec.image}`);
  let lastShown = 0;
  await runtime.pull(app.spec.image, (p) => {
    const now = run.deps.clock.now();
    if (now - lastShown > 1000) {
      lastShown = now;
      run.event(app.name, 'pull', `${p.status}${p.fraction !== undefined ? ` ${Math.round(p.fraction * 100)}%` : ''}`);
    }
  });
}

/** Brings one app from whatever state it is in (including a half-finished earlier apply) to its desired state. */
async function convergeApp(run: ApplyRun, appPlan: AppPlan, done: string[]): Promise<void> {
  const { runtime } = run.deps;
  const app = appPlan.desired;
  if (!app) {
    // Pruned: out of the proxy first, then drain, then stop.
    const hadRoute = run.routes.delete(appPlan.app);
    if (hadRoute && (await run.syncProxy())) {
      done.push('route removed');
      await run.deps.clock.sleep(PRUNE_DRAIN_MS);
    }
    for (const c of appPlan.live) {
      run.event(appPlan.app, 'remove', `removing ${c.name}`);
      await runtime.stop(c.id, graceOf(c));
      await runtime.remove(c.id);
    }
    done.push(`removed ${appPlan.live.length}`);
    return;
  }

  const target = desiredRoute(app);
  if (target) run.routes.set(app.name, { ...target, servers: run.routes.get(app.name)?.servers ?? [] });
  else run.routes.delete(app.name);

  const want = app.spec.replicas;
  const drainMs = (app.spec.route?.drainSeconds ?? 0) * 1000;
  const grace = app.spec.stopGracePeriodSeconds;
  const inUpstream = new Set(run.routes.get(app.name)?.servers.map((s) => s.containerId) ?? []);

  // Not running: no traffic reaches it, so it goes first (killed replicas, leftovers of a killed apply).
  for (const c of appPlan.live.filter((c) => c.state !== 'running')) {
    run.event(app.name, 'remove', `removing ${c.name} (${c.status})`);
    await runtime.remove(c.id);
    done.push(`removed stopped ${c.name}`);
  }
  let ready = appPlan.live.filter((c) => c.state === 'running' && c.specHash === app.specHash);
  let old = appPlan.live.filter((c) => c.state === 'running' && c.specHash !== app.specHash).sort((a, b) => a.replica - b.replica);

  // Replicas of the new spec that may never have passed a gate (berth was killed mid-apply) are
  // gated now: routed ones missing from the upstream, and all of an app without a route.
  for (const c of ready.filter((c) => !target || !inUpstream.has(c.id))) {
    const gate = await waitHealthy(app.spec.healthCheck, c, runtime, run.deps.clock);
    if (!gate.healthy) {
      await runtime.remove(c.id);
      ready = ready.filter((x) => x.id !== c.id);
      done.push(`removed unhealthy ${c.name}`);
    }
  }
  if (ready.length < want) await ensureImage(run, app);

  const started: LiveContainer[] = [];
  const stoppedOld: LiveContainer[] = [];
  const usedReplicas = new Set(ready.map((c) => c.replica));

  const startBatch = async (count: number): Promise<LiveContainer[]> => {
    const batch: LiveContainer[] = [];
    for (let i = 0; i < count; i++) {
      let replica = 0;
      while (usedReplicas.has(replica)) replica++;
      usedReplicas.add(replica);
      run.event(app.name, 'start', `starting replica ${replica} (${app.spec.image})`);
      const c = await runtime.run(toCreateSpec(run.env, run.revision, app, replica));
      started.push(c);
      batch.push(c);
    }
    run.event(app.name, 'wait', `waiting for ${count} replica${count === 1 ? '' : 's'} to be healthy`);
    const gates = await Promise.all(batch.map((c) => waitHealthy(app.spec.healthCheck, c, runtime, run.deps.clock)));
    const failed = gates.find((g) => !g.healthy);
    if (failed && !failed.healthy) await rollback(failed.reason);
    done.push(`started ${count}`);
    return gates.map((g) => (g as { container: LiveContainer }).container);
  };

  const rollback = async (reason: string): Promise<never> => {
    run.event(app.name, 'rolled-back', `health gate failed: ${reason}; rolling back`);
    // Old replicas first (restarted and gated), then nginx back to them, then the new ones go.
    const restored: LiveContainer[] = [];
    for (const c of stoppedOld) {
      const again = await runtime.start(c.id);
      const gate = await waitHealthy(app.spec.healthCheck, again, runtime, run.deps.clock);
      if (gate.healthy) restored.push(again);
    }
    run.setServers(app, [...ready, ...old, ...restored]);
    await run.syncProxy();
    for (const c of started) await runtime.remove(c.id);
    throw new RolledBack(`new version failed its health check and was rolled back (previous containers keep serving): ${reason}`);
  };

  /** Replicas already out of the upstream: wait for their in-flight requests, then stop (not remove) them. */
  const retire = async (out: LiveContainer[]): Promise<void> => {
    if (out.length === 0) return;
    if (drainMs > 0) {
      run.event(app.name, 'drain', `draining ${out.length} for ${drainMs / 1000}s`);
      await run.deps.clock.sleep(drainMs);
    }
    for (const c of out) {
      run.event(app.name, 'stop', `stopping ${c.name}`);
      await runtime.stop(c.id, grace);
      stoppedOld.push(c);
    }
  };

  /** Takes containers out of the upstream (one reload), then retires them. */
  const takeOut = async (out: LiveContainer[], keep: LiveContainer[]): Promise<void> => {
    if (out.length === 0) return;
    run.setServers(app, keep);
    await run.syncProxy();
    await retire(out);
  };

  const switchTo = async (serving: LiveContainer[], weights?: Map<string, number>): Promise<void> => {
    run.setServers(app, serving, weights);
    if (await run.syncProxy()) {
      run.event(app.name, 'switch', `nginx now sends traffic to ${serving.length} replica${serving.length === 1 ? '' : 's'}`);
      done.push('route switched');
    }
  };

  const strategy = app.spec.strategy;
  let fresh: LiveContainer[] = [];
  if (old.length === 0) {
    // create / scale / heal: start what is missing, drop extras (highest replica first).
    if (ready.length < want) fresh = await startBatch(want - ready.length);
    const extras = ready.sort((a, b) => b.replica - a.replica).slice(0, Math.max(0, ready.length - want));
    ready = ready.filter((c) => !extras.includes(c));
    await takeOut(extras, [...ready, ...fresh]);
    await switchTo([...ready, ...fresh]);
  } else if (strategy.type === 'recreate') {
    await takeOut(old, [...ready]);
    old = [];
    fresh = await startBatch(Math.max(0, want - ready.length));
    await switchTo([...ready, ...fresh]);
  } else if (strategy.type === 'blue-green' || strategy.type === 'canary') {
    if (strategy.type === 'canary') {
      for (const step of strategy.steps ?? []) {
        const target = Math.min(want, Math.max(1, Math.ceil((want * step.weight) / 100)));
        if (target > ready.length + fresh.length) fresh.push(...(await startBatch(target - ready.length - fresh.length)));
        const canaries = [...ready, ...fresh];
        const weights = new Map<string, number>();
        for (const c of canaries) weights.set(c.id, Math.max(1, step.weight * old.length));
        for (const c of old) weights.set(c.id, Math.max(1, (100 - step.weight) * canaries.length));
        await switchTo([...old, ...canaries], weights);
        run.event(app.name, 'wait', `canary at ${step.weight}%: watching for ${step.pauseSeconds}s`);
        const until = run.deps.clock.now() + step.pauseSeconds * 1000;
        while (run.deps.clock.now() < until) {
          for (const c of fresh) {
            const gate = await waitHealthy(app.spec.healthCheck ? { ...app.spec.healthCheck, successThreshold: 1 } : undefined, c, runtime, run.deps.clock);
            if (!gate.healthy) await rollback(`canary ${c.name}: ${gate.reason}`);
          }
          await run.deps.clock.sleep(Math.min(1000, Math.max(0, until - run.deps.clock.now())));
        }
      }
    }
    if (ready.length + fresh.length < want) fresh.push(...(await startBatch(want - ready.length - fresh.length)));
    await switchTo([...ready, ...fresh]);
    await retire(old);
    old = [];
  } else {
    // rolling: never more than want + maxSurge running, never fewer than want - maxUnavailable serving.
    while (ready.length + fresh.length < want || old.length > 0) {
      const have = ready.length + fresh.length;
      if (have >= want) {
        const out = old;
        old = [];
        await takeOut(out, [...ready, ...fresh]);
        break;
      }
      const room = want + strategy.maxSurge - (have + old.length);
      if (room <= 0) {
        const out = old.splice(0, Math.min(old.length, Math.max(1, strategy.maxUnavailable)));
        await takeOut(out, [...ready, ...fresh, ...old]);
        continue;
      }
      fresh.push(...(await startBatch(Math.min(want - have, room))));
      // One reload swaps the healthy new replicas in and as many old ones out.
      const excess = Math.max(0, ready.length + fresh.length + old.length - want);
      const out = old.splice(0, Math.min(excess, old.length));
      await switchTo([...ready, ...fresh, ...old]);
      await retire(out);
    }
  }
  // Success: the old containers were only stopped so a rollback could restart them.
  for (const c of stoppedOld) await runtime.remove(c.id);
  if (stoppedOld.length) done.push(`replaced ${stoppedOld.length}`);
  await run.syncProxy();
}
