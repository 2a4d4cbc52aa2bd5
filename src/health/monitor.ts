import type { Logger } from '../log.js';
import type { HealthCheckSpec } from '../render/types.js';
import type { LiveContainer, RuntimeDriver } from '../runtime/types.js';
import type { HealthStatus } from '../status/vocabulary.js';
import type { Clock } from '../util/clock.js';
import { probeOnce, type ProbeResult } from './probe.js';
import { Slots } from '../util/slots.js';

/** An app the monitor watches: its desired spec and how to probe it. */
export interface MonitoredApp {
  app: string;
  specHash: string;
  replicas: number;
  healthCheck?: HealthCheckSpec;
}

/** What the monitor knows of one replica. */
export interface ReplicaHealth {
  containerId: string;
  name: string;
  /** undefined until the first probe */
  ok?: boolean;
  message: string;
  latencyMs?: number;
  checkedAt?: number;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  /** the threshold verdict: true after successThreshold passes, false after failureThreshold failures (outside the start period), undefined before either */
  healthy?: boolean;
}

/** A running replica whose health check failed `failureThreshold` times in a row: it should be replaced. */
export interface FailedReplica {
  app: string;
  containerId: string;
  name: string;
  /** Consecutive failures so far. */
  failures: number;
  /** The last probe's answer, e.g. "GET /health → 500". */
  message: string;
}

/** Everything the monitor touches, handed in. */
export interface HealthMonitorDeps {
  runtime: RuntimeDriver;
  clock: Clock;
  /** called when an app's HealthStatus changes (status or message); never awaited by the monitor's callers */
  onChange?: (app: string, previous: HealthStatus | undefined, next: HealthStatus) => void;
  /** for units: schedule a callback (default setTimeout with unref) */
  schedule?: (fn: () => void, ms: number) => { cancel(): void };
  /** Where a throwing onChange listener is reported (it never breaks the monitor). */
  log?: Pick<Logger, 'warn'>;
}

/** Probes in flight at once, over all replicas: enough for a busy host without flooding dockerd. */
const MAX_PARALLEL = 16;
/** Without a health check there is nothing to probe, only the container's state to re-read. */
const NO_CHECK_INTERVAL_MS = 5000;
/** Docker states that mean the replica went down on its own (created, paused, removing do not). */
const CRASHED_STATES: ReadonlySet<LiveContainer['state']> = new Set(['exited', 'dead', 'restarting']);

interface Tracked {
  app: string;
  container: LiveContainer;
  health: ReplicaHealth;
  /** When the monitor first saw it running: the start period counts from here. */
  since: number;
  /** Restart count at the last state check (no health check), to see it rise. */
  restarts?: number;
  inFlight?: Promise<void>;
  timer?: { cancel(): void };
}

function defaultSchedule(fn: () => void, ms: number): { cancel(): void } {
  const timer = setTimeout(fn, ms);
  // A monitor alone must not keep a one-shot command's process alive.
  timer.unref();
  return { cancel: () => clearTimeout(timer) };
}

function unprobed(c: LiveContainer): ReplicaHealth {
  return { containerId: c.id, name: c.name, message: 'not probed yet', consecutiveFailures: 0, consecutiveSuccesses: 0 };
}

/** The rules of the brief, in their order of precedence: a pure function of the counted replicas. */
function assess(app: MonitoredApp, replicas: readonly Tracked[]): HealthStatus {
  const desired = app.replicas;
  if (desired === 0) return { status: 'Suspended', message: 'scaled to 0 replicas' };
  const running = replicas.filter((r) => r.container.state === 'running');
  const crashed = replicas.filter((r) => CRASHED_STATES.has(r.container.state));
  const crashText = (r: Tracked): string => `${r.container.name}: ${r.container.status}`;
  if (running.length === 0) return { status: 'Missing', message: `no running replica (0/${desired})${crashed[0] ? `; ${crashText(crashed[0])}` : ''}` };
  const failing = running.filter((r) => r.health.healthy === false);
  if (failing[0]) return { status: 'Degraded', reason: 'HealthCheckFailed', message: `${failing.length}/${desired} replicas failing: ${failing[0].health.message}` };
  if (crashed[0]) return { status: 'Degraded', reason: 'Crashed', message: `${crashed.length}/${desired} replicas not running: ${crashText(crashed[0])}` };
  const healthy = running.filter((r) => r.health.healthy === true).length;
  if (running.length < desired) return { status: 'Progressing', message: `${running.length}/${desired} replicas running` };
  if (healthy === running.length) return { status: 'Healthy', message: `${healthy}/${desired} replicas healthy` };
  return { status: 'Progressing', message: `${healthy}/${desired} replicas healthy, ${running.length - healthy} awaiting health check` };
}

/** Thresholds in effect: without a health check one state check decides either way. */
function thresholdsOf(hc: HealthCheckSpec | undefined): { success: number; failure: number; startMs: number; intervalMs: number } {
  if (!hc) return { success: 1, failure: 1, startMs: 0, intervalMs: NO_CHECK_INTERVAL_MS };
  return { success: hc.successThreshold, failure: hc.failureThreshold, startMs: hc.startPeriodSeconds * 1000, intervalMs: hc.intervalSeconds * 1000 };
}

/**
 * Watches the replicas of the desired apps and keeps each app's HealthStatus current: the
 * continuous counterpart of the one-off rollout gate (`gate.ts`).
 */
export class HealthMonitor {
  readonly #deps: HealthMonitorDeps;
  readonly #schedule: NonNullable<HealthMonitorDeps['schedule']>;
  readonly #slots = new Slots(MAX_PARALLEL);
  #apps = new Map<string, MonitoredApp>();
  readonly #replicas = new Map<string, Tracked>();
  readonly #status = new Map<string, HealthStatus>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #failedListeners = new Set<(replica: FailedReplica) => void>();
  #started = false;

  constructor(deps: HealthMonitorDeps) {
    this.#deps = deps;
    this.#schedule = deps.schedule ?? defaultSchedule;
  }

  /** Sets what to watch; replicas that left are forgotten, new ones start unprobed. May fire onChange. */
  update(apps: MonitoredApp[], containers: LiveContainer[]): void {
    this.#apps = new Map(apps.map((a) => [a.app, a]));
    const counted = containers.filter((c) => this.#apps.get(c.app)?.specHash === c.specHash);
    const seen = new Set(counted.map((c) => c.id));
    for (const [id, t] of this.#replicas) {
      if (seen.has(id)) continue;
      t.timer?.cancel();
      this.#replicas.delete(id);
    }
    for (const c of counted) this.#track(c);
    for (const app of this.#status.keys()) if (!this.#apps.has(app)) this.#status.delete(app);
    for (const app of this.#apps.keys()) this.#reassess(app);
  }

  /** One probe of every watched running replica now, at most 16 at once; resolves when all are done. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.#replicas.values()].map((t) => this.#probe(t)));
  }

  /** Probes every watched running replica each interval until stop(). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const t of this.#replicas.values()) this.#arm(t, 0);
  }

  /** Cancels the timers and waits for the probes in flight. */
  async stop(): Promise<void> {
    this.#started = false;
    for (const t of this.#replicas.values()) {
      t.timer?.cancel();
      t.timer = undefined;
    }
    await Promise.allSettled([...this.#inFlight]);
  }

  /** An app's current health; `Unknown` for an app the monitor does not watch. */
  healthOf(app: string): HealthStatus {
    const status = this.#status.get(app);
    return status ? { ...status } : { status: 'Unknown' };
  }

  /**
   * Running replicas of apps with a health check whose verdict is unhealthy (failureThreshold
   * failures in a row, outside the start period): what the controller replaces.
   */
  failedReplicas(): FailedReplica[] {
    const failed: FailedReplica[] = [];
    for (const t of this.#replicas.values()) if (this.#failing(t)) failed.push(this.#failedOf(t));
    return failed.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Calls `listener` each time a replica turns unhealthy (once per turn, not per failed probe); returns the unsubscribe. */
  onReplicaFailed(listener: (replica: FailedReplica) => void): () => void {
    this.#failedListeners.add(listener);
    return () => void this.#failedListeners.delete(listener);
  }

  /** Probes one watched replica now (Docker reported a health_status change): its verdict is fresh at once. */
  async probeNow(containerId: string): Promise<void> {
    const t = this.#replicas.get(containerId);
    if (t) await this.#probe(t);
  }

  /** The counted replicas of an app, by name. */
  replicas(app: string): ReplicaHealth[] {
    return this.#replicasOf(app).map((t) => ({ ...t.health }));
  }

  #replicasOf(app: string): Tracked[] {
    return [...this.#replicas.values()].filter((t) => t.app === app).sort((a, b) => a.container.name.localeCompare(b.container.name));
  }

  #track(c: LiveContainer): void {
    const now = this.#deps.clock.now();
    let t = this.#replicas.get(c.id);
    if (!t) {
      t = { app: c.app, container: c, health: unprobed(c), since: now };
      this.#replicas.set(c.id, t);
      if (this.#started) this.#arm(t, 0);
    } else if (t.container.state !== 'running' && c.state === 'running') {
      // Back up after going down: an old verdict says nothing about the new process.
      t.health = unprobed(c);
      t.since = now;
    }
    t.container = c;
    // Without a health check, being seen running is the only evidence to be had until a state check.
    if (c.state === 'running' && t.health.healthy === undefined && !this.#apps.get(c.app)?.healthCheck) {
      t.health = { ...t.health, healthy: true, message: 'running' };
    }
  }

  #arm(t: Tracked, ms: number): void {
    t.timer = this.#schedule(() => {
      t.timer = undefined;
      void this.#tick(t);
    }, ms);
  }

  async #tick(t: Tracked): Promise<void> {
    await this.#probe(t);
    // Re-armed only after the probe finished, so a slow probe delays the next instead of piling up.
    if (this.#started && !t.timer && this.#replicas.get(t.container.id) === t) this.#arm(t, thresholdsOf(this.#apps.get(t.app)?.healthCheck).intervalMs);
  }

  /** Probes one replica, or joins the probe already running on it: probes of a replica never overlap. */
  #probe(t: Tracked): Promise<void> {
    if (t.inFlight) return t.inFlight;
    if (t.container.state !== 'running') return Promise.resolve();
    const probe = this.#slots
      .run(() => this.#check(t))
      .then(({ result, latencyMs }) => this.#record(t, result, latencyMs))
      .finally(() => {
        t.inFlight = undefined;
        this.#inFlight.delete(probe);
      });
    t.inFlight = probe;
    this.#inFlight.add(probe);
    return probe;
  }

  async #check(t: Tracked): Promise<{ result: ProbeResult; latencyMs: number }> {
    const { clock, runtime } = this.#deps;
    const hc = this.#apps.get(t.app)?.healthCheck;
    const started = clock.now();
    let result: ProbeResult;
    try {
      result = hc ? await probeOnce(hc, t.container, runtime) : await this.#checkState(t);
    } catch (err) {
      result = { ok: false, message: (err as Error).message };
    }
    return { result, latencyMs: clock.now() - started };
  }

  /** Without a health check: the replica is fine while it runs and has not restarted since the last look. */
  async #checkState(t: Tracked): Promise<ProbeResult> {
    const s = await this.#deps.runtime.runtimeState(t.container.id);
    if (!s) return { ok: false, message: 'container disappeared' };
    const before = t.restarts;
    t.restarts = s.restartCount;
    if (s.state !== 'running') return { ok: false, message: `container ${s.state} with exit code ${s.exitCode}${s.error ? `: ${s.error}` : ''}` };
    if (before !== undefined && s.restartCount > before) return { ok: false, message: `container restarted ${s.restartCount - before} time(s) since the last check, last exit code ${s.exitCode}` };
    return { ok: true, message: 'running' };
  }

  #failing(t: Tracked): boolean {
    return t.health.healthy === false && t.container.state === 'running' && this.#apps.get(t.app)?.healthCheck !== undefined;
  }

  #failedOf(t: Tracked): FailedReplica {
    return { app: t.app, containerId: t.container.id, name: t.container.name, failures: t.health.consecutiveFailures, message: t.health.message };
  }

  #record(t: Tracked, result: ProbeResult, latencyMs: number): void {
    // Forgotten while the probe ran: its answer no longer describes anything watched.
    if (this.#replicas.get(t.container.id) !== t) return;
    const wasFailing = this.#failing(t);
    const now = this.#deps.clock.now();
    const th = thresholdsOf(this.#apps.get(t.app)?.healthCheck);
    const h: ReplicaHealth = { ...t.health, ok: result.ok, message: result.message, latencyMs, checkedAt: now };
    if (result.ok) {
      h.consecutiveFailures = 0;
      if (++h.consecutiveSuccesses >= th.success) h.healthy = true;
    } else {
      h.consecutiveSuccesses = 0;
      if (now - t.since >= th.startMs && ++h.consecutiveFailures >= th.failure) h.healthy = false;
    }
    t.health = h;
    this.#reassess(t.app);
    if (!wasFailing && this.#failing(t)) this.#announceFailed(t);
  }

  #announceFailed(t: Tracked): void {
    const failed = this.#failedOf(t);
    for (const listener of this.#failedListeners) {
      try {
        listener({ ...failed });
      } catch (err) {
        this.#deps.log?.warn({ app: t.app, err: (err as Error).message }, 'health listener failed');
      }
    }
  }

  #reassess(appName: string): void {
    const app = this.#apps.get(appName);
    if (!app) return;
    const previous = this.#status.get(appName);
    const next = assess(app, this.#replicasOf(appName));
    this.#status.set(appName, next);
    if (previous?.status === next.status && previous.message === next.message) return;
    try {
      this.#deps.onChange?.(appName, previous && { ...previous }, { ...next });
    } catch (err) {
      this.#deps.log?.warn({ app: appName, err: (err as Error).message }, 'health listener failed');
    }
  }
}
