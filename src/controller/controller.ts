import type { Logger } from 'pino';
import type { RolloutHooks } from '../apply/types.js';
import type { EventBus } from '../events/bus.js';
import type { Trigger } from '../events/types.js';
import type { FailedReplica } from '../health/monitor.js';
import type { Plan } from '../plan/types.js';
import type { PluginHost } from '../plugins/host.js';
import type { PluginManifests } from '../render/plugins.js';
import { DocCache } from '../render/doc-cache.js';
import { envBranch } from '../render/render.js';
import type { SecretSource } from '../render/secrets.js';
import type { DesiredState } from '../render/types.js';
import { checkDrift, readAppliedRevision, type DriftReport } from '../reconcile/drift.js';
import { loadMemory, type ReconcileMemory } from '../reconcile/memory.js';
import { scaledOf, type ReconcilePlugins } from '../reconcile/plugins.js';
import { reconcile, type HealthSource, type ReconcileOutcome } from '../reconcile/reconcile.js';
import type { HistoryStore } from '../report/history.js';
import type { Metrics } from '../report/metrics.js';
import type { ProxyDriver, RuntimeDriver, RuntimeEvent } from '../runtime/types.js';
import type { ConfigSource } from '../source/open.js';
import { parseRevision, type Revision } from '../source/types.js';
import { StatusBoard, initialStatus } from '../status/board.js';
import { withAppHealth } from '../status/compute.js';
import type { EnvStatus } from '../status/types.js';
import { backoffDelay, type Backoff } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import { follow } from './streams.js';

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
  bus: EventBus;
  /** Probes every running replica; its verdicts are the apps' health, and a replica that fails is replaced. */
  health: HealthSource & {
    start?(): void;
    stop?(): Promise<void>;
    onReplicaFailed?(listener: (replica: FailedReplica) => void): () => void;
    probeNow?(containerId: string): Promise<void>;
  };
  /** `--no-prune`/`--prune` when given on the command line; otherwise the repo decides. */
  prune?: boolean;
  hooks?: RolloutHooks[];
  /** Apps rolled out at once (`--parallelism`). */
  parallelism?: number;
  /** Retry after a failure: base delay, doubled per consecutive failure, capped. */
  backoff?: Backoff;
  /** Wait after a runtime or proxy event before re-checking (events come in bursts: kill, die, destroy). */
  runtimeDebounceMs?: number;
  /** Reconnect delay of a lost event stream (runtime, proxy): base, doubled per failure, capped. */
  streamBackoff?: Backoff;
  /** The plugins that exist (render checks Plugin documents against them) and the host that runs them. */
  plugins?: { manifests: PluginManifests; host?: Pick<PluginHost, 'sync' | 'renderTransform' | 'preApply' | 'postApply'> };
}

/** Runtime events that may mean drift (a container killed, stopped, removed, renamed, changed or restarted by hand). */
const DRIFT_ACTIONS: ReadonlySet<string> = new Set(['die', 'destroy', 'stop', 'kill', 'oom', 'start', 'restart', 'pause', 'unpause', 'rename', 'update']);

/** Triggers that re-check live state against the revision already read: nothing in the repo changed, so Git is not asked. */
const RECHECKS: ReadonlySet<Trigger> = new Set<Trigger>(['runtime', 'proxy', 'health', 'scaler']);

/** A reconcile asked for: `fetch` reads the newest revision from the source first. */
interface Request {
  trigger: Trigger;
  force: boolean;
  fetch: boolean;
}

/** Two requests folded into one follow-up: it fetches and forces if either did, and is named after the one that fetches. */
function merge(pending: Request | undefined, next: Request): Request {
  if (!pending) return next;
  return { trigger: pending.fetch && !next.fetch ? pending.trigger : next.trigger, force: pending.force || next.force, fetch: pending.fetch || next.fetch };
}

/**
 * The reconcile loop of one environment. Triggers coalesce: while a reconcile runs, any number of
 * triggers become one follow-up, which reconciles the newest revision. One reconcile at a time.
 * Policy lives here (when to run, backoff, forcing); the reconcile itself is `reconcile()`.
 */
export class Controller {
  readonly deps: ControllerDeps;
  readonly board: StatusBoard;
  memory: ReconcileMemory = { held: {} };
  lastPlan?: Plan;
  lastDesired?: DesiredState;
  lastOutcome?: ReconcileOutcome;
  ready = false;
  readonly #cache = new DocCache();
  #running: Promise<void> | undefined;
  #pending: Request | undefined;
  /** The revision the last reconcile read: whose berth.yaml names the branch. */
  #lastRead: Revision | undefined;
  /**
   * The revision last reconciled (applied, in sync, or done with its rolled-back versions held) and its
   * desired state: what re-checks heal to and drift is measured against. Never a newer revision that
   * failed to render or to apply: self-heal only ever re-applies what was applied.
   */
  #reconciled: { revision: Revision; desired: DesiredState } | undefined;
  /** After a restart, the applied revision as read once from the repo, until a reconcile sets #reconciled. */
  #applied: Promise<Revision | undefined> | undefined;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #recheckTimers = new Map<Trigger, NodeJS.Timeout>();
  #events: AbortController | undefined;
  readonly #unsubscribe: (() => void)[] = [];
  #stopped = false;
  #suspended: { reason: string; since: string } | undefined;

  constructor(deps: ControllerDeps) {
    this.deps = deps;
    this.board = new StatusBoard(deps.bus, initialStatus(deps.env, new Date(deps.clock.now())));
  }

  get status(): EnvStatus {
    return this.board.current;
  }

  /** Restores status and memory from the state dir, so a restarted controller knows what it applied and what rolled back. */
  async init(): Promise<void> {
    const saved = await this.deps.history.readStatus();
    if (saved) this.board.update(saved, new Date(this.deps.clock.now()));
    this.memory = await loadMemory(this.deps.history);
    this.#unsubscribe.push(
      this.deps.bus.on('health.changed', (e) => {
        const next = withAppHealth(this.board.current, e.app, e.health);
        if (next) this.board.update(next, new Date(this.deps.clock.now()));
      }),
    );
    // A replica failing its health check is replaced at once, by a reconcile like any other (health-gated, guarded).
    const off = this.deps.health.onReplicaFailed?.((r) => {
      this.deps.bus.emit('health.failed', { env: this.deps.env, app: r.app, replica: r.name, containerId: r.containerId, failures: r.failures, message: r.message });
      this.trigger('health');
    });
    if (off) this.#unsubscribe.push(off);
  }

  /**
   * Starts the health monitor and follows the runtime's events and the proxy's file: drift is seen
   * in about a second, not at the next poll. A lost stream reconnects with backoff, then re-checks once.
   */
  watch(): void {
    this.deps.health.start?.();
    this.#events = new AbortController();
    const { signal } = this.#events;
    const { runtime, proxy, env, log } = this.deps;
    const common = { signal, log, sleep: (ms: number) => this.deps.clock.sleep(ms), context: { env }, ...(this.deps.streamBackoff && { backoff: this.deps.streamBackoff }) };
    if (runtime.events) {
      void follow<RuntimeEvent>({ ...common, name: 'runtime events', open: (s) => runtime.events!(env, s), onEvent: (e) => this.#onRuntimeEvent(e), onResumed: () => this.trigger('runtime') });
    }
    if (proxy.watch) {
      void follow({ ...common, name: 'proxy file', open: (s) => proxy.watch!(env, s), onEvent: () => this.#recheckSoon('proxy'), onResumed: () => this.trigger('proxy') });
    }
  }

  #onRuntimeEvent(e: RuntimeEvent): void {
    // Docker's own HEALTHCHECK changed its verdict: probe the replica now, so berth's verdict is fresh too.
    if (e.action === 'health_status') void this.deps.health.probeNow?.(e.id);
    else if (DRIFT_ACTIONS.has(e.action)) this.#recheckSoon('runtime');
  }

  /** One re-check shortly after a burst of events (a `docker rm -f` is kill, die and destroy). */
  #recheckSoon(trigger: Trigger): void {
    clearTimeout(this.#recheckTimers.get(trigger));
    const timer = setTimeout(() => {
      this.#recheckTimers.delete(trigger);
      this.trigger(trigger);
    }, this.deps.runtimeDebounceMs ?? 500);
    timer.unref();
    this.#recheckTimers.set(trigger, timer);
  }

  #reconcilePlugins(plugins: NonNullable<ControllerDeps['plugins']>): ReconcilePlugins {
    const { host } = plugins;
    return {
      manifests: plugins.manifests,
      ...(host && {
        sync: (configs) => host.sync(configs).catch((err: unknown) => this.deps.log.error({ env: this.deps.env, err }, 'plugin host failed to follow the repo')),
        transform: (state) => host.renderTransform(state),
        preApply: (ctx) => host.preApply(ctx),
        postApply: (ctx) => host.postApply(ctx),
      }),
      scaled: () => scaledOf(this.memory),
    };
  }

  /** Set while reconciling is paused (a plugin's `suspend` command): triggers wait, folded into one. */
  get suspended(): { reason: string; since: string } | undefined {
    return this.#suspended;
  }

  /** Pauses reconciling after the current reconcile; triggers are kept (folded) until resume(). */
  suspend(reason: string): void {
    if (this.#suspended) return;
    this.#suspended = { reason, since: new Date(this.deps.clock.now()).toISOString() };
    this.deps.log.warn({ env: this.deps.env, reason }, 'reconciling suspended');
  }

  /** Resumes reconciling; what was triggered meanwhile runs now, as one reconcile. */
  resume(): void {
    if (!this.#suspended) return;
    this.#suspended = undefined;
    this.deps.log.info({ env: this.deps.env }, 'reconciling resumed');
    const waiting = this.#pending;
    if (waiting && !this.#running && !this.#stopped) {
      this.#pending = undefined;
      this.#start(waiting);
    }
  }

  /** Asks for a reconcile (`force`: a person asked, held versions are tried again). Returns whether it was folded into one already running or queued. */
  trigger(trigger: Trigger, options: { force?: boolean } = {}): { coalesced: boolean } {
    this.deps.metrics.triggers.inc({ env: this.deps.env, trigger });
    const request: Request = { trigger, force: options.force ?? false, fetch: !RECHECKS.has(trigger) };
    if (this.#stopped) return { coalesced: true };
    if (this.#running || this.#suspended) {
      this.#pending = merge(this.#pending, request);
      return { coalesced: true };
    }
    this.#start(request);
    return { coalesced: false };
  }

  #start(first: Request): void {
    this.#running = this.#loop(first).finally(() => {
      this.#running = undefined;
      // A trigger that arrived after the loop's last look at #pending must still run.
      const late = this.#pending;
      if (late && !this.#stopped && !this.#suspended) {
        this.#pending = undefined;
        this.#start(late);
      }
    });
  }

  /** Resolves when no reconcile is running or queued. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    for (const timer of this.#recheckTimers.values()) clearTimeout(timer);
    this.#events?.abort();
    for (const off of this.#unsubscribe.splice(0)) off();
    await this.idle();
    await this.deps.health.stop?.();
    await this.deps.bus.flush();
  }

  async #loop(first: Request): Promise<void> {
    let next: Request | undefined = first;
    while (next && !this.#stopped && !(next !== first && this.#suspended)) {
      this.#pending = undefined;
      try {
        await this.#reconcile(next);
      } catch (err) {
        // reconcile() records its own crashes; this is the controller's own code failing around it.
        this.#failures++;
        this.deps.log.error({ env: this.deps.env, err }, 'controller failed around a reconcile');
        this.#scheduleRetry();
      }
      next = this.#pending;
    }
  }

  async #reconcile({ trigger, force, fetch }: Request): Promise<void> {
    const outcome = await reconcile(
      {
        env: this.deps.env,
        // A re-check compares live state with the revision last reconciled: it needs no Git server.
        readRevision: async () => (this.#lastRead = (!fetch && (await this.#recheckRevision())) || (await this.#fetch())),
        secrets: this.deps.secrets,
        cache: this.#cache,
        runtime: this.deps.runtime,
        proxy: this.deps.proxy,
        clock: this.deps.clock,
        bus: this.deps.bus,
        history: this.deps.history,
        memory: this.memory,
        board: this.board,
        health: this.deps.health,
        ...(this.deps.prune !== undefined && { prune: this.deps.prune }),
        ...(this.deps.hooks && { hooks: this.deps.hooks }),
        ...(this.deps.parallelism !== undefined && { parallelism: this.deps.parallelism }),
        ...(this.deps.plugins && { plugins: this.#reconcilePlugins(this.deps.plugins) }),
      },
      { trigger, force },
    );
    this.lastOutcome = outcome;
    // Recorded like any failed reconcile; the stack is for the log only.
    if (outcome.kind === 'crashed') this.deps.log.error({ env: this.deps.env, stage: outcome.stage, err: outcome.error }, 'reconcile crashed');
    if ('plan' in outcome) {
      this.lastPlan = outcome.plan;
      this.lastDesired = outcome.desired;
      // Reconciled: what memory says (applied, in sync, or done with its rolled-back versions held).
      if (this.#lastRead && this.memory.lastReconciledKey === outcome.desired.revisionKey) this.#reconciled = { revision: this.#lastRead, desired: outcome.desired };
    }
    if (outcome.retry) {
      this.#failures++;
      this.#scheduleRetry();
    } else if (outcome.kind !== 'render-failed') this.#failures = 0;
    this.ready = true;
  }

  #scheduleRetry(): void {
    const delay = backoffDelay(this.deps.backoff ?? { baseMs: 5000, maxMs: 300_000 }, this.#failures);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.trigger('retry'), delay);
    this.#retryTimer.unref();
    this.deps.log.warn({ env: this.deps.env, retryInMs: delay, failures: this.#failures }, 'reconcile failed; retrying with backoff');
  }

  /**
   * The branch this environment follows (for webhooks: a push elsewhere is not for it), known before
   * any revision rendered; undefined only when the repo cannot be read.
   */
  async branch(): Promise<string | undefined> {
    return this.#branch().catch(() => undefined);
  }

  /** Live state compared with the revision last reconciled: what differs and why (GET /api/v1/drift). Undefined before the first reconcile. */
  async drift(): Promise<DriftReport | undefined> {
    if (!this.#reconciled) return undefined;
    return checkDrift({ env: this.deps.env, memory: this.memory, health: this.deps.health, clock: this.deps.clock, runtime: this.deps.runtime, proxy: this.deps.proxy, ...(this.deps.prune !== undefined && { prune: this.deps.prune }) }, this.#reconciled.desired);
  }

  /**
   * What a re-check heals to: the revision last reconciled; after a restart, the one memory says was
   * applied, when it is also the one last reconciled and its commit is at hand (read once); else the
   * last one read.
   */
  async #recheckRevision(): Promise<Revision | undefined> {
    if (this.#reconciled) return this.#reconciled.revision;
    const { sha } = parseRevision(this.memory.lastAppliedRevision);
    if (sha && sha === this.memory.lastReconciledKey) {
      this.#applied ??= readAppliedRevision(this.deps.source, this.memory.lastAppliedRevision).catch(() => undefined);
      const applied = await this.#applied;
      if (applied) return applied;
    }
    return this.#lastRead;
  }

  /** The branch this environment follows, per berth.yaml of the last revision read (or HEAD at first). */
  async #branch(): Promise<string> {
    const fromLast = this.#lastRead && envBranch(this.#lastRead, this.deps.env, this.#cache);
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
      const revision = source.kind === 'directory' ? await source.read() : await source.fetch(branch).then(() => source.read(branch));
      return source.kind === 'directory' ? revision : { ...revision, ref: { ...revision.ref, branch } };
    } finally {
      end();
    }
  }
}
