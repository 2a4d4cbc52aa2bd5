import type { EventBus } from '../events/bus.js';
import type { BerthEvent } from '../events/types.js';
import { joinWithin } from '../plan/drift.js';
import { backoffDelay, type Backoff } from '../util/backoff.js';
import type { CommitState, StatusRequest } from './types.js';

/** What the forges take: GitHub and Gitea cut a description at 140 characters, a context at 255. */
export const MAX_DESCRIPTION = 140;
export const MAX_CONTEXT = 255;

/** The three status contexts of an environment, from the base (`berth/<env>` by default). */
export function statusContexts(base: string): { reconcile: string; drift: string; plan: string } {
  return { reconcile: base, drift: `${base}/drift`, plan: `${base}/plan` };
}

export function shaOf(revision: string): string | undefined {
  return /sha1:([0-9a-f]{40})/.exec(revision)?.[1];
}

/** A description cut to the forges' limit, on a word boundary when one is near. */
export function fitDescription(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= MAX_DESCRIPTION) return flat;
  const cut = flat.slice(0, MAX_DESCRIPTION - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > MAX_DESCRIPTION - 30 ? cut.slice(0, space) : cut}…`;
}

const count = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * What a finished reconcile says on its commit: `applied 3 apps, 1 rolled back: api health check
 * failed`. `failure` when the revision did not go out as written (rolled back, failed, not valid);
 * `error` when berth itself failed (an internal error), so nothing can be said of the revision.
 */
export function describeReconcile(e: BerthEvent<'reconcile.finished'>): { state: CommitState; description: string } {
  if (e.reason === 'RenderFailed') return { state: 'failure', description: `not applied: ${(e.error ?? '').replace(/^.*?first: /, '')}` };
  if (e.reason === 'InternalError') return { state: 'error', description: `berth failed: ${e.error ?? 'internal error'}` };
  if (e.apps.length === 0) return { state: e.result === 'Succeeded' ? 'success' : 'failure', description: e.result === 'Succeeded' ? 'in sync: nothing to change' : (e.error ?? e.result) };
  const tally = (r: string) => e.apps.filter((a) => a.result === r).length;
  const parts = [`applied ${count(tally('Succeeded'), 'app')}`];
  if (tally('RolledBack')) parts.push(`${tally('RolledBack')} rolled back`);
  if (tally('Failed')) parts.push(`${tally('Failed')} failed`);
  if (tally('Skipped')) parts.push(`${tally('Skipped')} skipped`);
  const bad = e.apps.find((a) => a.result === 'RolledBack' || a.result === 'Failed');
  const cause = bad ? `: ${bad.app} ${bad.reason === 'HealthCheckFailed' || bad.result === 'RolledBack' ? 'health check failed' : (bad.error ?? 'failed')}` : '';
  return { state: e.result === 'Succeeded' ? 'success' : 'failure', description: parts.join(', ') + cause };
}

/** The commit status an event asks for, if any (pure: the reporter only delivers). */
export function statusFor(e: BerthEvent, contexts: ReturnType<typeof statusContexts>, externalUrl?: string): StatusRequest | undefined {
  const link = (path: string) => (externalUrl ? { targetUrl: `${externalUrl.replace(/\/+$/, '')}${path}` } : {});
  const make = (revision: string, context: string, state: CommitState, description: string, path: string): StatusRequest | undefined => {
    const sha = shaOf(revision);
    return sha ? { sha, context, state, description: fitDescription(description), ...link(path) } : undefined;
  };
  switch (e.type) {
    case 'reconcile.started':
      return make(e.revision, contexts.reconcile, 'pending', `applying ${count(e.apps, 'app')}`, '/api/v1/status');
    case 'reconcile.finished': {
      if (e.noop) return undefined;
      const { state, description } = describeReconcile(e);
      return make(e.revision, contexts.reconcile, state, description, '/api/v1/history');
    }
    case 'drift.detected':
      return make(e.revision, contexts.drift, 'failure', e.selfHeal ? `${e.description}; healing` : e.description, '/api/v1/drift');
    case 'drift.healed':
      return make(e.revision, contexts.drift, 'success', e.description ?? `healed: ${joinWithin(e.apps, 120, ', ')}`, '/api/v1/drift');
    case 'drift.resolved':
      return make(e.revision, contexts.drift, 'success', e.description, '/api/v1/drift');
    default:
      return undefined;
  }
}

/** Anything that sets commit statuses: a forge, or git notes. */
export interface StatusTarget {
  readonly name: string;
  setStatus(status: StatusRequest): Promise<void>;
}

/** One status as the reporter handled it: what `GET /api/v1/commit-statuses` lists. */
export interface StatusDelivery extends StatusRequest {
  forge: string;
  outcome: 'delivered' | 'failed' | 'superseded';
  attempts: number;
  at: string;
  error?: string;
}

export interface StatusReporterOptions {
  /** Retry of a transient failure: delay doubled per attempt, capped; `attempts` in all. */
  retry?: Backoff & { attempts: number };
  sleep?: (ms: number) => Promise<void>;
  now?: () => Date;
  /** Called once per status that could not be delivered (after its retries). */
  onError?: (status: StatusRequest, err: unknown) => void;
  /** Called for every status handled (metrics). */
  onDelivery?: (delivery: StatusDelivery) => void;
}

const DEFAULT_RETRY = { baseMs: 1000, maxMs: 60_000, attempts: 8 };
const KEPT = 100;

/** A permanent error (a 401, 404, 422) is not worth a retry; network trouble and 5xx are. */
function transient(err: unknown): boolean {
  const t = (err as { transient?: unknown }).transient;
  return typeof t === 'boolean' ? t : true;
}

/**
 * Delivers commit statuses to one forge, in order, off the reconcile's path: `post` only queues. A
 * failing forge is retried with backoff; a status superseded by a newer one for the same commit and
 * context is dropped (the forge only shows the newest), so a long outage ends with the right state.
 */
export class StatusReporter {
  readonly #target: StatusTarget;
  readonly #opts: Required<Pick<StatusReporterOptions, 'retry' | 'sleep' | 'now'>> & StatusReporterOptions;
  readonly #queue: StatusRequest[] = [];
  readonly #recent: StatusDelivery[] = [];
  #worker: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(target: StatusTarget, options: StatusReporterOptions = {}) {
    this.#target = target;
    this.#opts = { retry: DEFAULT_RETRY, sleep: (ms) => new Promise((r) => setTimeout(r, ms).unref()), now: () => new Date(), ...options };
  }

  get name(): string {
    return this.#target.name;
  }

  /** Queues a status; a queued one for the same commit and context is replaced by it. */
  post(status: StatusRequest): void {
    if (this.#closed) return;
    const same = this.#queue.findIndex((q) => q.sha === status.sha && q.context === status.context);
    if (same >= 0) {
      this.#record(this.#queue[same]!, 'superseded', 0);
      this.#queue[same] = status;
    } else this.#queue.push(status);
    this.#wake?.();
    this.#worker ??= this.#drain();
  }

  /** Statuses handled lately, newest first. */
  recent(): StatusDelivery[] {
    return [...this.#recent].reverse();
  }

  /** Waits until every queued status is handled, or `timeoutMs` passed; says whether all were. */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    const worker = this.#worker;
    if (!worker) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const done = await Promise.race([worker.then(() => this.flush(timeoutMs)), timeout]);
    clearTimeout(timer);
    return done;
  }

  /** Stops retrying: what is queued is dropped (a stopping controller flushes first). */
  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
    this.#wake?.();
  }

  async #drain(): Promise<void> {
    try {
      for (let next = this.#queue.shift(); next && !this.#closed; next = this.#queue.shift()) await this.#deliver(next);
    } finally {
      this.#worker = undefined;
    }
  }

  #superseded(status: StatusRequest): boolean {
    return this.#closed || this.#queue.some((q) => q.sha === status.sha && q.context === status.context);
  }

  async #deliver(status: StatusRequest): Promise<void> {
    const { retry } = this.#opts;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#target.setStatus(status);
        return this.#record(status, 'delivered', attempt);
      } catch (err) {
        if (!transient(err) || attempt >= retry.attempts) {
          this.#opts.onError?.(status, err);
          return this.#record(status, 'failed', attempt, err);
        }
        if (await this.#pause(backoffDelay(retry, attempt), status)) return this.#record(status, 'superseded', attempt);
      }
    }
  }

  /** Waits `ms` before the next attempt; true as soon as a newer status for the same commit and context supersedes it. */
  async #pause(ms: number, status: StatusRequest): Promise<boolean> {
    const end = this.#opts.now().getTime() + ms;
    for (;;) {
      if (this.#superseded(status)) return true;
      const left = end - this.#opts.now().getTime();
      if (left <= 0) return false;
      await Promise.race([this.#opts.sleep(left), new Promise<void>((r) => (this.#wake = r))]);
      this.#wake = undefined;
    }
  }

  #record(status: StatusRequest, outcome: StatusDelivery['outcome'], attempts: number, err?: unknown): void {
    const delivery: StatusDelivery = { ...status, forge: this.#target.name, outcome, attempts, at: this.#opts.now().toISOString(), ...(err !== undefined && { error: (err as Error).message ?? String(err) }) };
    this.#recent.push(delivery);
    if (this.#recent.length > KEPT) this.#recent.shift();
    this.#opts.onDelivery?.(delivery);
  }
}

/** Commit statuses follow the event bus: each event's status (statusFor) is queued on every reporter. */
export function reportCommitStatuses(bus: EventBus, reporters: StatusReporter[], options: { context: string; externalUrl?: string }): () => void {
  const contexts = statusContexts(options.context);
  return bus.on(
    ['reconcile.started', 'reconcile.finished', 'drift.detected', 'drift.healed', 'drift.resolved'],
    (e) => {
      const status = statusFor(e, contexts, options.externalUrl);
      if (status) for (const r of reporters) r.post(status);
    },
    { name: 'commit-statuses' },
  );
}
