import type { HealthCheckSpec } from '../render/types.js';
import type { LiveContainer, RuntimeDriver } from '../runtime/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { probeOnce } from './probe.js';

/** What a gate needs of a replica: its id (state, exec) and its published ports (probes). */
export type GateTarget = Pick<LiveContainer, 'id' | 'name' | 'ports'>;

export type GateResult<C extends GateTarget = LiveContainer> = { healthy: true; container: C } | { healthy: false; reason: string };

/** Time a replica without a health check must stay up to count as started. */
const NO_CHECK_SETTLE_MS = 1000;

/**
 * Waits until a new replica is healthy: `successThreshold` consecutive passes. Fails on
 * `failureThreshold` consecutive failures after the start period, when the container exits or
 * restarts (a crash-looping container is never healthy), or after `timeoutTotalSeconds`.
 */
export async function waitHealthy<C extends GateTarget>(hc: HealthCheckSpec | undefined, container: C, runtime: RuntimeDriver, clock: Clock = systemClock): Promise<GateResult<C>> {
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
