import type { EventBus } from '../events/bus.js';
import type { BerthEvent } from '../events/types.js';

/** Receives each event the log records, as it is recorded. */
export type EventLogListener = (event: BerthEvent) => void;

export interface EventLogOptions {
  /** Events kept for clients that reconnect with Last-Event-ID (default 1000). */
  size?: number;
  /** Open event streams (live subscribers) before `eventStream` answers 503 (default 100). */
  maxStreams?: number;
}

export interface EventStreamOptions {
  /** The client's Last-Event-ID (header or `?lastEventId=`): events after it are replayed first. */
  lastEventId?: string | null;
  /** Event types to send; one ending in `.` is a prefix (`app.` = `app.progress`, `app.result`). */
  types?: readonly string[];
  /** Interval of the `: heartbeat` comment (default 15 s). */
  heartbeatMs?: number;
  /** Aborts when the client goes away. */
  signal?: AbortSignal;
}

interface Subscription {
  listener: EventLogListener;
  onClose: (() => void) | undefined;
}

/**
 * Frames a stream may have queued beyond its replay before its client counts as stalled: a client
 * that stops reading would otherwise hold every event in memory. Cut, it resumes from the ring.
 */
const MAX_BACKLOG = 1000;

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } as const;

/** The last events of a bus in a ring buffer (for clients that reconnect with Last-Event-ID), and their live listeners. */
export class EventLog {
  readonly size: number;
  readonly maxStreams: number;
  readonly #ring: (BerthEvent | undefined)[];
  readonly #subs = new Set<Subscription>();
  readonly #off: () => void;
  /** Where the next event goes; once the ring is full, also the oldest one. */
  #next = 0;
  #latest = 0;
  #closed = false;

  constructor(bus: EventBus, options: EventLogOptions = {}) {
    this.size = options.size ?? 1000;
    this.maxStreams = options.maxStreams ?? 100;
    if (!Number.isInteger(this.size) || this.size < 1) throw new RangeError(`EventLog size must be a positive integer, got ${this.size}`);
    this.#ring = new Array<BerthEvent | undefined>(this.size);
    this.#off = bus.on('*', (e) => this.#record(e), { name: 'event-log' });
  }

  #record(event: BerthEvent): void {
    this.#ring[this.#next] = event;
    this.#next = (this.#next + 1) % this.size;
    this.#latest = event.seq;
    for (const sub of this.#subs) sub.listener(event);
  }

  /** Events after `seq`, oldest first, as many as the ring still holds; all of them for an id from before a restart. */
  since(seq: number): BerthEvent[] {
    // The bus numbers from 1 again after a restart, so an id newer than any seen is from the previous process.
    const after = seq > this.#latest ? 0 : seq;
    const events: BerthEvent[] = [];
    for (let i = 0; i < this.size; i++) {
      const event = this.#ring[(this.#next + i) % this.size];
      if (event && event.seq > after) events.push(event);
    }
    return events;
  }

  /** Calls `listener` with each new event and `onClose` when the log closes; returns the unsubscribe function. */
  subscribe(listener: EventLogListener, onClose?: () => void): () => void {
    if (this.#closed) {
      onClose?.();
      return () => {};
    }
    const sub: Subscription = { listener, onClose };
    this.#subs.add(sub);
    return () => void this.#subs.delete(sub);
  }

  /** Live listeners: one per open event stream. */
  get listeners(): number {
    return this.#subs.size;
  }

  /** Leaves the bus and ends every open stream (their clients may reconnect elsewhere). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#off();
    const subs = [...this.#subs];
    this.#subs.clear();
    for (const sub of subs) sub.onClose?.();
  }
}

/**
 * A Server-Sent Events response: `retry`, events after Last-Event-ID from the ring, then live ones,
 * with a heartbeat comment so proxies keep the connection open; 503 beyond the log's `maxStreams`.
 */
export function eventStream(log: EventLog, options: EventStreamOptions = {}): Response {
  if (log.listeners >= log.maxStreams) {
    return new Response(JSON.stringify({ error: `too many open event streams (${log.maxStreams}); try again later` }), { status: 503, headers: { 'content-type': 'application/json' } });
  }
  let stop = (): void => {};
  const body = new ReadableStream<Uint8Array>({
    // start runs inside this constructor, so the listener count and the cap above cannot drift apart.
    start(controller) {
      stop = openStream(log, controller, options);
    },
    cancel() {
      stop();
    },
  });
  return new Response(body, { headers: SSE_HEADERS });
}

/** Feeds one stream: replay, then live events and heartbeats; returns the function that ends it. */
function openStream(log: EventLog, controller: ReadableStreamDefaultController<Uint8Array>, options: EventStreamOptions): () => void {
  const wanted = typeMatcher(options.types);
  const encoder = new TextEncoder();
  let open = true;
  let off = (): void => {};
  let heartbeat: NodeJS.Timeout | undefined;
  const end = (reason?: Error): void => {
    if (!open) return;
    open = false;
    off();
    clearInterval(heartbeat);
    options.signal?.removeEventListener('abort', onAbort);
    try {
      // An error drops what is still queued for a stalled client; a close lets it drain.
      if (reason) controller.error(reason);
      else controller.close();
    } catch {
      // The reader cancelled the stream already.
    }
  };
  const onAbort = (): void => end();
  const replay = missed(log, options.lastEventId).filter(wanted);
  const allowance = MAX_BACKLOG + replay.length;
  const send = (text: string): void => {
    if (!open) return;
    if ((controller.desiredSize ?? 0) < -allowance) return end(new Error('event stream client is too slow; reconnect with Last-Event-ID'));
    controller.enqueue(encoder.encode(text));
  };
  send('retry: 2000\n\n');
  for (const event of replay) send(frame(event));
  heartbeat = setInterval(() => send(': heartbeat\n\n'), options.heartbeatMs ?? 15_000).unref();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // Replay and subscribe in the same tick: no event can fall between them or arrive twice.
  off = log.subscribe((event) => wanted(event) && send(frame(event)), () => end());
  if (options.signal?.aborted) end();
  return () => end();
}

/** The replay for a Last-Event-ID; none without one, since a first connection wants only what happens next. */
function missed(log: EventLog, lastEventId: string | null | undefined): BerthEvent[] {
  if (lastEventId == null || lastEventId.trim() === '') return [];
  const seq = Number(lastEventId);
  return Number.isInteger(seq) && seq >= 0 ? log.since(seq) : [];
}

function typeMatcher(types: readonly string[] | undefined): (event: BerthEvent) => boolean {
  const wanted = (types ?? []).map((t) => t.trim()).filter((t) => t !== '');
  if (wanted.length === 0) return () => true;
  return (event) => wanted.some((t) => (t.endsWith('.') ? event.type.startsWith(t) : event.type === t));
}

function frame(event: BerthEvent): string {
  // JSON.stringify escapes newlines, so the payload is always one data line.
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
