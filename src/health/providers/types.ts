/**
 * The health-check provider extension point: one protocol, one `check(target)`. Built-ins (http,
 * tcp, exec, grpc, redis) and plugin providers implement the same interface; apps select one in
 * `healthCheck` (a built-in by its own field, a plugin's by `healthCheck.provider.protocol`).
 */
import type { ExecResult } from '../../runtime/types.js';

/** What one check is pointed at. Built by the probe (probe.ts) for one replica and one check. */
export interface HealthCheckTarget {
  /**
   * Host to dial: where the checked container port is published (runtime/address.ts
   * publishedAddress; 0.0.0.0 becomes 127.0.0.1). Without a port (exec, a plugin check without
   * `port`), the host the replica's ports are published on, else 127.0.0.1.
   */
  host: string;
  /** The host port the checked container port is published at; undefined when the check names no port. */
  port?: number;
  /** The container port the app spec names (what the user wrote), for messages; undefined with `port`. */
  containerPort?: number;
  /** The replica being checked. */
  container: { id: string; name: string };
  /**
   * The protocol's own settings from the app spec: `healthCheck.<protocol>` for a built-in (e.g.
   * `{ port, service }` for grpc), `healthCheck.provider.config` for a plugin's protocol. Secret
   * references are resolved SecretValues: reveal() them only to use them, never to log or echo.
   */
  config: Readonly<Record<string, unknown>>;
  /** `healthCheck.timeoutSeconds` in ms: the check must answer within it (the signal aborts then too). */
  timeoutMs: number;
  /** Runs `command` inside the replica (RuntimeDriver.exec, bounded by timeoutMs), for exec-style checks. */
  exec(command: string[]): Promise<ExecResult>;
}

/** One check's answer. */
export interface HealthCheckResult {
  status: 'healthy' | 'unhealthy';
  /** Wall time of the check, measured with performance.now(). */
  latencyMs: number;
  /** What was seen, for people: `GET /health → 200`, `grpc … NOT_SERVING`. Never a secret. */
  message: string;
}

/** A health-check protocol. `check` must settle by `target.timeoutMs`, and stop early when `signal` aborts. */
export interface HealthCheckProvider {
  /** The name apps select: a built-in field name or `healthCheck.provider.protocol`. */
  readonly protocol: string;
  /** One line for people (`berth` lists providers with it). */
  readonly describe?: string;
  check(target: HealthCheckTarget, signal: AbortSignal): Promise<HealthCheckResult>;
}

/** Who registered a provider: `builtin`, or the plugin's name. */
export const BUILTIN_OWNER = 'builtin';

/** A registered provider, as `HealthProviders.list()` shows it. */
export interface RegisteredProvider {
  protocol: string;
  owner: string;
  describe?: string;
}

/** A result whose latency runs from `startedAt` (a performance.now() reading) to now. */
export function resultSince(startedAt: number, healthy: boolean, message: string): HealthCheckResult {
  return { status: healthy ? 'healthy' : 'unhealthy', latencyMs: Math.round((performance.now() - startedAt) * 100) / 100, message };
}
