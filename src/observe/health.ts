import http from 'node:http';
import net from 'node:net';
import type { HealthCheckSpec } from '../render/types.js';
import type { LiveContainer, RuntimeDriver } from './types.js';

export interface ProbeResult {
  ok: boolean;
  message: string;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** Host address of a container port as published (0.0.0.0 → 127.0.0.1: berth only dials loopback-side). */
export function publishedAddress(container: LiveContainer, containerPort: number): { host: string; port: number } | undefined {
  const p = container.ports.find((x) => x.containerPort === containerPort && x.protocol === 'tcp');
  if (!p) return undefined;
  const host = !p.hostIp || p.hostIp === '0.0.0.0' || p.hostIp === '::' ? '127.0.0.1' : p.hostIp;
  return { host, port: p.hostPort };
}

function httpProbe(host: string, port: number, path: string, timeoutMs: number, expect?: number[]): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, timeout: timeoutMs, agent: false, headers: { 'user-agent': 'berth-health' } }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      const ok = expect?.length ? expect.includes(code) : code >= 200 && code < 400;
      resolve({ ok, message: `GET ${path} → ${code}` });
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, message: `GET ${path} on ${host}:${port}: ${err.message}` }));
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (r: ProbeResult) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, message: `tcp ${host}:${port}: timed out after ${timeoutMs} ms` }));
    socket.on('connect', () => done({ ok: true, message: `tcp ${host}:${port} open` }));
    socket.on('error', (err) => done({ ok: false, message: `tcp ${host}:${port}: ${err.message}` }));
  });
}

/** One probe of one replica. */
export async function probeOnce(hc: HealthCheckSpec, container: LiveContainer, runtime: RuntimeDriver): Promise<ProbeResult> {
  const timeoutMs = hc.timeoutSeconds * 1000;
  if (hc.exec) {
    try {
      const r = await runtime.exec(container.id, hc.exec.command, timeoutMs);
      return { ok: r.exitCode === 0, message: `exec ${hc.exec.command.join(' ')} → exit ${r.exitCode}${r.output ? `: ${r.output.slice(0, 200)}` : ''}` };
    } catch (err) {
      return { ok: false, message: `exec ${hc.exec.command.join(' ')}: ${(err as Error).message}` };
    }
  }
  const probe = hc.http ?? hc.tcp!;
  const addr = publishedAddress(container, probe.port);
  if (!addr) return { ok: false, message: `port ${probe.port} is not published by ${container.name}` };
  return hc.http ? httpProbe(addr.host, addr.port, hc.http.path, timeoutMs, hc.http.expectStatus) : tcpProbe(addr.host, addr.port, timeoutMs);
}

export type GateResult = { healthy: true; container: LiveContainer } | { healthy: false; reason: string };

/** Time a replica without a health check must stay up to count as started. */
const NO_CHECK_SETTLE_MS = 1000;

/**
 * Waits until a new replica is healthy: `successThreshold` consecutive passes. Fails on
 * `failureThreshold` consecutive failures after the start period, when the container exits or
 * restarts (a crash-looping container is never healthy), or after `timeoutTotalSeconds`.
 */
export async function waitHealthy(hc: HealthCheckSpec | undefined, container: LiveContainer, runtime: RuntimeDriver, clock: Clock = systemClock): Promise<GateResult> {
  const started = clock.now();
  const initial = await runtime.runtimeState(container.id);
  const baseRestarts = initial?.restartCount ?? 0;
  const crashed = async (): Promise<string | undefined> => {
    const s = await runtime.runtimeState(container.id);
    if (!s) return 'container disappeared';
    if (s.restartCount > baseRestarts || s.state === 'restarting') return `container is crash-looping (restarted ${s.restartCount - baseRestarts} time(s), last exit code ${s.exitCode})`;
    if (s.state !== 'running') return `container ${s.state} with exit code ${s.exitCode}${s.error ? `: ${s.error}` : ''}`;
    return undefined;
  };
  if (!hc) {
    await clock.sleep(NO_CHECK_SETTLE_MS);
    const why = await crashed();
    return why ? { healthy: false, reason: why } : { healthy: true, container };
  }
  let successes = 0;
  let failures = 0;
  let lastCountedFailure = -Infinity;
  let last = 'no probe ran';
  const intervalMs = hc.intervalSeconds * 1000;
  const deadline = started + hc.timeoutTotalSeconds * 1000;
  for (;;) {
    const why = await crashed();
    if (why) return { healthy: false, reason: `${why}; last probe: ${last}` };
    const r = await probeOnce(hc, container, runtime);
    last = r.message;
    if (r.ok) {
      failures = 0;
      if (++successes >= hc.successThreshold) return { healthy: true, container };
    } else {
      successes = 0;
      const now = clock.now();
      const inStartPeriod = now - started < hc.startPeriodSeconds * 1000;
      // Probes run fast until the first pass, but at most one failure counts per interval,
      // so failureThreshold × interval is the time an app gets before it is declared unhealthy.
      if (!inStartPeriod && now - lastCountedFailure >= intervalMs) {
        lastCountedFailure = now;
        if (++failures >= hc.failureThreshold) return { healthy: false, reason: `health check failed ${failures} times in a row: ${last}` };
      }
    }
    if (clock.now() >= deadline) return { healthy: false, reason: `not healthy after ${hc.timeoutTotalSeconds}s: ${last}` };
    await clock.sleep(successes === 0 ? Math.min(100, intervalMs) : intervalMs);
  }
}
