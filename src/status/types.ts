import type { HealthCode, ReasonCode, ReconcileResult, SyncStatus } from './vocabulary.js';

/** One app's status, as the API, `berth status` and the metrics show it. */
export interface AppStatus {
  app: string;
  syncStatus: SyncStatus;
  health: HealthCode;
  /** Why it has that health: the probe's answer, the rollback's cause. */
  healthMessage?: string;
  reason?: ReasonCode;
  revision: string;
  /** The last apply's error for this app, if any. */
  message?: string;
  replicas: { ready: number; desired: number };
  image: string;
  /** Set while the desired version is held back: after a rollback, or (reason HealLimitReached) after too many heals. */
  held?: { specHash: string; message: string };
}

/** An environment's status: written to status.json and served at /api/v1/status. */
export interface EnvStatus {
  env: string;
  syncStatus: SyncStatus;
  /** The worst of its apps'. */
  health: HealthCode;
  message?: string;
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  lastReconcile?: { result: ReconcileResult; reason?: ReasonCode; finishedAt: string; error?: string };
  apps: AppStatus[];
  updatedAt: string;
}
