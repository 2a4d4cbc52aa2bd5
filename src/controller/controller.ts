import type { Logger } from 'pino';
import { applyPlan } from '../apply/apply.js';
import type { AppOutcome, ReconcileResult } from '../apply/types.js';
import type { Clock } from '../util/clock.js';
import { observe } from '../runtime/observe.js';
import type { Health, LiveState, ProxyDriver, RuntimeDriver } from '../runtime/types.js';
import { plan } from '../plan/plan.js';
import type { Plan } from '../plan/types.js';
import { DocCache } from '../render/doc-cache.js';
import { formatProblem } from '../render/problems.js';
import { envBranch, renderEnvironment } from '../render/render.js';
import type { SecretSource } from '../render/secrets.js';
import type { DesiredState } from '../render/types.js';
import { worstHealth, type AppStatus, type EnvStatus, type HistoryStore, type Trigger } from '../report/history.js';
import type { Metrics } from '../report/metrics.js';
import type { ConfigSource } from '../source/open.js';
import { formatRevision, revisionKey, type Revision } from '../source/types.js';

/** Reports a reconcile's outcome on its commit (git notes, forge status APIs). */
export interface StatusReporter {
  report(sha: string, context: string, state: 'pending' | 'success' | 'failure', description: string): Promise<void>;
}

export interface ControllerDeps {
  env: string;
  source: ConfigSource;
  runtime: RuntimeDriver;
  proxy: ProxyDriver;
  history: HistoryStore;
  metrics: Metrics;
  log: Logger;
  clock: Clock;
  secrets: SecretSource;
  prune?: boolean;
  reporters?: StatusReporter[];
  /** Retry after a failure: base delay, doubled per consecutive failure, capped. */
  backoff?: { baseMs: number; maxMs: number };
}

/**
 * The reconcile loop of one environment. Triggers coalesce: while a reconcile runs, any number of
 * triggers become one follow-up, which reconciles the newest revision. One reconcile at a time.
 */
export class Controller {
  readonly deps: ControllerDeps;
  status: EnvStatus;
  lastPlan?: Plan;
  lastDesired?: DesiredState;
  ready = false;
  reconciles = 0;
  readonly #cache = new DocCache();
  #running: Promise<void> | undefined;
  #pending: Trigger | undefined;
  #lastRevision: Revision | undefined;
  /** revisionKey of the last applied revision: a different one is new, the same one with changes is drift. */
  #lastAppliedKey: string | undefined;
  #lastFailedRenderKey: string | undefined;
  #lastDriftReport: string | undefined;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(deps: ControllerDeps) {
    this.deps = deps;
    this.status = { env: deps.env, syncStatus: 'Unknown', health: 'Progressing', apps: [], updatedAt: new Date(deps.clock.now()).toISOString() };
  }

  /** Restores status from the state dir, so a restarted controller knows what it applied. */
  async init(): Promise<void> {
    const saved = await this.deps.history.readStatus();
    if (saved) {
      this.status = saved;
      this.#lastAppliedKey = /sha1:([0-9a-f]{40})/.exec(saved.lastAppliedRevision ?? '')?.[1];
    }
  }

  /** Asks for a reconcile. Returns whether it was folded into one already running or queued. */
  trigger(trigger: Trigger): { coalesced: boolean } {
    this.deps.metrics.triggers.inc({ env: this.deps.env, trigger });
    if (this.#stopped) return { coalesced: true };
    if (this.#running) {
      this.#pending = trigger;
      return { coalesced: true };
    }
    this.#running = this.#loop(trigger).finally(() => (this.#running = undefined));
    return { coalesced: false };
  }

  /** Resolves when no reconcile is running or queued. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    await this.idle();
  }

  async #loop(first: Trigger): Promise<void> {
    let next: Trigger | undefined = first;
    while (next && !this.#stopped) {
      this.#pending = undefined;
      try {
        await this.#reconcile(next);
      } catch (err) {
        this.deps.log.error({ err }, 'reconcile crashed');
      }
      next = this.#pending;
    }
  }

  #scheduleRetry(): void {
    const { baseMs, maxMs } = this.deps.backoff ?? { baseMs: 5000, maxMs: 300_000 };
    const delay = Math.min(maxMs, baseMs * 2 ** Math.min(this.#failures - 1, 16));
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.trigger('retry'), delay);
    this.#retryTimer.unref();
    this.deps.log.warn({ env: this.deps.env, retryInMs: delay, failures: this.#failures }, 'reconcile failed; retrying with backoff');
  }

  /** The branch this environment follows, per berth.yaml of the last revision read (or HEAD at first). */
  async #branch(): Promise<string> {
    const fromLast = this.#lastRevision && envBranch(this.#lastRevision, this.deps.env, this.#cache);
    if (fromLast) return fromLast;
    if (this.deps.source.kind === 'directory') return 'worktree';
    const head = await this.deps.source.read('HEAD').catch(async () => {
      await this.deps.source.fetch('HEAD');
      return this.deps.source.read('HEAD');
    });
    const branch = envBranch(head, this.deps.env, this.#cache);
    if (!branch) throw new Error(`environment "${this.deps.env}" is not defined in berth.yaml on the default branch`);
    return branch;
  }

  async #fetch(): Promise<Revision> {
    const { source, metrics, env } = this.deps;
    const end = metrics.gitFetchDuration.startTimer({ env });
    try {
      const branch = await this.#branch();
      if (source.kind === 'directory') return await source.read();
      await source.fetch(branch);
      const revision = await source.read(branch);
      return { ...revision, ref: { ...revision.ref, branch } };
    } finally {
      end();
    }
  }

  async #reconcile(trigger: Trigger): Promise<void> {
    const { env, log, clock, metrics } = this.deps;
    const started = clock.now();
    let revision: Revision;
    try {
      revision = await this.#fetch();
      this.#lastRevision = revision;
    } catch (err) {
      // Git unreachable: keep what runs, report Unknown, retry with backoff. Never tear down.
      this.#failures++;
      log.error({ env, err: (err as Error).message }, 'cannot fetch the config repo; keeping the running state');
      await this.#setStatus({ syncStatus: 'Unknown', message: `cannot fetch the config repo: ${(err as Error).message}` });
      this.#scheduleRetry();
      return;
    }
    const rev = formatRevision(revision.ref);
    const rlog = log.child({ env, revision: rev });
    const rendered = renderEnvironment(revision, env, { secrets: this.deps.secrets, cache: this.#cache });
    this.#cache.prune();
    if (!rendered.ok) {
      const first = rendered.problems[0]!;
      const error = `${rendered.problems.length} problem(s) in the config repo; first: ${formatProblem(first)}`;
      rlog.error({ problems: rendered.problems.slice(0, 20).map(formatProblem) }, 'render failed; nothing applied, the last good revision keeps running');
      if (revisionKey(revision) !== this.#lastFailedRenderKey) {
        this.#lastFailedRenderKey = revisionKey(revision);
        await this.#record({ revision: rev, trigger, started, result: 'Failed', apps: [], error });
        await this.#commitStatus(revision, 'failure', `not applied: ${first.file}:${first.line}: ${first.message}`.slice(0, 140));
      }
      this.status.lastAttemptedRevision = rev;
      await this.#setStatus({ message: error });
      this.ready = true;
      return;
    }
    const desired = rendered.state;
    this.lastDesired = desired;
    let live: LiveState;
    try {
      live = await observe(env, this.deps.runtime, this.deps.proxy);
    } catch (err) {
      this.#failures++;
      rlog.error({ err: (err as Error).message }, 'cannot observe live state');
      await this.#setStatus({ syncStatus: 'Unknown', message: (err as Error).message });
      this.#scheduleRetry();
      return;
    }
    const planned = plan(desired, live, { ...(this.deps.prune !== undefined && { prune: this.deps.prune }) });
    this.lastPlan = planned;
    const key = revisionKey(revision);
    const newRevision = key !== this.#lastAppliedKey;
    if (planned.empty) {
      this.#failures = 0;
      if (newRevision) {
        await this.#record({ revision: rev, trigger, started, result: 'Succeeded', apps: [] });
        await this.#commitStatus(revision, 'success', 'in sync: nothing to change');
        this.#lastAppliedKey = key;
        this.status.lastAppliedRevision = rev;
      }
      this.#lastDriftReport = undefined;
      this.status.lastAttemptedRevision = rev;
      await this.#refreshStatus(desired, live, planned, new Map());
      this.ready = true;
      return;
    }
    if (!newRevision && !desired.settings.selfHeal) {
      // Drift on the applied revision: report, do not touch (selfHeal is off).
      const drifted = planned.apps.filter((a) => a.actions.length).map((a) => a.app);
      await this.#refreshStatus(desired, live, planned, new Map());
      const report = `drift: ${drifted.join(', ')} differ${drifted.length === 1 ? 's' : ''} from the repo`;
      if (report !== this.#lastDriftReport) {
        // Reported once per change of what drifted, not on every poll.
        this.#lastDriftReport = report;
        rlog.warn({ apps: drifted }, 'drift detected; selfHeal is off, reporting only');
        await this.#commitStatus(revision, 'failure', report, `berth/${env}/drift`);
      }
      this.ready = true;
      return;
    }
    this.status.lastAttemptedRevision = rev;
    await this.#commitStatus(revision, 'pending', `applying ${planned.apps.filter((a) => a.actions.length).length} app(s)`);
    rlog.info({ trigger, counts: planned.counts }, 'applying');
    this.status.syncStatus = 'OutOfSync';
    const report = await applyPlan(planned, desired, live, {
      runtime: this.deps.runtime,
      proxy: this.deps.proxy,
      clock,
      onEvent: (e) => rlog.info({ app: e.app, phase: e.phase, detail: e.message }, 'apply progress'),
    });
    for (const a of planned.apps) for (const act of a.actions) metrics.applyActions.inc({ env, action: act.kind });
    await this.#record({ revision: rev, trigger, started, result: report.result, apps: report.apps.filter((a) => a.result !== 'Unchanged') });
    const changed = report.apps.filter((a) => a.result !== 'Unchanged');
    const rolled = changed.filter((a) => a.result === 'RolledBack').length;
    const description = `applied ${changed.filter((a) => a.result === 'Succeeded').length} app(s)${rolled ? `, ${rolled} rolled back` : ''}${report.result === 'Failed' ? ', failed' : ''}`;
    await this.#commitStatus(revision, report.result === 'Succeeded' ? 'success' : 'failure', description);
    if (report.result === 'Succeeded') {
      this.#failures = 0;
      this.#lastAppliedKey = key;
      this.#lastDriftReport = undefined;
      this.status.lastAppliedRevision = rev;
    } else if (report.result === 'Failed') {
      this.#failures++;
      this.#scheduleRetry();
    }
    const after = await observe(env, this.deps.runtime, this.deps.proxy).catch(() => live);
    await this.#refreshStatus(desired, after, plan(desired, after), new Map(report.apps.map((a) => [a.app, a])));
    this.ready = true;
  }

  async #record(r: { revision: string; trigger: Trigger; started: number; result: ReconcileResult; apps: AppOutcome[]; error?: string }): Promise<void> {
    const { env, clock, metrics, history } = this.deps;
    const finished = clock.now();
    const durationMs = finished - r.started;
    this.reconciles++;
    metrics.reconcileDuration.observe({ env, result: r.result }, durationMs / 1000);
    metrics.reconcileTotal.inc({ env, result: r.result });
    await history.append({ env, revision: r.revision, trigger: r.trigger, startedAt: new Date(r.started).toISOString(), finishedAt: new Date(finished).toISOString(), durationMs, result: r.result, apps: r.apps.map((a) => ({ app: a.app, result: a.result, actions: a.actions, ...(a.error && { error: a.error }) })), ...(r.error && { error: r.error }) });
    this.status.lastReconcile = { result: r.result, finishedAt: new Date(finished).toISOString(), ...(r.error && { error: r.error }) };
    this.deps.log.info({ env, revision: r.revision, result: r.result, durationMs }, 'reconcile finished');
  }

  async #commitStatus(revision: Revision, state: 'pending' | 'success' | 'failure', description: string, context = `berth/${this.deps.env}`): Promise<void> {
    if (!revision.ref.sha) return;
    for (const reporter of this.deps.reporters ?? []) {
      await reporter.report(revision.ref.sha, context, state, description).catch((err: Error) => this.deps.log.warn({ err: err.message }, 'commit status not reported'));
    }
  }

  async #setStatus(patch: { syncStatus?: EnvStatus['syncStatus']; message?: string }): Promise<void> {
    if (patch.syncStatus) this.status.syncStatus = patch.syncStatus;
    if (patch.syncStatus === 'Unknown') this.status.apps = this.status.apps.map((a) => ({ ...a, syncStatus: 'Unknown', ...(patch.message && { message: patch.message }) }));
    this.status.updatedAt = new Date(this.deps.clock.now()).toISOString();
    await this.deps.history.writeStatus(this.status);
  }

  /** Sync and health per app from live state, the plan and the last apply's outcomes. */
  async #refreshStatus(desired: DesiredState, live: LiveState, planned: Plan, outcomes: Map<string, AppOutcome>): Promise<void> {
    const apps: AppStatus[] = [];
    for (const app of desired.apps) {
      const mine = live.containers.filter((c) => c.app === app.name && c.specHash === app.specHash && c.state === 'running');
      const outcome = outcomes.get(app.name);
      const actions = planned.apps.find((a) => a.app === app.name)?.actions ?? [];
      let health: Health = mine.length >= app.spec.replicas ? 'Healthy' : mine.length === 0 && app.spec.replicas > 0 ? 'Missing' : 'Progressing';
      if (app.spec.replicas === 0) health = 'Suspended';
      if (outcome?.result === 'RolledBack' || outcome?.result === 'Failed') health = 'Degraded';
      apps.push({ app: app.name, syncStatus: actions.length ? 'OutOfSync' : 'Synced', health, revision: formatRevision(desired.revision), ...(outcome?.error && { message: outcome.error }) });
    }
    this.deps.metrics.appInfo.reset();
    for (const a of apps) this.deps.metrics.appInfo.set({ env: desired.environment, app: a.app, sync_status: a.syncStatus, health_status: a.health, revision: desired.revision.sha ?? 'worktree' }, 1);
    this.status.apps = apps;
    this.status.health = worstHealth(apps.map((a) => a.health));
    this.status.syncStatus = planned.empty ? 'Synced' : 'OutOfSync';
    this.status.updatedAt = new Date(this.deps.clock.now()).toISOString();
    await this.deps.history.writeStatus(this.status);
  }
}
