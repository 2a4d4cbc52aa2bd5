import type { AppPlan, Plan } from '../plan/types.js';
import { reasonOfError, reconcileResultOf, type AppResult } from '../status/vocabulary.js';
import { RolledBackError, RolloutContext } from './rollout.js';
import { ApplyRun } from './run.js';
import { STRATEGIES } from './strategies/index.js';
import type { AppOutcome, ApplyDeps, ApplyReport } from './types.js';
import { Slots } from '../util/slots.js';

/** Drain time for an app leaving the repo (its route.drainSeconds is gone with it). */
const PRUNE_DRAIN_MS = 2000;

const NOT_READY: ReadonlySet<AppResult> = new Set(['Failed', 'RolledBack', 'Skipped']);

/** Apps rolled out at once when the caller does not say (each waits on its own health gates, so this is I/O-bound). */
export const DEFAULT_PARALLELISM = 16;

/**
 * Executes a plan exactly as planned, in dependency waves: an app starts once every app it depends
 * on has settled (healthy), up to `parallelism` apps at a time, each with its strategy. One failing
 * app never stops independent ones; apps that depend on it are skipped.
 */
export async function applyPlan(plan: Plan, deps: ApplyDeps): Promise<ApplyReport> {
  const started = deps.clock.now();
  const run = new ApplyRun(deps, plan);
  const outcomes = new Map<string, AppOutcome>();
  const slots = new Slots(Math.max(1, Math.floor(deps.parallelism ?? DEFAULT_PARALLELISM)));
  const settled = new Map<string, Promise<void>>();
  // plan.apps is in dependency order, so every dependency's promise exists before its dependents'.
  for (const appPlan of plan.apps) {
    const after = appPlan.dependsOn.map((d) => settled.get(d)).filter((p): p is Promise<void> => p !== undefined);
    settled.set(
      appPlan.app,
      Promise.all(after).then(async () => {
        const outcome = appPlan.op === 'none' || appPlan.held ? await applyApp(run, appPlan, outcomes) : await slots.run(() => applyApp(run, appPlan, outcomes));
        outcomes.set(outcome.app, outcome);
        if (outcome.result !== 'Unchanged') deps.onResult?.(outcome);
      }),
    );
  }
  await Promise.all(settled.values());

  // Routes of apps that left the repo, and any route change not yet written; a retired environment's
  // proxy config instead goes altogether, once every app of it is gone.
  for (const app of plan.proxy.drop) run.stageRoute(app, undefined);
  const apps = plan.apps.map((a) => outcomes.get(a.app)!);
  const remove = plan.proxy.remove === true && reconcileResultOf(apps.map((a) => a.result)) === 'Succeeded';
  try {
    if (!remove) await run.syncProxy();
    else if (await run.removeProxy()) {
      const removed: AppOutcome = { app: '(proxy)', result: 'Succeeded', actions: ['proxy config removed'] };
      apps.push(removed);
      deps.onResult?.(removed);
    }
  } catch (err) {
    const proxy: AppOutcome = { app: '(proxy)', result: 'Failed', reason: reasonOfError(err), actions: [], error: (err as Error).message };
    apps.push(proxy);
    deps.onResult?.(proxy);
  }
  return { env: plan.env, revision: plan.revision, result: reconcileResultOf(apps.map((a) => a.result)), apps, durationMs: deps.clock.now() - started, reloads: run.reloads };
}

/** One app's outcome: unchanged, held, skipped for a dependency, or the result of its rollout. */
async function applyApp(run: ApplyRun, appPlan: AppPlan, outcomes: ReadonlyMap<string, AppOutcome>): Promise<AppOutcome> {
  const app = appPlan.app;
  if (appPlan.op === 'none') return { app, result: 'Unchanged', actions: [] };
  if (appPlan.held) {
    run.progress(app, 'skipped', appPlan.held.message);
    return { app, result: 'Skipped', reason: appPlan.held.reason, actions: [], error: appPlan.held.message };
  }
  const blocked = appPlan.dependsOn.find((d) => NOT_READY.has(outcomes.get(d)?.result ?? 'Unchanged'));
  if (blocked) {
    const why = `dependency "${blocked}" ${outcomes.get(blocked)!.result === 'Skipped' ? 'was skipped' : 'did not apply'}`;
    run.progress(app, 'skipped', why);
    return { app, result: 'Skipped', reason: 'DependencyFailed', actions: [], error: why };
  }
  const done: string[] = [];
  try {
    await run.rollout(() => (appPlan.op === 'prune' ? prune(run, appPlan, done) : converge(run, appPlan, done)));
    run.progress(app, 'done', done.join(', ') || 'up to date');
    return { app, result: 'Succeeded', actions: done };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof RolledBackError) {
      run.progress(app, 'rolled-back', message);
      return { app, result: 'RolledBack', reason: 'RolledBack', actions: done, error: message };
    }
    run.progress(app, 'failed', message);
    return { app, result: 'Failed', reason: reasonOfError(err), actions: done, error: message };
  }
}

/** An app that left the repo: out of the proxy first, then drained, then stopped and removed. */
async function prune(run: ApplyRun, appPlan: AppPlan, done: string[]): Promise<void> {
  const { runtime, clock } = run.deps;
  const hadRoute = run.stageRoute(appPlan.app, undefined);
  if (hadRoute && (await run.syncProxy(appPlan.app))) {
    done.push('route removed');
    await clock.sleep(PRUNE_DRAIN_MS);
  }
  for (const c of appPlan.replicas.prune) {
    run.progress(appPlan.app, 'remove', `removing ${c.name}`);
    await runtime.stop(c.id, c.graceSeconds);
    await runtime.remove(c.id);
  }
  done.push(`removed ${appPlan.replicas.prune.length}`);
}

/**
 * Brings one app from whatever state it is in (including a half-finished earlier apply) to its
 * desired state. A failure that is not a health gate is undone like one (new replicas removed, the
 * previous ones serving), so a failed app never leaves unrouted containers behind.
 */
async function converge(run: ApplyRun, appPlan: AppPlan, done: string[]): Promise<void> {
  const target = appPlan.desired!;
  const ctx = new RolloutContext(run, appPlan, target);
  try {
    await ctx.prepare();
    if (ctx.old.length === 0) await ctx.scaleInPlace();
    else {
      await STRATEGIES[target.strategy.type].replace(ctx);
      await ctx.dropExtras();
    }
    await ctx.finish();
  } catch (err) {
    if (err instanceof RolledBackError) throw err;
    run.progress(appPlan.app, 'remove', 'step failed: removing the new replicas, previous ones keep serving');
    const leftovers = await ctx.abandon();
    if (leftovers.length && err instanceof Error) err.message += ` (undo incomplete: ${leftovers.join('; ')})`;
    throw err;
  } finally {
    done.push(...ctx.done);
  }
}
