/**
 * PluginContext.appStats: what an app's running replicas use, read from the drivers berth already
 * has. The runtime gives CPU and memory per container (Docker's stats, read in parallel); a proxy
 * with counters gives requests/s as the difference of two readings of its request counter, so the
 * first reading of an app, and the first after a proxy reload (a new epoch), has none. nginx has no
 * `stats`: its apps get CPU and memory only.
 */
import type { ContainerStats, LiveContainer, ProxyAppStats, ProxyDriver, RuntimeDriver } from '../runtime/types.js';
import type { AppStats } from './types.js';

export interface AppStatsDeps {
  env: string;
  runtime: RuntimeDriver;
  proxy?: ProxyDriver;
  /** Milliseconds; the time between two counter readings. Default Date.now. */
  now?: () => number;
  /** A proxy that cannot be read: the reading goes on without its metrics. */
  onWarning?: (message: string, fields: Record<string, unknown>) => void;
}

/** The last counter reading of an app, to take the next one's difference from. */
interface CounterReading {
  epoch: string;
  requestsTotal: number;
  at: number;
}

function mean(values: readonly number[]): number | undefined {
  if (!values.length) return undefined;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Builds `appStats(app)` for one environment (it remembers each app's last proxy reading). */
export function appStatsSource(deps: AppStatsDeps): (app: string) => Promise<AppStats> {
  const now = deps.now ?? Date.now;
  const last = new Map<string, CounterReading>();

  const containerStats = async (containers: LiveContainer[]): Promise<ContainerStats[]> => {
    const stats = deps.runtime.stats;
    if (!stats) return [];
    // A replica that goes away while it is read is left out, not an error of the whole reading.
    const read = await Promise.allSettled(containers.map((c) => stats.call(deps.runtime, c.id)));
    return read.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
  };

  const proxyStats = async (app: string): Promise<Pick<AppStats, 'requestsPerSecond' | 'meanResponseMs' | 'p95Ms'> | undefined> => {
    const stats = deps.proxy?.stats;
    if (!stats) return undefined;
    let reading: ProxyAppStats | undefined;
    try {
      reading = await stats.call(deps.proxy, deps.env, app);
    } catch (err) {
      deps.onWarning?.('proxy stats could not be read', { env: deps.env, app, proxy: deps.proxy!.name, err: (err as Error).message });
      return undefined;
    }
    if (!reading) return undefined;
    const at = now();
    const before = last.get(app);
    last.set(app, { epoch: reading.epoch, requestsTotal: reading.requestsTotal, at });
    const seconds = before ? (at - before.at) / 1000 : 0;
    // Another epoch (a reload), or a counter that went back: no rate from this pair.
    const comparable = before && before.epoch === reading.epoch && reading.requestsTotal >= before.requestsTotal && seconds > 0;
    return {
      ...(comparable && { requestsPerSecond: (reading.requestsTotal - before.requestsTotal) / seconds }),
      ...(reading.meanResponseMs !== undefined && { meanResponseMs: reading.meanResponseMs }),
      ...(reading.p95Ms !== undefined && { p95Ms: reading.p95Ms }),
    };
  };

  return async (app) => {
    const containers = (await deps.runtime.list(deps.env)).filter((c) => c.app === app && c.state === 'running');
    const [measured, traffic] = await Promise.all([containerStats(containers), proxyStats(app)]);
    const cpuPercent = mean(measured.map((s) => s.cpuPercent));
    const memoryBytes = mean(measured.map((s) => s.memoryBytes));
    const memoryPercent = mean(measured.filter((s) => s.memoryLimitBytes > 0).map((s) => (s.memoryBytes / s.memoryLimitBytes) * 100));
    const fromProxy = traffic && Object.keys(traffic).length > 0;
    return {
      replicas: containers.length,
      ...(cpuPercent !== undefined && { cpuPercent }),
      ...(memoryBytes !== undefined && { memoryBytes }),
      ...(memoryPercent !== undefined && { memoryPercent }),
      ...traffic,
      source: [...(measured.length ? [deps.runtime.name] : []), ...(fromProxy ? [deps.proxy!.name] : [])],
    };
  };
}
