import type { BerthEvent, EventPayloads, EventType } from './types.js';

export type Handler<K extends EventType> = (event: BerthEvent<K>) => void | Promise<void>;

export interface SubscribeOptions {
  /** A name for errors and dropped-event warnings. */
  name?: string;
  /** Events a slow subscriber may have waiting before the oldest are dropped (and reported). */
  maxQueue?: number;
  /** Only the newest event matters (a status snapshot): a waiting one is replaced, silently. */
  latestOnly?: boolean;
}

interface Subscriber {
  types: ReadonlySet<string> | '*';
  handler: (event: BerthEvent) => void | Promise<void>;
  name: string;
  queue: BerthEvent[];
  maxQueue: number;
  latestOnly: boolean;
  draining: Promise<void> | undefined;
  dropped: number;
}

/**
 * An in-process, typed event bus. `emit` never waits for a subscriber: each subscriber has its own
 * queue, drained in order, so a slow one (a forge status reporter) never blocks a reconcile or the
 * others. A subscriber that throws is reported through `onError` and keeps receiving events.
 */
export class EventBus {
  readonly #subscribers = new Set<Subscriber>();
  readonly #onError: (name: string, err: unknown, event?: BerthEvent) => void;
  readonly #now: () => number;
  #seq = 0;

  constructor(options: { onError?: (name: string, err: unknown, event?: BerthEvent) => void; now?: () => number } = {}) {
    this.#onError = options.onError ?? ((name, err) => process.stderr.write(`event subscriber ${name} failed: ${(err as Error)?.message ?? String(err)}\n`));
    this.#now = options.now ?? Date.now;
  }

  /** Subscribes to some event types (or '*'); returns the unsubscribe function. */
  on<K extends EventType>(types: K | readonly K[] | '*', handler: Handler<K>, options: SubscribeOptions = {}): () => void {
    const sub: Subscriber = {
      types: types === '*' ? '*' : new Set(Array.isArray(types) ? types : [types]),
      handler: handler as (event: BerthEvent) => void | Promise<void>,
      name: options.name ?? (types === '*' ? 'subscriber(*)' : `subscriber(${String(types)})`),
      queue: [],
      maxQueue: options.maxQueue ?? 10_000,
      latestOnly: options.latestOnly ?? false,
      draining: undefined,
      dropped: 0,
    };
    this.#subscribers.add(sub);
    return () => void this.#subscribers.delete(sub);
  }

  /** Publishes an event to every subscriber of its type; returns it as delivered. */
  emit<K extends EventType>(type: K, payload: EventPayloads[K]): BerthEvent<K> {
    const event = { type, seq: ++this.#seq, time: new Date(this.#now()).toISOString(), ...payload } as unknown as BerthEvent<K>;
    for (const sub of this.#subscribers) {
      if (sub.types !== '*' && !sub.types.has(type)) continue;
      if (sub.latestOnly) sub.queue.length = 0;
      else if (sub.queue.length >= sub.maxQueue) {
        sub.queue.shift();
        if (sub.dropped++ === 0) this.#onError(sub.name, new Error(`subscriber is too slow: dropping its oldest events (queue of ${sub.maxQueue})`));
      }
      sub.queue.push(event as BerthEvent);
      sub.draining ??= this.#drain(sub);
    }
    return event;
  }

  async #drain(sub: Subscriber): Promise<void> {
    // Start on a later tick: emit returns before any subscriber runs.
    await Promise.resolve();
    try {
      for (let event = sub.queue.shift(); event; event = sub.queue.shift()) {
        try {
          await sub.handler(event);
        } catch (err) {
          this.#onError(sub.name, err, event);
        }
      }
    } finally {
      sub.draining = undefined;
    }
  }

  /** Resolves once every event emitted so far has been handled (shutdown, one-shot commands, tests). */
  async flush(): Promise<void> {
    for (;;) {
      const pending = [...this.#subscribers].map((s) => s.draining).filter((d): d is Promise<void> => d !== undefined);
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }
}
