/**
 * The scaling loop: asks scaler plugins, at their interval, for the replicas of every app that
 * declares `scaling: { min, max }`. The first proposal in priority order wins; it is clamped to the
 * bounds, kept in the reconciler's memory (so it survives a restart), announced as a
 * `scaling.decision` event, and applied by a reconcile (trigger `scaler`), which does not count it as
 * drift. A proposal equal to the current count changes nothing.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import type { Trigger } from '../events/types.js';
import type { PluginHost } from '../plugins/host.js';
import type { ReconcileMemory } from '../reconcile/memory.js';
import type { DesiredState } from '../render/types.js';
import type { Metrics } from '../report/metrics.js';
import type { Clock } from '../util/clock.js';

export interface ScalingDeps {
  env: string;
  scalers: () => ReturnType<PluginHost['scalers']>;
  /** The desired state last reconciled (apps scaled before carry `scaledFrom`), and the memory decisions go in. */
  desired: () => DesiredState | undefined;
  memory: () => ReconcileMemory;
  trigger: (trigger: Trigger) => void;
  bus: EventBus;
  metrics: Metrics;
  clock: Clock;
  log: Logger;
}

export class ScalingLoop {
  readonly #deps: ScalingDeps;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(deps: ScalingDeps) {
    this.#deps = deps;
  }

  /** One round: every scaled app asked once. Returns the decisions made (apps whose replicas changed). */
  async tick(): Promise<{ app: string; from: number; to: number; scaler: string }[]> {
    if (this.#busy) return [];
    this.#busy = true;
    try {
      const { env, bus, metrics, log } = this.#deps;
      const desired = this.#deps.desired();
      const scalers = this.#deps.scalers();
      if (!desired || !scalers.length) return [];
      const memory = this.#deps.memory();
      const decisions: { app: string; from: number; to: number; scaler: string }[] = [];
      const now = new Date(this.#deps.clock.now());
      for (const app of desired.apps) {
        const bounds = app.spec.scaling;
        if (bounds?.min === undefined || bounds.max === undefined) continue;
        const declared = app.scaledFrom ?? app.spec.replicas;
        // Within today's bounds: a commit may have narrowed them since the decision, and berth runs the clamped count.
        const remembered = memory.scaled?.[app.name]?.replicas;
        const current = remembered === undefined ? declared : Math.min(bounds.max, Math.max(bounds.min, remembered));
        for (const scaler of scalers) {
          const proposal = await scaler.propose({ env, app: app.name, declared, current, min: bounds.min, max: bounds.max, now });
          if (!proposal || !Number.isInteger(proposal.replicas)) continue;
          const to = Math.min(bounds.max, Math.max(bounds.min, proposal.replicas));
          if (to !== current) {
            memory.scaled = { ...memory.scaled, [app.name]: { replicas: to, scaler: scaler.name, reason: proposal.reason, at: now.toISOString(), pending: true } };
            bus.emit('scaling.decision', { env, app: app.name, scaler: scaler.name, from: current, to, declared, reason: proposal.reason });
            metrics.scalingDecisions.inc({ env, app: app.name, scaler: scaler.name });
            log.info({ env, app: app.name, scaler: scaler.name, from: current, to, reason: proposal.reason }, 'scaling decision');
            decisions.push({ app: app.name, from: current, to, scaler: scaler.name });
          }
          break;
        }
      }
      // Decisions of apps that lost their bounds (or left the repo) are forgotten.
      for (const name of Object.keys(memory.scaled ?? {})) {
        const app = desired.apps.find((a) => a.name === name);
        if (app?.spec.scaling?.min === undefined || app.spec.scaling.max === undefined) delete memory.scaled![name];
      }
      if (decisions.length) this.#deps.trigger('scaler');
      return decisions;
    } finally {
      this.#busy = false;
    }
  }

  /** Ticks at the shortest interval any scaler asks for (re-read each round). */
  start(): () => void {
    let stopped = false;
    const schedule = () => {
      if (stopped) return;
      const intervals = this.#deps.scalers().map((s) => s.intervalSeconds).filter((s) => Number.isFinite(s) && s > 0);
      // No scaler yet (plugins start with the first reconcile): look again soon rather than in 30 s.
      const seconds = intervals.length ? Math.min(30, ...intervals) : 2;
      this.#timer = setTimeout(() => void this.tick().catch((err: unknown) => this.#deps.log.warn({ err: (err as Error).message }, 'scaling round failed')).finally(schedule), Math.max(1, seconds) * 1000);
      this.#timer.unref();
    };
    schedule();
    return () => {
      stopped = true;
      clearTimeout(this.#timer);
    };
  }
}
