import { timingSafeEqual } from 'node:crypto';

/**
 * Compares two secrets (a token, a signature) in constant time: unequal lengths take as long as
 * equal ones, so the time taken tells nothing about either.
 */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  // timingSafeEqual needs equal lengths; comparing `x` with itself keeps the time the same.
  return x.length === y.length ? timingSafeEqual(x, y) : (timingSafeEqual(x, x), false);
}
