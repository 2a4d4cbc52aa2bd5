import { applyPlan } from '../apply/apply.js';
import type { ApplyReport, RolloutHooks } from '../apply/types.js';
import { BerthError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { FailedReplica, MonitoredApp } from '../health/monitor.js';
import type { AppOutcome, Trigger } from '../events/types.js';
import { countActions, plan, type HeldVersion } from '../plan/plan.js';
import { driftFindings } from '../plan/drift.js';
import type { AppPlan, Plan } from '../plan/types.js';
import type { DocCache } from '../render/doc-cache.js';
import { formatProblem, type Problem } from '../render/problems.js';
import { desiredState, pruneFor } from '../render/retire.js';
import type { SecretSource } from '../render/secrets.js';
import { DEFAULT_HEAL_LIMIT, type DesiredState } from '../render/types.js';
import type { HistoryStore } from '../report/history.js';
import { observe } from '../runtime/observe.js';
import type { LiveContainer, LiveState, ProxyDriver, RuntimeDriver } from '../runtime/types.js';
import { formatRevision, revisionKey, type Revision } from '../source/types.js';
import type { StatusBoard } from '../status/board.js';
import { appStatuses, envStatus } from '../status/compute.js';
import { reasonOfError, type HealthStatus, type ReconcileResult } from '../status/vocabulary.js';
import type { Clock } from '../util/clock.js';
import { countHeals, forgetHeals, heldByLimit, reachLimits, tidyHeals } from './heal-guard.js';
import type { ReconcileMemory } from './memory.js';
import { hookContext, pendingScaling, scalingApplied, withScaling, type ReconcilePlugins } from './plugins.js';
import { checkSavedPlan } from './saved-plan.js';

/** Health per app, from probes: the health monitor in the controller, one probe round in one-shot commands. */
export interface HealthSource {
  update(apps: MonitoredApp[], containers: LiveContainer[]): void;
  checkAll(): Promise<void>;
  healthOf(app: string): HealthStatus;
  /** Running replicas that failed their health check `failureThreshold` times in a row: each plan replaces them. */
  failedReplicas?(): FailedReplica[];
}

/** Everything one reconcile of one environment needs: every side effect comes in here. */
export interface ReconcileDeps {
  env: string;
  /** The source stage: the revision to reconcile (fetching first, for a remote). */
  readRevision(): Promise<Revision>;
  secrets: SecretSource;
  cache?: DocCache;
  runtime: RuntimeDriver;
  proxy: ProxyDriver;
  clock: Clock;
  bus: EventBus;
  history: HistoryStore;
  memory: ReconcileMemory;
  board: StatusBoard;
  health: HealthSource;
  /** `--prune`/`--no-prune` when the user gave one: it overrides the repo's setting. */
  prune?: boolean;
  hooks?: RolloutHooks[];
  /** Apps rolled out at once (`--parallelism`). */
  parallelism?: number;
  /** `--prune-environment`: retire `env`, which berth.yaml no longer defines (everything of it is removed). */
  pruneEnvironment?: boolean;
  /** Plugins: their manifests for render, and (under the controller) the host that runs them. */
  plugins?: ReconcilePlugins;
}

export interface ReconcileRequest {
  trigger: Trigger;
  /** A person asked: roll out even versions that rolled back before, and heal drift without selfHeal. */
  force?: boolean;
  /** Apply this saved plan instead of a fresh one (refused when live state or the revision moved). */
  savedPlan?: Plan;
  /** Called with the plan (and the desired state it was made for) before anything is applied (the CLI prints it). */
  onPlan?(plan: Plan, desired: DesiredState): void;
}

/** The stages of one reconcile, as a crash names them (`observe failed: TypeError: …`). */
export type ReconcileStage = 'source' | 'render' | 'observe' | 'plan' | 'apply' | 'record';

export type ReconcileOutcome =
  | { kind: 'source-failed' | 'observe-failed'; error: Error; retry: true }
  /** A stage threw an error berth does not classify: recorded as a Failed reconcile (reason InternalError) and retried. */
  | { kind: 'crashed'; stage: ReconcileStage; error: Error; message: string; revision?: Revision; retry: true }
  | { kind: 'render-failed'; problems: Problem[]; revision: Revision; retry: false }
  /** A lifecycle hook of a `required: true` plugin vetoed the apply: nothing changed; asked again at the retry. */
  | { kind: 'vetoed'; plugin: string; reason: string; plan: Plan; desired: DesiredState; retry: true }
  | { kind: 'in-sync' | 'drift' | 'held'; plan: Plan; desired: DesiredState; retry: false }
  | { kind: 'applied'; plan: Plan; desired: DesiredState; report: ApplyReport; retry: boolean };

interface Run {
  deps: ReconcileDeps;
  request: ReconcileRequest;
  started: number;
  /** The stage running now: a crash is reported as its failure. */
  stage: ReconcileStage;
  /** The revision, once read. */
  revision?: Revision;
}

/**
 * One reconcile: source → render → observe → plan → apply → record. The controller and `berth apply`
 * both call this; what happened is told through events (history, metrics, logs, statuses listen).
 * It does not throw: an error no stage expects ends as a Failed reconcile like any other (see
 * `crashed`). Only a saved plan that no longer matches is thrown back (nothing was tried).
 */
export async function reconcile(deps: ReconcileDeps, request: ReconcileRequest): Promise<ReconcileOutcome> {
  const run: Run = { deps, request, started: deps.clock.now(), stage: 'source' };
  try {
    return await stages(run);
  } catch (err) {
    if (err instanceof BerthError && err.code === 'E_PLAN_STALE') throw err;
    return crashed(run, err);
  }
}

async function stages(run: Run): Promise<ReconcileOutcome> {
  const { deps, request } = run;
  let revision: Revision;
  try {
    revision = await deps.readRevision();
  } catch (err) {
    return unavailable(run, 'source-failed', err, `cannot fetch the config repo: ${(err as Error).message}`);
  }
  run.revision = revision;
  run.stage = 'render';
  const rendered = desiredState(revision, deps.env, { secrets: deps.secrets, ...(deps.cache && { cache: deps.cache }), ...(deps.pruneEnvironment && { pruneEnvironment: true }), ...(deps.plugins && { plugins: deps.plugins.manifests, pluginProblems: 'contain' }) });
  deps.cache?.prune();
  if (!rendered.ok) return renderFailed(run, revision, rendered.problems);
  // Plugins follow the revision's Plugin documents (a changed one is reloaded) before anything is applied.
  await deps.plugins?.sync?.(rendered.state.plugins);
  const transformed = deps.plugins?.transform ? await deps.plugins.transform(rendered.state) : { state: rendered.state, warnings: [] };
  for (const warning of transformed.warnings) deps.bus.emit('reconcile.error', { env: deps.env, revision: formatRevision(revision.ref), trigger: request.trigger, reason: 'PluginFailed', message: warning });
  const desired = withScaling(transformed.state, deps.plugins?.scaled?.());
  run.stage = 'observe';
  let live: LiveState;
  try {
    live = await observeSettled(deps);
  } catch (err) {
    // The drivers sort what they know (Docker unreachable, …) into BerthErrors: keep running, retry.
    // Anything else is no known failure of the runtime: a crash, recorded.
    if (!(err instanceof BerthError)) throw err;
    return unavailable(run, 'observe-failed', err, err.message);
  }
  run.stage = 'plan';
  const newRevision = desired.revisionKey !== (deps.memory.lastReconciledKey ?? deps.memory.lastAppliedKey);
  // Nothing new from the repo and nobody asked: whatever this reconcile applies is a heal.
  const healing = !newRevision && !request.force && !request.savedPlan;
  tidyHeals(deps.memory, desired.apps, healLimitOf(desired), deps.clock.now());
  // A person asked: every app may be healed again, from a count of zero.
  if (request.force) forgetHeals(deps.memory, desired.apps.map((a) => a.name));
  let planned = request.savedPlan ? checkSavedPlan(request.savedPlan, desired, live) : plan(desired, live, planOptions(deps, request, desired));
  if (healing) planned = await guardHeals(run, desired, live, planned);
  request.onPlan?.(planned, desired);
  const runnable = planned.apps.filter((a) => a.actions.length > 0 && !a.held);
  if (planned.empty || (runnable.length === 0 && !planned.proxy.rewrite && !planned.proxy.remove)) return quiet(run, desired, planned, live, newRevision);
  // Removing a retired environment's proxy config, all that is left of it, is its retirement, not a heal.
  if (healing && !desired.settings.selfHeal && (runnable.length > 0 || planned.proxy.rewrite)) {
    // Drift is only reported; a replica failing its health check is replaced all the same (a liveness probe, not drift).
    // So is a scaler's decision: the replicas it set are the desired state, not drift.
    const pending = pendingScaling(deps.memory);
    const act = new Set(runnable.filter((a) => isSick(a) || isScaling(a, pending)).map((a) => a.app));
    if (act.size === 0) return drift(run, desired, planned, live);
    await reportDrift(run, planned, driftedApps(planned).filter((a) => !act.has(a)), planned.proxy.rewrite);
    return gatedApply(run, desired, only(planned, act), live, { newRevision, healing });
  }
  return gatedApply(run, desired, planned, live, { newRevision, healing });
}

/** The apply, once lifecycle hooks agree (preApply); postApply hears the result without holding the reconcile up. */
async function gatedApply(run: Run, desired: DesiredState, planned: Plan, live: LiveState, mode: { newRevision: boolean; healing: boolean }): Promise<ReconcileOutcome> {
  const { deps, request } = run;
  const ctx = hookContext(deps.env, planned.revision, request.trigger, planned);
  const gate = await deps.plugins?.preApply?.(ctx);
  for (const warning of gate?.warnings ?? []) deps.bus.emit('reconcile.error', { env: deps.env, revision: planned.revision, trigger: request.trigger, reason: 'PluginFailed', message: warning });
  if (gate?.veto) return vetoed(run, desired, planned, live, gate.veto);
  const outcome = await apply(run, desired, planned, live, mode);
  if (deps.plugins?.postApply && outcome.kind === 'applied') void deps.plugins.postApply({ ...ctx, result: outcome.report.result });
  return outcome;
}

/** A required plugin said no: nothing is applied; recorded once per revision, retried with backoff (the hook is asked again). */
async function vetoed(run: Run, desired: DesiredState, planned: Plan, live: LiveState, veto: { plugin: string; reason: string }): Promise<ReconcileOutcome> {
  const { deps } = run;
  run.stage = 'record';
  const rev = planned.revision;
  const error = `apply vetoed by plugin ${veto.plugin}: ${veto.reason}`;
  const noop = deps.memory.lastVetoedKey === desired.revisionKey;
  deps.memory.lastVetoedKey = desired.revisionKey;
  deps.memory.lastAttemptedRevision = rev;
  finish(run, rev, { result: 'Failed', reason: 'Vetoed', noop, apps: [], error, reloads: 0 });
  await publishStatus(run, desired, planned, live, new Map());
  deps.board.update({ message: error, lastAttemptedRevision: rev }, new Date(deps.clock.now()));
  await deps.history.writeMemory(deps.memory);
  return { kind: 'vetoed', plugin: veto.plugin, reason: veto.reason, plan: planned, desired, retry: true };
}

/** How long to wait for Docker to finish removing containers before planning anyway. */
const REMOVING_WAIT_MS = 3000;

/**
 * Live state once no container is half-removed: a container Docker is removing (a `docker rm -f`
 * seen between its `die` and `destroy` events on a busy host) still holds its name, so a plan made
 * now would fail to replace it. Waits up to 3 s, then plans with what it sees.
 */
async function observeSettled(deps: ReconcileDeps): Promise<LiveState> {
  const deadline = deps.clock.now() + REMOVING_WAIT_MS;
  for (;;) {
    const live = await observe(deps.env, deps.runtime, deps.proxy);
    if (!live.containers.some((c) => c.state === 'removing') || deps.clock.now() >= deadline) return live;
    await deps.clock.sleep(100);
  }
}

function healLimitOf(desired: DesiredState): NonNullable<DesiredState['settings']['healLimit']> {
  return desired.settings.healLimit ?? DEFAULT_HEAL_LIMIT;
}

/** The options every plan of `desired` is made with: held versions (unless forced), prune, replicas failing health checks. */
export function planOptions(deps: Pick<ReconcileDeps, 'memory' | 'prune' | 'clock'> & { health?: Pick<HealthSource, 'failedReplicas'> }, request: Pick<ReconcileRequest, 'force'>, desired: DesiredState): Parameters<typeof plan>[2] {
  const held = new Map<string, HeldVersion>();
  if (!request.force) {
    for (const [app, h] of Object.entries(deps.memory.held)) held.set(app, h);
    for (const [app, h] of heldByLimit(deps.memory, desired.apps)) if (!held.has(app)) held.set(app, h);
  }
  const unhealthy = new Map((deps.health?.failedReplicas?.() ?? []).map((r) => [r.containerId, `failed its health check ${r.failures} time${r.failures === 1 ? '' : 's'} in a row: ${r.message}`]));
  const prune = pruneFor(desired, deps.prune);
  return { ...(prune !== undefined && { prune }), held, now: new Date(deps.clock.now()), ...(unhealthy.size && { unhealthy }) };
}

/** An app whose only change is to the replica count a scaler set. */
function isScaling(a: AppPlan, pending: ReadonlySet<string>): boolean {
  return pending.has(a.app) && a.actions.every((x) => x.kind === 'scale-up' || x.kind === 'scale-down');
}

/** The apps of `planned` whose only change is to the replica count a scaler set and berth has not applied yet. */
function scalingApps(planned: Plan, pending: ReadonlySet<string>): ReadonlySet<string> {
  return new Set(planned.apps.filter((a) => a.actions.length > 0 && isScaling(a, pending)).map((a) => a.app));
}

/** An app with a replica to replace because it fails its health check. */
function isSick(a: AppPlan): boolean {
  return a.actions.some((x) => x.cause === 'unhealthy');
}

/** Apps whose live state drifted from the repo (not counting held versions, or replicas that merely fail their health check). */
function driftedApps(planned: Plan): string[] {
  return driftFindings(planned, { proxy: false }).apps.map((a) => a.app);
}

/** Whether a plan made after an apply still shows drift (the apply repaired only part of it, or it came back at once). */
function stillDrifted(fresh: Plan): boolean {
  return driftedApps(fresh).length > 0 || fresh.proxy.rewrite !== undefined;
}

/** Room in the forges' 140-character description for what the drift status adds (`; healing`, `healed: `). */
const DRIFT_SUMMARY_MAX = 130;

/** The plan narrowed to `apps`: everything else is left as it is (no drift repaired, nothing dropped). */
function only(planned: Plan, apps: ReadonlySet<string>): Plan {
  const scoped = planned.apps.map((a): AppPlan => {
    if (apps.has(a.app)) return a;
    const { held: _held, ...rest } = a;
    return { ...rest, op: 'none', actions: [] };
  });
  return { ...planned, apps: scoped, proxy: { routes: planned.proxy.routes, drop: [] }, counts: countActions(scoped), empty: false };
}

/**
 * The flapping guard: apps this reconcile would heal that were healed `healLimit.heals` times within
 * the window are not healed again; they are reported once and held (HealLimitReached) from now on.
 */
async function guardHeals(run: Run, desired: DesiredState, live: LiveState, planned: Plan): Promise<Plan> {
  const { deps, request } = run;
  // A scaler's change is no heal: it never counts toward the flapping guard.
  const pending = pendingScaling(deps.memory);
  const healed = planned.apps.filter((a) => a.actions.length > 0 && !a.held && !isScaling(a, pending) && (desired.settings.selfHeal || isSick(a)));
  const reached = reachLimits(deps.memory, healed, desired.apps, healLimitOf(desired), deps.clock.now(), planned.revision);
  if (reached.length === 0) return planned;
  for (const r of reached) {
    const description = `${r.app} ${r.message}`;
    deps.bus.emit('drift.detected', { env: deps.env, revision: planned.revision, apps: [r.app], selfHeal: false, reason: 'HealLimitReached', description });
    deps.memory.drift = { revision: planned.revision, description };
  }
  await deps.history.writeMemory(deps.memory);
  return plan(desired, live, planOptions(deps, request, desired));
}

/** Git or the runtime cannot be reached: keep everything running, report Unknown, retry. */
async function unavailable(run: Run, kind: 'source-failed' | 'observe-failed', err: unknown, message: string): Promise<ReconcileOutcome> {
  const { deps, request } = run;
  const reason = kind === 'source-failed' ? 'SourceUnavailable' : reasonOfError(err);
  deps.bus.emit('reconcile.error', { env: deps.env, trigger: request.trigger, reason, message });
  boardUnknown(deps, message, { appMessage: true });
  return { kind, error: err instanceof Error ? err : new Error(String(err)), retry: true };
}

/**
 * A stage threw what it does not expect (a bug, a driver failing in an unforeseen way, an unwritable
 * state dir): recorded like any failed reconcile (history, commit status, status board: Unknown, with
 * the stage and error) and retried with backoff. Whatever it was doing may be half done; the next
 * reconcile plans from live state again.
 */
async function crashed(run: Run, err: unknown): Promise<ReconcileOutcome> {
  const { deps } = run;
  const error = err instanceof Error ? err : new Error(String(err));
  const message = `${run.stage} failed: ${error.name}: ${error.message}`;
  const rev = run.revision ? formatRevision(run.revision.ref) : undefined;
  if (rev) deps.memory.lastAttemptedRevision = rev;
  finish(run, rev ?? '', { result: 'Failed', reason: 'InternalError', noop: false, apps: [], error: message, reloads: 0 });
  boardUnknown(deps, message, { ...(rev && { lastAttemptedRevision: rev }) });
  // The memory may be what failed to be written: the crash is reported all the same.
  await deps.history.writeMemory(deps.memory).catch(() => {});
  return { kind: 'crashed', stage: run.stage, error, message, ...(run.revision && { revision: run.revision }), retry: true };
}

/** The status board when berth cannot tell: the environment and every app Unknown (`appMessage`: each app shows the message too). */
function boardUnknown(deps: ReconcileDeps, message: string, o: { appMessage?: boolean; lastAttemptedRevision?: string }): void {
  const apps = deps.board.current.apps.map((a) => ({ ...a, syncStatus: 'Unknown' as const, ...(o.appMessage && { message }) }));
  deps.board.update({ syncStatus: 'Unknown', message, ...(o.lastAttemptedRevision !== undefined && { lastAttemptedRevision: o.lastAttemptedRevision }), apps }, new Date(deps.clock.now()));
}

/** A revision that does not render: recorded once (not per poll); nothing is applied. */
async function renderFailed(run: Run, revision: Revision, problems: Problem[]): Promise<ReconcileOutcome> {
  const { deps } = run;
  run.stage = 'record';
  const rev = formatRevision(revision.ref);
  const error = `${problems.length} problem(s) in the config repo; first: ${formatProblem(problems[0]!)}`;
  const key = revisionKey(revision);
  const noop = key === deps.memory.lastFailedRenderKey;
  deps.memory.lastFailedRenderKey = key;
  deps.memory.lastAttemptedRevision = rev;
  finish(run, rev, { result: 'Failed', reason: 'RenderFailed', noop, apps: [], error, reloads: 0 });
  deps.board.update({ message: error, lastAttemptedRevision: rev }, new Date(deps.clock.now()));
  await deps.history.writeMemory(deps.memory);
  return { kind: 'render-failed', problems, revision, retry: false };
}

/** Nothing to apply: in sync (recorded once for a new revision), or every change held after a rollback. */
async function quiet(run: Run, desired: DesiredState, planned: Plan, live: LiveState, newRevision: boolean): Promise<ReconcileOutcome> {
  const { deps } = run;
  run.stage = 'record';
  const rev = planned.revision;
  const recordIt = planned.empty && newRevision;
  if (planned.empty) {
    scalingApplied(deps.memory, desired, desired.apps.map((a) => a.name));
    deps.memory.lastAppliedKey = desired.revisionKey;
    deps.memory.lastReconciledKey = desired.revisionKey;
    deps.memory.lastAppliedRevision = rev;
    driftOver(run, rev);
  }
  deps.memory.lastAttemptedRevision = rev;
  const heldReason = planned.apps.find((a) => a.held && a.actions.length)?.held?.reason ?? 'RolledBack';
  finish(run, rev, { result: planned.empty ? 'Succeeded' : 'RolledBack', noop: !recordIt, apps: [], reloads: 0, ...(!planned.empty && { reason: heldReason }) });
  await publishStatus(run, desired, planned, live, new Map());
  await deps.history.writeMemory(deps.memory);
  return { kind: planned.empty ? 'in-sync' : 'held', plan: planned, desired, retry: false };
}

/** Live state moved away from the applied revision and selfHeal is off: report (once per change), touch nothing. */
async function drift(run: Run, desired: DesiredState, planned: Plan, live: LiveState): Promise<ReconcileOutcome> {
  run.stage = 'record';
  await reportDrift(run, planned, driftedApps(planned), planned.proxy.rewrite);
  finish(run, planned.revision, { result: 'Succeeded', noop: true, apps: [], reloads: 0 });
  await publishStatus(run, desired, planned, live, new Map());
  return { kind: 'drift', plan: planned, desired, retry: false };
}

/** What drifted, in one line for logs and commit statuses: `web: 1 of 3 replicas missing; nginx file edited`. */
function describeDrift(planned: Plan, apps: readonly string[], proxy: boolean): string {
  return driftFindings(planned, { only: new Set(apps), proxy, maxSummary: DRIFT_SUMMARY_MAX }).summary;
}

/** Reports drift that is left alone, once per change of what drifted. */
async function reportDrift(run: Run, planned: Plan, apps: readonly string[], proxy: string | undefined): Promise<void> {
  const { deps } = run;
  if (apps.length === 0 && !proxy) return;
  const description = describeDrift(planned, apps, proxy !== undefined);
  if (description === deps.memory.drift?.description && planned.revision === deps.memory.drift.revision) return;
  deps.memory.drift = { revision: planned.revision, description };
  deps.bus.emit('drift.detected', { env: deps.env, revision: planned.revision, apps: [...apps], selfHeal: false, reason: 'Drift', description, ...(proxy && { proxy }) });
  await deps.history.writeMemory(deps.memory);
}

/**
 * Drift reported earlier is over: live state matches the revision again (`healed` by this reconcile,
 * or put back by hand), or a newer revision was applied over the one it was reported on.
 */
function driftOver(run: Run, revision: string, healed?: { apps: string[]; proxy?: string; description: string }): void {
  const { deps } = run;
  const reported = deps.memory.drift;
  deps.memory.drift = undefined;
  if (healed) deps.bus.emit('drift.healed', { env: deps.env, revision, apps: healed.apps, ...(healed.proxy && { proxy: healed.proxy }), description: healed.description });
  if (reported && (!healed || reported.revision !== revision)) {
    const why = reported.revision === revision ? 'live state matches the revision again' : `${revision} was applied since`;
    deps.bus.emit('drift.resolved', { env: deps.env, revision: reported.revision, description: `resolved: ${why} (was: ${reported.description})` });
  }
}

/**
 * Rolls the plan out and remembers what rolled back, so the same version is not tried on every
 * poll. A heal (`healing`: same revision, not forced) is counted by the flapping guard instead: the
 * version it restores is the one that ran, so it is not held when the replacement fails its gate.
 */
async function apply(run: Run, desired: DesiredState, planned: Plan, live: LiveState, mode: { newRevision: boolean; healing: boolean }): Promise<ReconcileOutcome> {
  const { deps, request } = run;
  const { env, bus, memory } = deps;
  run.stage = 'apply';
  const rev = planned.revision;
  // A scaler's decision is applied here too (trigger `scaler`): it is neither drift nor a heal.
  const scaling = scalingApps(planned, pendingScaling(deps.memory));
  const drifted = mode.newRevision ? [] : driftedApps(planned).filter((a) => !scaling.has(a));
  const proxyDrift = mode.newRevision ? undefined : planned.proxy.rewrite;
  const driftDescription = drifted.length || proxyDrift ? describeDrift(planned, drifted, proxyDrift !== undefined) : undefined;
  if (driftDescription) {
    bus.emit('drift.detected', { env, revision: rev, apps: drifted, selfHeal: true, reason: 'Drift', description: driftDescription, ...(proxyDrift && { proxy: proxyDrift }) });
    // Until the heal succeeds, the revision's commit carries the drift.
    memory.drift = { revision: rev, description: driftDescription };
  }
  memory.lastAttemptedRevision = rev;
  bus.emit('reconcile.started', { env, revision: rev, trigger: request.trigger, apps: planned.apps.filter((a) => a.actions.length).length, counts: planned.counts });
  const report = await applyPlan(planned, {
    runtime: deps.runtime,
    proxy: deps.proxy,
    clock: deps.clock,
    ...(deps.hooks && { hooks: deps.hooks }),
    ...(deps.parallelism !== undefined && { parallelism: deps.parallelism }),
    onProgress: (p) => bus.emit('app.progress', { env, ...p }),
    onResult: (o) => bus.emit('app.result', { env, revision: rev, ...o }),
    onHookError: (hook, app, err) => bus.emit('app.progress', { env, app, phase: 'failed', message: `${hook} hook failed: ${(err as Error).message}` }),
  });
  run.stage = 'record';
  const ran = report.apps.filter((a) => a.result !== 'Unchanged' && a.result !== 'Skipped').map((a) => a.app);
  if (mode.healing) countHeals(memory, ran.filter((a) => !scaling.has(a)), desired.apps, deps.clock.now());
  else remember(memory, planned, report.apps);
  // A scaler's decision that ran is applied: from now on a replica missing from it is drift.
  scalingApplied(memory, desired, report.apps.filter((a) => a.result === 'Succeeded' || a.result === 'Unchanged').map((a) => a.app));
  // A failed apply is retried as new; a rolled-back one is done with this revision (its versions are held).
  if (report.result !== 'Failed') memory.lastReconciledKey = desired.revisionKey;
  if (report.result === 'Succeeded') {
    memory.lastAppliedKey = desired.revisionKey;
    memory.lastAppliedRevision = rev;
  }
  const changed = report.apps.filter((a) => a.result !== 'Unchanged').map((a) => withHealReason(a, planned));
  const failed = changed.find((a) => a.result === 'Failed');
  finish(run, rev, { result: report.result, noop: false, apps: changed, reloads: report.reloads, ...(failed?.reason && { reason: failed.reason }) });
  await deps.history.writeMemory(memory);
  const after = await observe(env, deps.runtime, deps.proxy).catch(() => live);
  const fresh = plan(desired, after, planOptions(deps, { ...request, force: false }, desired));
  // Drift is over once a plan made after the apply shows none: an apply that replaced only failing
  // replicas, or drift that came back at once, leaves it reported.
  if (report.result === 'Succeeded' && !stillDrifted(fresh)) {
    driftOver(run, rev, driftDescription ? { apps: drifted, ...(proxyDrift && { proxy: proxyDrift }), description: `healed: ${driftDescription}` } : undefined);
    await deps.history.writeMemory(memory);
  }
  await publishStatus(run, desired, fresh, after, new Map(changed.filter((a) => a.error).map((a) => [a.app, a.error!])));
  return { kind: 'applied', plan: planned, desired, report, retry: report.result === 'Failed' };
}

/** The outcome with why replicas were replaced, first, when it was for failing health checks (the history shows it). */
function withHealReason(outcome: AppOutcome, planned: Plan): AppOutcome {
  const heal = planned.apps.find((a) => a.app === outcome.app)?.actions.find((x) => x.cause === 'unhealthy');
  return heal ? { ...outcome, actions: [`heal: ${heal.reason}`, ...outcome.actions] } : outcome;
}

/** Versions that rolled back are held; an app that applied its desired version is no longer held. */
function remember(memory: ReconcileMemory, planned: Plan, outcomes: AppOutcome[]): void {
  for (const o of outcomes) {
    const target = planned.apps.find((a) => a.app === o.app)?.desired;
    if (o.result === 'RolledBack' && target) memory.held[o.app] = { specHash: target.specHash, message: o.error ?? 'rolled back', revision: planned.revision };
    if (o.result === 'Succeeded') delete memory.held[o.app];
  }
}

interface Finished {
  result: ReconcileResult;
  reason?: AppOutcome['reason'];
  noop: boolean;
  apps: AppOutcome[];
  error?: string;
  reloads: number;
}

/** Announces the end of a reconcile; history, metrics, logs and statuses take it from there. */
function finish(run: Run, revision: string, f: Finished): void {
  const { deps, request, started } = run;
  const finished = deps.clock.now();
  deps.bus.emit('reconcile.finished', {
    env: deps.env,
    revision,
    trigger: request.trigger,
    result: f.result,
    ...(f.reason && { reason: f.reason }),
    noop: f.noop,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    apps: f.apps,
    ...(f.error && { error: f.error }),
    reloads: f.reloads,
  });
  if (!f.noop) deps.board.update({ lastReconcile: { result: f.result, ...(f.reason && { reason: f.reason }), finishedAt: new Date(finished).toISOString(), ...(f.error && { error: f.error }) } }, new Date(finished));
}

/** Sync from a fresh plan, health from probes (one round now), held versions from memory. */
async function publishStatus(run: Run, desired: DesiredState, planned: Plan, live: LiveState, errors: ReadonlyMap<string, string>): Promise<void> {
  const { deps } = run;
  deps.health.update(
    desired.apps.map((a) => ({ app: a.name, specHash: a.specHash, replicas: a.spec.replicas, ...(a.spec.healthCheck && { healthCheck: a.spec.healthCheck }) })),
    live.containers,
  );
  await deps.health.checkAll();
  const held = new Map(Object.entries(deps.memory.held));
  const apps = appStatuses({ plan: planned, containers: live.containers, healthOf: (app) => deps.health.healthOf(app), held, errors });
  const next = envStatus(deps.board.current, apps, planned, new Date(deps.clock.now()), { retired: desired.settings.retired === true });
  const message = desired.settings.retired && planned.empty ? 'environment retired: no container or route of it is left' : undefined;
  deps.board.update({ ...next, message, ...(deps.memory.lastAppliedRevision && { lastAppliedRevision: deps.memory.lastAppliedRevision }), ...(deps.memory.lastAttemptedRevision && { lastAttemptedRevision: deps.memory.lastAttemptedRevision }) }, new Date(deps.clock.now()));
}
