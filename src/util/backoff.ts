/** Exponential backoff: a base delay, doubled per failure in a row, capped. */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

/** The delay after the `failures`-th failure in a row (1 for the first): base × 2^(failures − 1), at most `maxMs`. */
export function backoffDelay({ baseMs, maxMs }: Backoff, failures: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 16));
}
