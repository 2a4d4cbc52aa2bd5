import type { Clock } from '../util/clock.js';
import type { ProxyDriver, RuntimeDriver } from '../runtime/types.js';

export type AppResult = 'Succeeded' | 'Unchanged' | 'RolledBack' | 'Failed' | 'Skipped';
export type ReconcileResult = 'Succeeded' | 'Failed' | 'RolledBack';

export type Phase = 'pull' | 'start' | 'wait' | 'switch' | 'drain' | 'stop' | 'remove' | 'done' | 'rolled-back' | 'failed' | 'skipped';

export interface ApplyEvent {
  app: string;
  phase: Phase;
  message: string;
}

export interface AppOutcome {
  app: string;
  result: AppResult;
  /** What was done, e.g. ["started 2", "stopped 2", "route switched"]. */
  actions: string[];
  error?: string;
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
  onEvent?: (e: ApplyEvent) => void;
}
