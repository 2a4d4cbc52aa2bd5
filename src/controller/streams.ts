import type { Logger } from 'pino';
import { backoffDelay, type Backoff } from '../util/backoff.js';

/** How a followed stream is opened and what its events do. */
export interface FollowOptions<T> {
  /** For logs: "runtime events", "proxy file". */
  name: string;
  /** Opens the stream; it ends (or throws) when lost, and returns once `signal` aborts. */
  open(signal: AbortSignal): AsyncIterable<T>;
  onEvent(event: T): void;
  /**
   * The stream is back after it was lost: whatever happened meanwhile was missed, so re-check
   * everything once. Called when the reopened stream delivers or stays open for `settleMs`.
   */
  onResumed(): void;
  signal: AbortSignal;
  log: Pick<Logger, 'warn' | 'info'>;
  sleep(ms: number): Promise<void>;
  /** Reconnect delay: base, doubled per failure in a row, capped. Default 1 s to 30 s. */
  backoff?: Backoff;
  /** How long a reopened stream must stay open to count as back. Default 500 ms. */
  settleMs?: number;
  /** Fields for the log lines (env). */
  context?: Record<string, unknown>;
}

/**
 * Follows an event stream until `signal` aborts: a lost stream is reopened with backoff, and once
 * it is back `onResumed` asks for one full re-check (events may have been missed while it was gone).
 */
export async function follow<T>(o: FollowOptions<T>): Promise<void> {
  const backoff = o.backoff ?? { baseMs: 1000, maxMs: 30_000 };
  let failures = 0;
  let lost = false;
  while (!o.signal.aborted) {
    let settle: NodeJS.Timeout | undefined;
    const back = (): void => {
      clearTimeout(settle);
      failures = 0;
      if (!lost) return;
      lost = false;
      o.log.info({ ...o.context, stream: o.name }, 'event stream back; re-checking everything once');
      o.onResumed();
    };
    try {
      const stream = o.open(o.signal);
      if (lost) {
        settle = setTimeout(back, o.settleMs ?? 500);
        settle.unref();
      }
      for await (const event of stream) {
        back();
        o.onEvent(event);
      }
      if (!o.signal.aborted) o.log.warn({ ...o.context, stream: o.name }, 'event stream ended; reconnecting');
    } catch (err) {
      if (o.signal.aborted) return;
      o.log.warn({ ...o.context, stream: o.name, err: (err as Error).message }, 'event stream lost; reconnecting');
    } finally {
      clearTimeout(settle);
    }
    if (o.signal.aborted) return;
    lost = true;
    await o.sleep(backoffDelay(backoff, ++failures));
  }
}
