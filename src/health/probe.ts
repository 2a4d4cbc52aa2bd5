import type { HealthCheckSpec } from '../render/types.js';
import { publishedAddress } from '../runtime/address.js';
import type { LiveContainer, RuntimeDriver } from '../runtime/types.js';
import { healthProviders, type HealthProviders } from './providers/index.js';
import type { HealthCheckResult, HealthCheckTarget } from './providers/types.js';

export interface ProbeResult {
  ok: boolean;
  message: string;
  /** How long the check took (the provider's measure). Set by probeOnce; absent on results made elsewhere (the monitor's state checks). */
  latencyMs?: number;
}

/** A provider that ignores its signal is given this long past the timeout before the probe answers for it. */
const OVERDUE_GRACE_MS = 1000;

/** Which protocol a spec selects, with its settings and the container port it names. */
interface Selection {
  protocol: string;
  port?: number;
  config: Readonly<Record<string, unknown>>;
}

/** The spec's one protocol field (the schema allows exactly one), as a provider selection. */
function selectionOf(hc: HealthCheckSpec): Selection | undefined {
  if (hc.http) return { protocol: 'http', port: hc.http.port, config: { ...hc.http } };
  if (hc.tcp) return { protocol: 'tcp', port: hc.tcp.port, config: { ...hc.tcp } };
  if (hc.exec) return { protocol: 'exec', config: { ...hc.exec } };
  if (hc.grpc) return { protocol: 'grpc', port: hc.grpc.port, config: { ...hc.grpc } };
  if (hc.redis) return { protocol: 'redis', port: hc.redis.port, config: { ...hc.redis } };
  if (hc.provider) return { protocol: hc.provider.protocol, ...(hc.provider.port !== undefined && { port: hc.provider.port }), config: hc.provider.config ?? {} };
  return undefined;
}

/** The host a replica's ports are published on (for checks that name no port). */
function hostOf(container: Pick<LiveContainer, 'ports'>): string {
  const first = (container.ports ?? []).find((p) => p.protocol === 'tcp');
  return (first && publishedAddress(container, first.containerPort)?.host) ?? '127.0.0.1';
}

/**
 * One probe of one replica: picks the provider of the spec's protocol (from `providers`, by default
 * the process's built-ins plus what plugins registered) and runs one check, bounded by the timeout.
 * Never throws: a missing provider, an unpublished port or a provider that throws is a failed check.
 */
export async function probeOnce(hc: HealthCheckSpec, container: Pick<LiveContainer, 'id' | 'name' | 'ports'>, runtime: RuntimeDriver, providers: HealthProviders = healthProviders): Promise<ProbeResult> {
  const timeoutMs = hc.timeoutSeconds * 1000;
  const selection = selectionOf(hc);
  if (!selection) return { ok: false, message: 'health check names no protocol (set one of http, tcp, exec, grpc, redis or provider)', latencyMs: 0 };
  const provider = providers.get(selection.protocol);
  if (!provider) return { ok: false, message: `no health-check provider for protocol "${selection.protocol}" (plugins enabled: ${providers.describePlugins()})`, latencyMs: 0 };
  let host: string;
  let port: number | undefined;
  if (selection.port !== undefined) {
    const addr = publishedAddress(container, selection.port);
    if (!addr) return { ok: false, message: `port ${selection.port} is not published by ${container.name}`, latencyMs: 0 };
    ({ host, port } = addr);
  } else host = hostOf(container);
  const target: HealthCheckTarget = {
    host,
    ...(port !== undefined && { port, containerPort: selection.port }),
    container: { id: container.id, name: container.name },
    config: selection.config,
    timeoutMs,
    exec: (command) => runtime.exec(container.id, command, timeoutMs),
  };
  const r = await runBounded(selection.protocol, timeoutMs, (signal) => provider.check(target, signal));
  return { ok: r.status === 'healthy', message: r.message, latencyMs: r.latencyMs };
}

/**
 * Runs one check with a signal that aborts at the timeout, and answers for a provider that is still
 * silent a grace period later (a plugin that ignores its signal must not stall a rollout).
 */
async function runBounded(protocol: string, timeoutMs: number, check: (signal: AbortSignal) => Promise<HealthCheckResult>): Promise<HealthCheckResult> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
  const controller = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  // Not unref'd: a probe in flight is work (a gate waits on it), and both timers end with the check.
  const later = (ms: number, fn: () => void) => void timers.push(setTimeout(fn, ms));
  later(timeoutMs, () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)));
  const overdue = new Promise<HealthCheckResult>((resolve) => {
    later(timeoutMs + OVERDUE_GRACE_MS, () => resolve({ status: 'unhealthy', latencyMs: elapsed(), message: `${protocol} check timed out after ${timeoutMs} ms (the provider did not answer)` }));
  });
  try {
    const r = await Promise.race([check(controller.signal), overdue]);
    // A plugin's answer is checked, not trusted: anything but 'healthy' fails.
    const message = typeof r?.message === 'string' ? r.message : `${protocol} check gave no message`;
    const latencyMs = typeof r?.latencyMs === 'number' && Number.isFinite(r.latencyMs) ? r.latencyMs : elapsed();
    return { status: r?.status === 'healthy' ? 'healthy' : 'unhealthy', latencyMs, message };
  } catch (err) {
    return { status: 'unhealthy', latencyMs: elapsed(), message: `${protocol} check failed: ${(err as Error)?.message ?? String(err)}` };
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
