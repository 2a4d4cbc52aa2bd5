import type { EventBus } from '../events/bus.js';
import type { BerthEvent } from '../events/types.js';
import { parseRevision } from '../source/types.js';
import { backoffDelay, type Backoff } from '../util/backoff.js';
import { systemClock, type Clock } from '../util/clock.js';
import { plural } from '../util/text.js';
import type { CommitState, Forge, StatusRequest } from './types.js';

/** What the forges take: GitHub and Gitea cut a description at 140 characters, a context at 255. */
export const MAX_DESCRIPTION = 140;
export const MAX_CONTEXT = 255;

/** The three status contexts of an environment, from the base (`berth/<env>` by default). */
export function statusContexts(base: string): { reconcile: string; drift: string; plan: string } {
  return { reconcile: base, drift: `${base}/drift`, plan: `${base}/plan` };
}

/** A description cut to the forges' limit, on a word boundary when one is near. */
export function fitDescription(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= MAX_DESCRIPTION) return flat;
  const cut = flat.slice(0, MAX_DESCRIPTION - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > MAX_DESCRIPTION - 30 ? cut.slice(0, space) : cut}…`;
}

/**
 * One commit status as berth sends it: the description fitted to the forges' limit, linked to
 * `<externalUrl><path>` when berth's own address is known.
 */
export function statusRequest(sha: string, context: string, state: CommitState, description: string, link: { externalUrl?: string | undefined; path: string }): StatusRequest {
  return { sha, context, state, description: fitDescription(description), ...(link.externalUrl && { targetUrl: `${link.externalUrl.replace(/\/+$/, '')}${link.path}` }) };
}

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
  const parts = [`applied ${plural(tally('Succeeded'), 'app')}`];
  if (tally('RolledBack')) parts.push(`${tally('RolledBack')} rolled back`);
  if (tally('Failed')) parts.push(`${tally('Failed')} failed`);
  if (tally('Skipped')) parts.push(`${tally('Skipped')} skipped`);
  const bad = e.apps.find((a) => a.result === 'RolledBack' || a.result === 'Failed');
  const cause = bad ? `: ${bad.app} ${bad.reason === 'HealthCheckFailed' || bad.result === 'RolledBack' ? 'health check failed' : (bad.error ?? 'failed')}` : '';
  return { state: e.result === 'Succeeded' ? 'success' : 'failure', description: parts.join(', ') + cause };
}

/** The commit status an event asks for, if any (pure: the reporter only delivers). */
export function statusFor(e: BerthEvent, contexts: ReturnType<typeof statusContexts>, externalUrl?: string): StatusRequest | undefined {
  const make = (revision: string, context: string, state: CommitState, description: string, path: string): StatusRequest | undefined => {
    const { sha } = parseRevision(revision);
    return sha ? statusRequest(sha, context, state, description, { externalUrl, path }) : undefined;
  };
  switch (e.type) {
    case 'reconcile.started':
      return make(e.revision, contexts.reconcile, 'pending', `applying ${plural(e.apps, 'app')}`, '/api/v1/status');
    case 'reconcile.finished': {
      if (e.noop) return undefined;
      const { state, description } = describeReconcile(e);
      return make(e.revision, contexts.reconcile, state, description, '/api/v1/history');
    }
    case 'drift.detected':
      return make(e.revision, contexts.drift, 'failure', e.selfHeal ? `${e.description}; healing` : e.description, '/api/v1/drift');
    case 'drift.healed':
    case 'drift.resolved':
      return make(e.revision, contexts.drift, 'success', e.description, '/api/v1/drift');
    default:
      return undefined;
  }
}

/** Anything that sets commit statuses: a forge (git notes included). */
export type StatusTarget = Pick<Forge, 'name' | 'setStatus'>;

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
  /** Time of deliveries and retries (the reporter waits with its own timer, which `close` clears). */
  clock?: Pick<Clock, 'now'>;
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

/** A queued status: how often it was tried, and when it may be tried again. */
interface Pending {
  status: StatusRequest;
  attempts: number;
  notBefore: number;
}

/**
 * Delivers commit statuses to one forge off the reconcile's path: `post` only queues. One status per
 * commit and context is kept (the forge shows only the newest, so a newer one supersedes a queued or
 * failing one), delivered in the order posted. A transient failure goes back to the end of the queue
 * with a backoff, so it never holds up the statuses behind it.
 */
export class StatusReporter {
  readonly #target: StatusTarget;
  readonly #retry: Backoff & { attempts: number };
  readonly #clock: Pick<Clock, 'now'>;
  readonly #opts: StatusReporterOptions;
  /** By `sha context`, in delivery order (a Map keeps insertion order; a re-queued status goes last). */
  readonly #queue = new Map<string, Pending>();
  readonly #recent: StatusDelivery[] = [];
  #worker: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(target: StatusTarget, options: StatusReporterOptions = {}) {
    this.#target = target;
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#clock = options.clock ?? systemClock;
    this.#opts = options;
  }

  get name(): string {
    return this.#target.name;
  }

  /** Queues a status; one queued for the same commit and context is superseded by it. */
  post(status: StatusRequest): void {
    if (this.#closed) return;
    const key = `${status.sha} ${status.context}`;
    const older = this.#queue.get(key);
    if (older) {
      this.#record(older.status, 'superseded', older.attempts);
      this.#queue.delete(key);
    }
    this.#queue.set(key, { status, attempts: 0, notBefore: 0 });
    this.#wake?.();
    this.#worker ??= this.#drain();
  }

  /** Statuses handled lately, newest first. */
  recent(): StatusDelivery[] {
    return [...this.#recent].reverse();
  }

  /** Waits until every queued status is handled, or `timeoutMs` passed; says whether all were. */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const drained = (async () => {
      while (this.#worker) await this.#worker;
      return true as const;
    })();
    const done = await Promise.race([drained, timeout]);
    clearTimeout(timer);
    return done;
  }

  /** Stops: what is queued is dropped (a stopping controller flushes first). */
  close(): void {
    this.#closed = true;
    this.#queue.clear();
    this.#wake?.();
  }

  async #drain(): Promise<void> {
    try {
      while (!this.#closed && this.#queue.size) {
        const now = this.#clock.now();
        const ready = [...this.#queue].find(([, p]) => p.notBefore <= now);
        if (!ready) {
          await this.#sleep(Math.min(...[...this.#queue.values()].map((p) => p.notBefore)) - now);
          continue;
        }
        const [key, pending] = ready;
        this.#queue.delete(key);
        await this.#deliver(key, pending);
      }
    } finally {
      this.#worker = undefined;
    }
  }

  async #deliver(key: string, { status, attempts: tried }: Pending): Promise<void> {
    const attempts = tried + 1;
    try {
      await this.#target.setStatus(status);
      return this.#record(status, 'delivered', attempts);
    } catch (err) {
      // A newer status for this commit and context was posted meanwhile: it is the one to deliver.
      if (this.#queue.has(key)) return this.#record(status, 'superseded', attempts, err);
      if (!transient(err) || attempts >= this.#retry.attempts) {
        this.#opts.onError?.(status, err);
        return this.#record(status, 'failed', attempts, err);
      }
      this.#queue.set(key, { status, attempts, notBefore: this.#clock.now() + backoffDelay(this.#retry, attempts) });
    }
  }

  /** Waits `ms`, or less when a status is posted (it may be ready at once) or the reporter closes; no timer outlives it. */
  async #sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, Math.max(0, ms));
    });
    clearTimeout(timer);
    this.#wake = undefined;
  }

  #record(status: StatusRequest, outcome: StatusDelivery['outcome'], attempts: number, err?: unknown): void {
    const delivery: StatusDelivery = { ...status, forge: this.#target.name, outcome, attempts, at: new Date(this.#clock.now()).toISOString(), ...(err !== undefined && { error: (err as Error).message ?? String(err) }) };
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
