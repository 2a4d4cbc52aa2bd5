/**
 * Traffic counters of one backend from HAProxy's Runtime API (`show stat <backend> 2 -1`: the
 * BACKEND row only). HAProxy keeps counters and moving averages there, no percentiles:
 *
 * - `req_tot`: HTTP requests passed to the backend since the worker started (a counter; a reload's
 *   new worker starts at 0). Requests per second are the difference of two readings: see
 *   src/plugins/app-stats.ts. (`req_rate` is a frontend column, empty on a backend.)
 * - `rtime`: mean time to the response headers over the last 1024 requests, ms. A mean hides a slow
 *   tail, so it is reported as a mean and never passed off as a p95.
 *
 * A p95 needs each request's time (HAProxy's log lines, `%Tr`), which berth does not collect.
 */
import type { RuntimeApi } from './runtime-api.js';
import { NAME_PATTERN } from './names.js';

export interface BackendStats {
  requestsTotal: number;
  /** Undefined when HAProxy leaves the column empty (a backend not in HTTP mode). */
  meanResponseMs?: number;
}

/** The BACKEND row of a `show stat` reply (CSV with a `# pxname,svname,…` header), or undefined when there is none. */
export function parseBackendStats(reply: string, backend: string): BackendStats | undefined {
  const lines = reply.split('\n');
  const head = lines.find((l) => l.startsWith('# '));
  if (!head) return undefined;
  const col = new Map(head.replace(/^#\s*/, '').split(',').map((name, i) => [name, i] as const));
  for (const line of lines) {
    if (!line || line.startsWith('#')) continue;
    const cells = line.split(',');
    const cell = (name: string): string => cells[col.get(name) ?? -1] ?? '';
    if (cell('pxname') !== backend || cell('svname') !== 'BACKEND') continue;
    const requestsTotal = Number(cell('req_tot'));
    if (cell('req_tot') === '' || !Number.isFinite(requestsTotal)) return undefined;
    const rtime = cell('rtime');
    return { requestsTotal, ...(rtime !== '' && Number.isFinite(Number(rtime)) && { meanResponseMs: Number(rtime) }) };
  }
  return undefined;
}

/** Reads one backend's counters; undefined when HAProxy does not run it (or the socket does not answer). */
export async function readBackendStats(api: RuntimeApi, backend: string): Promise<BackendStats | undefined> {
  if (!NAME_PATTERN.test(backend)) throw new Error(`not a HAProxy name: ${JSON.stringify(backend)}`);
  const reply = await api.send(`show stat ${backend} 2 -1`);
  return parseBackendStats(reply, backend);
}
