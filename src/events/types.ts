import type { EnvStatus } from '../status/types.js';
import type { AppResult, HealthStatus, ReasonCode, ReconcileResult } from '../status/vocabulary.js';

/**
 * What triggered a reconcile. `runtime` (a container event), `proxy` (the proxy's file changed by
 * hand) and `health` (a replica failed its health check) re-check live state against the revision
 * already fetched: they never wait on the Git server.
 */
export type Trigger = 'startup' | 'poll' | 'watch' | 'webhook' | 'manual' | 'cron' | 'retry' | 'cli' | 'runtime' | 'proxy' | 'health' | 'plugin' | 'scaler';

/** Steps of one app's rollout, in the order they usually happen. */
export type Phase = 'pull' | 'start' | 'wait' | 'switch' | 'drain' | 'stop' | 'remove' | 'done' | 'rolled-back' | 'failed' | 'skipped';

/** One app's outcome in a reconcile: the plan's actions for it, each carried out or not. */
export interface AppOutcome {
  app: string;
  result: AppResult;
  reason?: ReasonCode;
  /** What was done, e.g. ["started 2", "stopped 2", "route switched"]. */
  actions: string[];
  error?: string;
}

/** Every event berth emits, by type. Payloads are plain JSON: they go to logs, history, SSE and plugins as they are. */
export interface EventPayloads {
  'reconcile.started': { env: string; revision: string; trigger: Trigger; apps: number; counts: Record<string, number> };
  'reconcile.finished': {
    env: string;
    revision: string;
    trigger: Trigger;
    result: ReconcileResult;
    reason?: ReasonCode;
    /** True when nothing new happened (same revision in sync, drift only reported, every change held): not recorded in history. */
    noop: boolean;
    startedAt: string;
    finishedAt: string;
    durationMs: number;
    apps: AppOutcome[];
    error?: string;
    reloads: number;
  };
  'app.progress': { env: string; app: string; phase: Phase; message: string };
  'app.result': { env: string; revision: string } & AppOutcome;
  /**
   * Live state differs from the applied revision. `selfHeal`: berth is healing it now; false when it
   * only reports (selfHeal off, or `reason: 'HealLimitReached'`: healed too often, left alone).
   */
  'drift.detected': { env: string; revision: string; apps: string[]; selfHeal: boolean; description: string; reason?: ReasonCode; proxy?: string };
  /** berth re-applied the revision: live state matches it again. `description` says what was healed. */
  'drift.healed': { env: string; revision: string; apps: string[]; proxy?: string; description: string };
  /**
   * Drift reported earlier is gone without berth healing it: put back by hand, or `revision` (where it
   * was reported) is no longer the applied one because a newer revision was applied.
   */
  'drift.resolved': { env: string; revision: string; description: string };
  'health.changed': { env: string; app: string; previous?: HealthStatus; health: HealthStatus };
  /** A running replica failed its health check `failures` times in a row: berth replaces it. */
  'health.failed': { env: string; app: string; replica: string; containerId: string; failures: number; message: string };
  /** The environment's status was recomputed (after each reconcile and on every health change). */
  'status.changed': { env: string; status: EnvStatus };
  /** A plugin moved from one lifecycle state to another (src/plugins/lifecycle.ts); `reason` says why when it is not the plain path. */
  'plugin.stateChanged': { env: string; plugin: string; use: string; from: string; to: string; reason?: string };
  /** A scaler plugin set an app's replicas (within the repo's `scaling` bounds); not drift. */
  'scaling.decision': { env: string; app: string; scaler: string; from: number; to: number; declared: number; reason: string };
  /** Something failed outside a reconcile's own result: a source fetch, an observe. */
  'reconcile.error': { env: string; revision?: string; trigger: Trigger; reason: ReasonCode; message: string };
}

export type EventType = keyof EventPayloads;

/** Every event type, at run time (a new event must be added here: the compiler says so). */
export const EVENT_TYPES: readonly EventType[] = Object.keys({
  'reconcile.started': true,
  'reconcile.finished': true,
  'reconcile.error': true,
  'app.progress': true,
  'app.result': true,
  'drift.detected': true,
  'drift.healed': true,
  'drift.resolved': true,
  'health.changed': true,
  'health.failed': true,
  'status.changed': true,
  'plugin.stateChanged': true,
  'scaling.decision': true,
} satisfies Record<EventType, true>) as EventType[];

/** An event as subscribers receive it: its type, a sequence number and time, and the payload. */
export type BerthEvent<K extends EventType = EventType> = K extends EventType ? { type: K; seq: number; time: string } & EventPayloads[K] : never;
