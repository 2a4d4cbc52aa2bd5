import type { Logger } from 'pino';
import type { RolloutHooks } from '../apply/types.js';
import type { EventBus } from '../events/bus.js';
import type { Trigger } from '../events/types.js';
import type { Plan } from '../plan/types.js';
import { DocCache } from '../render/doc-cache.js';
import { envBranch } from '../render/render.js';
import type { SecretSource } from '../render/secrets.js';
import type { DesiredState } from '../render/types.js';
import { loadMemory, type ReconcileMemory } from '../reconcile/memory.js';
import { reconcile, type HealthSource, type ReconcileOutcome } from '../reconcile/reconcile.js';
import type { HistoryStore } from '../report/history.js';
import type { Metrics } from '../report/metrics.js';
import type { ProxyDriver, RuntimeDriver } from '../runtime/types.js';
import type { ConfigSource } from '../source/open.js';
import type { Revision } from '../source/types.js';
import { StatusBoard, initialStatus } from '../status/board.js';
import { withAppHealth } from '../status/compute.js';
import type { EnvStatus } from '../status/types.js';
import type { Clock } from '../util/clock.js';

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
  /** Probes every running replica; its verdicts are the apps' health. */
  health: HealthSource & { start?(): void; stop?(): Promise<void> };
  /** `--no-prune`/`--prune` when given on the command line; otherwise the repo decides. */
  prune?: boolean;
  hooks?: RolloutHooks[];
  /** Apps rolled out at once (`--parallelism`). */
  parallelism?: number;
  /** Retry after a failure: base delay, doubled per consecutive failure, capped. */
  backoff?: { baseMs: number; maxMs: number };
  /** Wait after a runtime event before reconciling (events come in bursts). */
  runtimeDebounceMs?: number;
}

/** Runtime events that may mean drift (a container killed, stopped, removed or restarted by hand). */
const DRIFT_ACTIONS = new Set(['die', 'destroy', 'stop', 'kill', 'oom', 'start', 'pause', 'unpause', 'rename', 'update']);

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
  #pending: { trigger: Trigger; force: boolean } | undefined;
  #lastRevision: Revision | undefined;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #runtimeTimer: NodeJS.Timeout | undefined;
  #events: AbortController | undefined;
  #stopped = false;

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
    this.deps.bus.on('health.changed', (e) => {
      const next = withAppHealth(this.board.current, e.app, e.health);
      if (next) this.board.update(next, new Date(this.deps.clock.now()));
    });
  }

  /** Starts the health monitor and follows the runtime's events (drift seen in seconds, not at the next poll). */
  watch(): void {
    this.deps.health.start?.();
    const events = this.deps.runtime.events?.bind(this.deps.runtime);
    if (!events) return;
    this.#events = new AbortController();
    void this.#followRuntime(events, this.#events.signal);
  }

  async #followRuntime(events: NonNullable<RuntimeDriver['events']>, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const e of events(this.deps.env, signal)) {
          failures = 0;
          if (!DRIFT_ACTIONS.has(e.action)) continue;
          clearTimeout(this.#runtimeTimer);
          this.#runtimeTimer = setTimeout(() => this.trigger('runtime'), this.deps.runtimeDebounceMs ?? 500);
          this.#runtimeTimer.unref();
        }
      } catch (err) {
        if (signal.aborted) return;
        this.deps.log.warn({ env: this.deps.env, err: (err as Error).message }, 'runtime event stream lost; reconnecting');
      }
      await this.deps.clock.sleep(Math.min(30_000, 1000 * 2 ** Math.min(failures++, 5)));
    }
  }

  /** Asks for a reconcile (`force`: a person asked, held versions are tried again). Returns whether it was folded into one already running or queued. */
  trigger(trigger: Trigger, options: { force?: boolean } = {}): { coalesced: boolean } {
    this.deps.metrics.triggers.inc({ env: this.deps.env, trigger });
    const force = options.force ?? false;
    if (this.#stopped) return { coalesced: true };
    if (this.#running) {
      this.#pending = { trigger, force: force || (this.#pending?.force ?? false) };
      return { coalesced: true };
    }
    this.#start({ trigger, force });
    return { coalesced: false };
  }

  #start(first: { trigger: Trigger; force: boolean }): void {
    this.#running = this.#loop(first).finally(() => {
      this.#running = undefined;
      // A trigger that arrived after the loop's last look at #pending must still run.
      const late = this.#pending;
      this.#pending = undefined;
      if (late && !this.#stopped) this.#start(late);
    });
  }

  /** Resolves when no reconcile is running or queued. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#runtimeTimer);
    this.#events?.abort();
    await this.idle();
    await this.deps.health.stop?.();
    await this.deps.bus.flush();
  }

  async #loop(first: { trigger: Trigger; force: boolean }): Promise<void> {
    let next: { trigger: Trigger; force: boolean } | undefined = first;
    while (next && !this.#stopped) {
      this.#pending = undefined;
      try {
        await this.#reconcile(next.trigger, next.force);
      } catch (err) {
        this.#failures++;
        this.deps.log.error({ err }, 'reconcile crashed');
        this.#scheduleRetry();
      }
      next = this.#pending;
    }
  }

  async #reconcile(trigger: Trigger, force: boolean): Promise<void> {
    const outcome = await reconcile(
      {
        env: this.deps.env,
        readRevision: () => this.#fetch(),
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
      },
      { trigger, force },
    );
    this.lastOutcome = outcome;
    if ('plan' in outcome) {
      this.lastPlan = outcome.plan;
      this.lastDesired = outcome.desired;
    }
    if (outcome.retry) {
      this.#failures++;
      this.#scheduleRetry();
    } else if (outcome.kind !== 'render-failed') this.#failures = 0;
    this.ready = true;
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
      const revision = source.kind === 'directory' ? await source.read() : await source.fetch(branch).then(() => source.read(branch));
      this.#lastRevision = revision;
      return source.kind === 'directory' ? revision : { ...revision, ref: { ...revision.ref, branch } };
    } finally {
      end();
    }
  }
}
