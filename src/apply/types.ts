import type { AppOutcome, Phase } from '../events/types.js';
import type { StrategyType } from '../render/types.js';
import type { ProxyDriver, PublishedPort, RuntimeDriver } from '../runtime/types.js';
import type { ReconcileResult } from '../status/vocabulary.js';
import type { Clock } from '../util/clock.js';

export type { AppOutcome, Phase };

/** One step of an app's rollout, as progress output, logs and the event stream show it. */
export interface ApplyProgress {
  app: string;
  phase: Phase;
  message: string;
}

/** What a rollout hook is told (lifecycle-hook plugins attach here). */
export interface HookContext {
  env: string;
  revision: string;
  app: string;
  strategy: StrategyType;
  /** Replicas involved in this step (starting, now serving, or rolled back). */
  replicas: string[];
  reason?: string;
}

/**
 * Points in every rollout where code can run: before replicas start, after traffic switches, and
 * when a rollout rolls back. A hook that throws before a start fails that app (rolled back when it
 * had started anything); after a switch or on rollback it is reported and the rollout goes on.
 */
export interface RolloutHooks {
  beforeStart?(ctx: HookContext): Promise<void> | void;
  afterSwitch?(ctx: HookContext): Promise<void> | void;
  onRollback?(ctx: HookContext): Promise<void> | void;
}

export interface ApplyReport {
  env: string;
  revision: string;
  result: ReconcileResult;
  apps: AppOutcome[];
  durationMs: number;
  reloads: number;
}

export interface ApplyDeps {
  runtime: RuntimeDriver;
  proxy: ProxyDriver;
  clock: Clock;
  hooks?: RolloutHooks[];
  /** Apps rolled out at once (dependencies first); default DEFAULT_PARALLELISM. */
  parallelism?: number;
  onProgress?: (p: ApplyProgress) => void;
  onResult?: (outcome: AppOutcome) => void;
  /** Reports a hook failure that did not stop the rollout. */
  onHookError?: (hook: keyof RolloutHooks, app: string, err: unknown) => void;
}

/** A replica taking part in a rollout: a kept one from the plan, or one this rollout started. */
export interface Member {
  id: string;
  name: string;
  replica: number;
  ports: PublishedPort[];
  /** `host:port` for the proxy (routed apps). */
  address?: string;
  graceSeconds: number;
}
