/**
 * What the built-in HTTP plugins share: choosing events, reading their validated config, sending one
 * request with retries (`send`), and an in-order delivery queue (`DeliveryQueue`) that a dead endpoint
 * cannot hold up for long.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../../errors.js';
import { EVENT_TYPES, type EventType } from '../../events/types.js';
import { backoffDelay } from '../../util/backoff.js';
import { truncate } from '../../util/text.js';
import { VERSION } from '../../version.js';
import type { EventHandler, JsonSchema, PluginContext, PluginHealth, PluginLogger } from '../types.js';

// ---------------------------------------------------------------------------------------------
// Events

/** The event the `*` selector leaves out: one per rollout step of every app, too chatty for a notification. */
export const CHATTY_EVENT = 'app.progress' satisfies EventType;

/**
 * What `events` may list: `*`, an event type (`drift.detected`) or a prefix of one (`drift.*`), from
 * the events berth has (EVENT_TYPES): a misspelt name is a config error at render, not silence.
 */
export const EVENT_SELECTORS: readonly string[] = ['*', ...new Set(EVENT_TYPES.map((t) => `${t.slice(0, t.indexOf('.'))}.*`)), ...EVENT_TYPES];

/** The schema of an `events` field, with its default written into the description. */
export function eventsSchema(defaults: readonly string[]): JsonSchema {
  return {
    description: `Events to send: exact types (drift.detected), prefixes (drift.*) or * (every event but ${CHATTY_EVENT}, which is sent only when named or matched by app.*). Default: ${defaults.join(', ')}.`,
    type: 'array',
    minItems: 1,
    uniqueItems: true,
    items: { type: 'string', enum: [...EVENT_SELECTORS] },
    default: defaults,
    examples: [['reconcile.finished', 'drift.*']],
  };
}

/** A predicate over event types for `selectors` (see eventsSchema for the rules). */
export function eventFilter(selectors: readonly string[]): (type: string) => boolean {
  return (type) => selectors.some((s) => s === type || (s === '*' ? type !== CHATTY_EVENT : s.endsWith('.*') && type.startsWith(s.slice(0, -1))));
}

/** `selectors` as the host reads them from `EventHandler.events`, to filter before queueing. */
export function handlerEvents(selectors: readonly string[]): EventHandler['events'] {
  return selectors as EventHandler['events'];
}

// ---------------------------------------------------------------------------------------------
// Config

/**
 * Config fields take plain values; any of them may be written `{ secretRef: NAME }` in the repo, and
 * render puts the secret's value in its place before the schema checks it. Fields that hold
 * credentials say so in their description.
 */
const SECRET_HINT = 'A credential: write it as { secretRef: NAME }, never as plain text in Git.';

/** A string field that holds a credential. */
export function secretString(schema: JsonSchema, description: string): JsonSchema {
  return { ...schema, description: `${description} ${SECRET_HINT}` };
}

/** An http(s) URL without credentials in it (fetch refuses them; they belong in a secret). */
export const HTTP_URL_SCHEMA: JsonSchema = {
  title: 'an http:// or https:// URL',
  type: 'string',
  format: 'uri',
  pattern: '^https?://[^/?#@]+([/?#].*)?$',
  examples: ['https://hooks.example.com/berth'],
};

/** A duration in seconds, for timeouts. */
export function secondsSchema(defaultSeconds: number, what: string, max = 300): JsonSchema {
  return { description: `${what}, in seconds (fractions allowed). Default: ${defaultSeconds}.`, type: 'number', exclusiveMinimum: 0, maximum: max, default: defaultSeconds };
}

/** The `maxAttempts` field of an HTTP plugin. */
export function maxAttemptsSchema(defaultAttempts: number): JsonSchema {
  return { description: `Attempts per delivery, the first included (1: never retry). Default: ${defaultAttempts}.`, type: 'integer', minimum: 1, maximum: 20, default: defaultAttempts };
}

/** A plugin's config was not what its schema promises (validation skipped, or a secret resolved to nonsense). */
export function configError(plugin: string, field: string, message: string): BerthError {
  return new BerthError('E_PLUGIN', `plugin ${plugin}: config.${field} ${message}`, { plugin, field });
}

/** Reads a string field the host validated (and resolved, when it was a secretRef). */
export function stringField(plugin: string, config: Record<string, unknown>, field: string, required: true): string;
export function stringField(plugin: string, config: Record<string, unknown>, field: string, required?: false): string | undefined;
export function stringField(plugin: string, config: Record<string, unknown>, field: string, required = false): string | undefined {
  const value = config[field];
  if (value === undefined && !required) return undefined;
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') throw configError(plugin, field, 'is a secret berth did not resolve to its value');
  throw configError(plugin, field, value === undefined ? 'is required' : `must be a string, got ${typeof value}`);
}

/** Checks an http(s) URL: the schema saw it too, but a plugin may be created without render (tests, the API). */
export function httpUrl(plugin: string, field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(plugin, field, 'is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(plugin, field, `must be http:// or https://, not ${url.protocol}`);
  if (url.username || url.password) throw configError(plugin, field, 'must not carry credentials; use the plugin\'s auth fields (a secretRef)');
  return value;
}

/** Where a URL points, for logs: scheme, host and port (paths and queries may hold tokens). */
export function originOf(url: string): string {
  return new URL(url).origin;
}

/** Replaces every secret (as is, percent-encoded and base64) in a text, so what a server echoes never reaches a log. */
export function redactor(secrets: Iterable<string | undefined>): (text: string) => string {
  const forms = new Set<string>();
  for (const s of secrets) if (s) for (const f of [s, encodeURIComponent(s), Buffer.from(s).toString('base64')]) forms.add(f);
  // Longest first: a secret containing another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const f of ordered) out = out.replaceAll(f, '[redacted]');
    return out;
  };
}

// ---------------------------------------------------------------------------------------------
// One request, retried

export interface HttpRequest {
  method: 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** How hard to try one request. */
export interface RetryPolicy {
  /** Attempts, the first included. */
  maxAttempts: number;
  /** Each attempt's limit, answer body included. */
  timeoutMs: number;
  /** Backoff: the first retry waits this long, each further one twice as long, at most `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A server's Retry-After is honoured up to this long. */
  retryAfterCapMs: number;
}

/** Backoff timings for the built-ins: 1 s doubling to 30 s, Retry-After honoured up to 60 s. */
export const RETRY_TIMING = { baseDelayMs: 1000, maxDelayMs: 30_000, retryAfterCapMs: 60_000 } as const;

export type SendResult =
  | { ok: true; status: number; attempts: number }
  | {
      ok: false;
      attempts: number;
      /** The last answer's status; absent when none came (network, timeout). */
      status?: number;
      /** What went wrong, redacted: `HTTP 503: <answer>`, `timed out after 10s`, `ECONNREFUSED`. */
      error: string;
      /** Retrying later may help (network, timeout, 5xx, 408, 429); false for other answers. */
      transient: boolean;
      /** Stopped by the signal: the plugin is stopping. */
      aborted: boolean;
    };

export interface SendOptions {
  signal: AbortSignal;
  redact?: (text: string) => string;
  now?: () => number;
  /** Told before each wait between attempts. */
  onRetry?: (retry: { attempt: number; delayMs: number; status?: number; error: string }) => void;
}

const ANSWER_SNIPPET = 512;

function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** The wait a Retry-After header asks for (seconds or an HTTP date), if any. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The first bytes of an answer, as text; the rest is cancelled so a large body costs nothing. */
async function snippet(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ANSWER_SNIPPET) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, ANSWER_SNIPPET).replace(/\s+/g, ' ').trim();
}

function networkError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && err.name === 'TimeoutError') return `timed out after ${timeoutMs / 1000}s`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause && typeof cause.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Sends `request`, retrying network errors, timeouts, 5xx, 408 and 429 with backoff (a Retry-After is
 * honoured up to its cap) until `maxAttempts`. Other answers are final: 4xx are the request's fault, and
 * a redirect is not followed (it would carry the body and the headers to wherever it points).
 */
export async function send(request: HttpRequest, policy: RetryPolicy, options: SendOptions): Promise<SendResult> {
  const redact = options.redact ?? ((t: string) => t);
  const now = options.now ?? Date.now;
  // A config's own User-Agent (any case) replaces berth's: fetch would join the two.
  const headers = Object.keys(request.headers).some((h) => h.toLowerCase() === 'user-agent') ? request.headers : { 'user-agent': `berth/${VERSION}`, ...request.headers };
  let last: { status?: number; error: string; transient: boolean } = { error: 'not sent', transient: true };
  let attempt = 0;
  while (attempt < policy.maxAttempts) {
    if (options.signal.aborted) return { ok: false, attempts: attempt, ...last, aborted: true };
    attempt++;
    let wait: number | undefined;
    try {
      const res = await fetch(request.url, {
        method: request.method,
        headers,
        ...(request.body !== undefined && { body: request.body }),
        redirect: 'manual',
        signal: AbortSignal.any([options.signal, AbortSignal.timeout(policy.timeoutMs)]),
      });
      const answer = await snippet(res);
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, attempts: attempt };
      const what = res.status >= 300 && res.status < 400 ? `HTTP ${res.status} (redirects are not followed; use the final URL)` : `HTTP ${res.status}`;
      last = { status: res.status, error: redact(answer ? `${what}: ${truncate(answer, 200)}` : what), transient: isTransientStatus(res.status) };
      if (last.transient) wait = retryAfterMs(res.headers.get('retry-after'), now());
    } catch (err) {
      if (options.signal.aborted) return { ok: false, attempts: attempt, ...last, aborted: true };
      last = { error: redact(networkError(err, policy.timeoutMs)), transient: true };
    }
    if (!last.transient || attempt === policy.maxAttempts) break;
    const delayMs = wait === undefined ? backoffDelay({ baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs }, attempt) : Math.min(wait, policy.retryAfterCapMs);
    options.onRetry?.({ attempt, delayMs, ...(last.status !== undefined && { status: last.status }), error: last.error });
    try {
      await sleep(delayMs, undefined, { signal: options.signal });
    } catch {
      return { ok: false, attempts: attempt, ...last, aborted: true };
    }
  }
  return { ok: false, attempts: attempt, ...last, aborted: false };
}

// ---------------------------------------------------------------------------------------------
// The delivery queue

/** One message to deliver, and what to log about it (never its body or headers). */
export interface Delivery {
  request: HttpRequest;
  /** e.g. `{ event: 'drift.detected', seq: 12, delivery: '<uuid>' }`. */
  fields: Record<string, unknown>;
}

export interface DeliveryStats {
  delivered: number;
  /** Gave up on: attempts exhausted or a final answer. */
  failed: number;
  /** Not delivered for want of time: the queue was full, or the plugin stopped before they went out. */
  dropped: number;
  /** Waiting, and the one in flight. */
  queued: number;
  /** Failures since the last success. */
  failingInARow: number;
  lastError?: string;
}

export interface DeliveryQueueOptions {
  log: PluginLogger;
  policy: RetryPolicy;
  /** The plugin's signal: aborting it ends the current attempt and the queue. */
  signal: AbortSignal;
  /** Where deliveries go, for logs (an origin, never a full URL). */
  target: string;
  /** Deliveries waiting beyond this drop the oldest. */
  maxQueue: number;
  redact?: (text: string) => string;
  now?: () => number;
}

/**
 * Delivers one message at a time, in order. A delivery is retried per the policy and then given up
 * (logged, counted), so a failing endpoint holds the queue for at most one delivery's retries. After a
 * delivery is given up on a transient failure, the following ones get a single attempt each until one
 * succeeds: an endpoint that is down costs one quick failure per message, not the whole backoff, and
 * the first message after it comes back is delivered at once. Past `maxQueue` the oldest waiting
 * deliveries are dropped (counted; warned about once per overflow).
 */
export class DeliveryQueue {
  readonly #items: Delivery[] = [];
  readonly #options: DeliveryQueueOptions;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  /** The delivery being sent: out of #items, so an overflow never drops it. */
  #current: Delivery | undefined;
  #abortedInFlight = 0;
  #closed = false;
  /** Single attempts until a delivery succeeds. */
  #degraded = false;
  #overflowing = false;
  #lastFailure: string | undefined;
  readonly #stats: Omit<DeliveryStats, 'queued'> = { delivered: 0, failed: 0, dropped: 0, failingInARow: 0 };

  constructor(options: DeliveryQueueOptions) {
    this.#options = options;
    const abort = () => this.#abort.abort(options.signal.reason);
    if (options.signal.aborted) abort();
    else options.signal.addEventListener('abort', abort, { once: true });
  }

  get stats(): DeliveryStats {
    return { ...this.#stats, queued: this.#items.length + (this.#current ? 1 : 0) };
  }

  /** Queues a delivery; false when the queue is closed (the plugin is stopping). */
  push(delivery: Delivery): boolean {
    if (this.#closed || this.#abort.signal.aborted) {
      this.#stats.dropped++;
      return false;
    }
    if (this.#items.length >= this.#options.maxQueue) {
      const dropped = this.#items.shift();
      this.#stats.dropped++;
      if (!this.#overflowing) this.#options.log.warn('delivery queue full: dropping the oldest deliveries', { target: this.#options.target, maxQueue: this.#options.maxQueue, ...dropped?.fields });
      this.#overflowing = true;
    }
    this.#items.push(delivery);
    this.#running ??= this.#run();
    return true;
  }

  /** Resolves when every queued delivery has been delivered or given up (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Stops taking deliveries, lets the queue drain for up to `graceMs` (retries included), then aborts
   * what is left; those are counted as dropped and logged once.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    if (this.#running) {
      const grace = new AbortController();
      await Promise.race([this.idle(), sleep(graceMs, undefined, { signal: grace.signal }).catch(() => undefined)]);
      grace.abort();
    }
    this.#abort.abort();
    await this.idle();
    const left = this.#items.length;
    this.#items.length = 0;
    this.#stats.dropped += left;
    if (left + this.#abortedInFlight) this.#options.log.warn('deliveries dropped at stop', { target: this.#options.target, count: left + this.#abortedInFlight });
  }

  /** Healthy unless the last delivery failed; the message tells the counts. */
  health(): PluginHealth {
    const s = this.stats;
    const counts = `delivered ${s.delivered}, failed ${s.failed}, dropped ${s.dropped}, queued ${s.queued}`;
    if (s.failingInARow === 0) return { ok: true, message: counts };
    return { ok: false, message: `last ${s.failingInARow} deliveries failed (${s.lastError ?? 'unknown error'}); ${counts}` };
  }

  async #run(): Promise<void> {
    // Start on a later tick: push returns before any delivery starts.
    await Promise.resolve();
    try {
      for (let d = this.#items.shift(); d; d = this.#abort.signal.aborted ? undefined : this.#items.shift()) {
        this.#current = d;
        const result = await this.#deliver(d);
        this.#current = undefined;
        if (result.ok === false && result.aborted) {
          this.#stats.dropped++;
          this.#abortedInFlight++;
          break;
        }
        this.#record(d, result);
      }
      if (!this.#items.length) this.#overflowing = false;
    } finally {
      this.#current = undefined;
      this.#running = undefined;
    }
  }

  #deliver(d: Delivery): Promise<SendResult> {
    const { policy, log, target } = this.#options;
    return send(d.request, { ...policy, maxAttempts: this.#degraded ? 1 : policy.maxAttempts }, {
      signal: this.#abort.signal,
      ...(this.#options.redact && { redact: this.#options.redact }),
      ...(this.#options.now && { now: this.#options.now }),
      onRetry: (r) => log.debug('delivery attempt failed: retrying', { target, ...d.fields, ...r }),
    });
  }

  #record(d: Delivery, result: SendResult): void {
    const { log, target } = this.#options;
    if (result.ok) {
      this.#stats.delivered++;
      if (this.#stats.failingInARow) log.info('deliveries succeed again', { target, failedBefore: this.#stats.failingInARow, ...d.fields });
      else log.debug('delivered', { target, ...d.fields, status: result.status, attempts: result.attempts });
      this.#stats.failingInARow = 0;
      this.#degraded = false;
      this.#lastFailure = undefined;
      delete this.#stats.lastError;
      return;
    }
    this.#stats.failed++;
    this.#stats.failingInARow++;
    this.#stats.lastError = result.error;
    const fields = { target, ...d.fields, attempts: result.attempts, ...(result.status !== undefined && { status: result.status }), error: result.error };
    // One warning per kind of failure in a row: an endpoint that is down logs once, not per message.
    const kind = result.status === undefined ? 'network' : String(result.status);
    if (kind !== this.#lastFailure) log.warn('delivery failed: giving up on it', { ...fields, ...(result.transient && { next: 'one attempt per delivery until one succeeds' }) });
    else log.debug('delivery failed: giving up on it', fields);
    this.#lastFailure = kind;
    this.#degraded = result.transient;
  }
}

/** Timings and bounds that are not config: tests shorten them. */
export interface DeliveryOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  retryAfterCapMs?: number;
  /** Deliveries waiting beyond this drop the oldest. Default 1,000. */
  maxQueue?: number;
  /**
   * How long stop() lets queued deliveries go out before dropping them, when it is called before the
   * signal is aborted (berth's host aborts first: then nothing waits). Default 2 s, below the 5 s guard.
   */
  drainMs?: number;
}

export const DELIVERY_DEFAULTS: Required<DeliveryOptions> = { ...RETRY_TIMING, maxQueue: 1000, drainMs: 2000 };

/** The queue every HTTP event handler uses, built from the common config fields. */
export function deliveryQueue(ctx: PluginContext, url: string, secrets: readonly (string | undefined)[], options: DeliveryOptions, defaults: { maxAttempts: number; timeoutSeconds: number }): DeliveryQueue {
  const o = { ...DELIVERY_DEFAULTS, ...options };
  return new DeliveryQueue({
    log: ctx.log,
    signal: ctx.signal,
    target: originOf(url),
    maxQueue: o.maxQueue,
    // The whole URL and its path: an incoming-webhook URL is a credential, and servers echo paths.
    redact: redactor([url, new URL(url).pathname.length > 1 ? new URL(url).pathname + new URL(url).search : undefined, ...secrets]),
    now: () => ctx.now(),
    policy: {
      maxAttempts: (ctx.config.maxAttempts as number | undefined) ?? defaults.maxAttempts,
      timeoutMs: ((ctx.config.timeoutSeconds as number | undefined) ?? defaults.timeoutSeconds) * 1000,
      baseDelayMs: o.baseDelayMs,
      maxDelayMs: o.maxDelayMs,
      retryAfterCapMs: o.retryAfterCapMs,
    },
  });
}

