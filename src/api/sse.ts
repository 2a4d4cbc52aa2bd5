import type { EventBus } from '../events/bus.js';
import type { BerthEvent } from '../events/types.js';

type Listener = (event: BerthEvent) => void;

/** The last events of the bus (for clients that reconnect with Last-Event-ID) and live listeners. */
export class EventLog {
  readonly #ring: BerthEvent[] = [];
  readonly #listeners = new Set<Listener>();
  readonly #off: () => void;
  streams = 0;

  constructor(
    bus: EventBus,
    readonly size = 1000,
    readonly maxStreams = 100,
  ) {
    this.#off = bus.on('*', (e) => {
      this.#ring.push(e);
      if (this.#ring.length > size) this.#ring.shift();
      for (const l of this.#listeners) l(e);
    }, { name: 'event-stream' });
  }

  /** Events after `seq`, oldest first (as many as the ring still holds). */
  since(seq: number): BerthEvent[] {
    return this.#ring.filter((e) => e.seq > seq);
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  close(): void {
    this.#off();
    this.#listeners.clear();
  }
}

function frame(e: BerthEvent): string {
  return `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}

/**
 * A Server-Sent Events response: events after Last-Event-ID from the ring, then live ones, with a
 * heartbeat comment so proxies keep the connection open. `types` filters by type or prefix (`app.`).
 */
export function eventStream(log: EventLog, options: { lastEventId?: string | null; types?: string[]; heartbeatMs?: number; signal?: AbortSignal }): Response {
  if (log.streams >= log.maxStreams) return new Response(JSON.stringify({ error: `too many event streams (${log.maxStreams})` }), { status: 503, headers: { 'content-type': 'application/json' } });
  const wanted = (e: BerthEvent): boolean => !options.types?.length || options.types.some((t) => e.type === t || (t.endsWith('.') && e.type.startsWith(t)));
  const encoder = new TextEncoder();
  let cleanup = (): void => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      log.streams++;
      const send = (text: string): void => {
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          cleanup();
        }
      };
      send('retry: 2000\n\n');
      const last = Number(options.lastEventId);
      if (Number.isFinite(last) && last > 0) for (const e of log.since(last)) if (wanted(e)) send(frame(e));
      const off = log.subscribe((e) => wanted(e) && send(frame(e)));
      const heartbeat = setInterval(() => send(': heartbeat\n\n'), options.heartbeatMs ?? 15_000);
      heartbeat.unref();
      let closed = false;
      cleanup = () => {
        if (closed) return;
        closed = true;
        off();
        clearInterval(heartbeat);
        log.streams--;
        try {
          controller.close();
        } catch {
          // already closed by the client
        }
      };
      options.signal?.addEventListener('abort', () => cleanup(), { once: true });
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } });
}
