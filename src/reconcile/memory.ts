import type { HistoryStore } from '../report/history.js';
import { parseRevision } from '../source/types.js';

/** A desired version that rolled back: held until the repo changes the app or a person forces a sync. */
export interface HeldEntry {
  specHash: string;
  message: string;
  /** The revision it failed at. */
  revision: string;
}

/** What the reconciler remembers between reconciles (and, through the state dir, across restarts). */
export interface ReconcileMemory {
  lastAppliedKey?: string;
  /** The revision last rolled out (even if an app rolled back): the same revision with changes is drift, not new. */
  lastReconciledKey?: string;
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  /** A revision that failed to render is recorded once, not on every poll. */
  lastFailedRenderKey?: string;
  /** A revision whose apply a required plugin vetoed is recorded once, not on every retry. */
  lastVetoedKey?: string;
  /** Replicas scaler plugins set, per app (kept across restarts; clamped to the repo's bounds when used). */
  scaled?: Record<string, { replicas: number; scaler: string; reason: string; at: string; pending?: boolean }>;
  /**
   * Drift reported and not over yet: reported once per change of what drifted, on `revision` (its
   * commit carries the drift status until it is healed or resolved).
   */
  drift?: { revision: string; description: string };
  held: Record<string, HeldEntry>;
  /** The flapping guard's count: recent heals per app (see heal-guard.ts). */
  heals?: Record<string, HealRecord>;
  /** Apps berth stopped healing after too many heals: until the repo changes the app or a sync is forced. */
  healLimited?: Record<string, HealLimitEntry>;
}

/** One app's recent heals. */
export interface HealRecord {
  /** The app as the repo described it when healed (appVersion): a change in the repo starts a new count. */
  version: string;
  /** When each heal ran, ms since the epoch, oldest first; only those within the window are kept. */
  at: number[];
}

/** An app healed too often: left alone while the repo still describes it as `version`. */
export interface HealLimitEntry {
  version: string;
  specHash: string;
  message: string;
  /** The revision it was at, and when the limit was reached (ISO time). */
  revision: string;
  since: string;
}

/** Loads the memory; a state dir from before memory.json existed gives what its status file knew. */
export async function loadMemory(history: HistoryStore): Promise<ReconcileMemory> {
  const saved = await history.readMemory<ReconcileMemory & { lastDriftReport?: string }>();
  if (saved) {
    // Before the drift status, memory.json kept only the description of the drift last reported.
    const { lastDriftReport, ...rest } = saved;
    const revision = saved.lastAppliedRevision;
    return { ...rest, held: saved.held ?? {}, ...(!saved.drift && lastDriftReport && revision && { drift: { revision, description: lastDriftReport } }) };
  }
  const status = await history.readStatus();
  const { sha } = parseRevision(status?.lastAppliedRevision);
  return {
    held: {},
    ...(sha && { lastAppliedKey: sha }),
    ...(status?.lastAppliedRevision && { lastAppliedRevision: status.lastAppliedRevision }),
    ...(status?.lastAttemptedRevision && { lastAttemptedRevision: status.lastAttemptedRevision }),
  };
}
