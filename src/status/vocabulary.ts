/**
 * Every status word berth uses, in one place (the vocabulary Argo CD and Flux users already know).
 * Tests and callers branch on these values and on reason codes, never on message text.
 */

/** Does live state match the repo? `Retired`: the environment is marked retired and nothing of it is left. */
export type SyncStatus = 'Synced' | 'OutOfSync' | 'Unknown' | 'Retired';

/** How an app (or an environment: the worst of its apps) is doing. */
export type HealthCode = 'Healthy' | 'Progressing' | 'Degraded' | 'Missing' | 'Suspended' | 'Unknown';

/** Health as a value with its reason, not just a word (gitops-engine's HealthStatus). */
export interface HealthStatus {
  status: HealthCode;
  /** What a person should read: the probe's answer, the rollback's cause. */
  message?: string;
  reason?: ReasonCode;
}

/** The outcome of one reconcile. */
export type ReconcileResult = 'Succeeded' | 'Failed' | 'RolledBack';

/** The outcome of one app within a reconcile. */
export type AppResult = 'Succeeded' | 'Unchanged' | 'RolledBack' | 'Failed' | 'Skipped';

/** Stable, PascalCase reasons (Flux-style) that reach history, status, events and the API. */
export type ReasonCode =
  | 'HealthCheckFailed'
  | 'RolledBack'
  | 'ImagePullFailed'
  | 'ProxyRejected'
  | 'ProxyUnavailable'
  | 'RenderFailed'
  | 'SourceUnavailable'
  | 'RuntimeUnavailable'
  | 'RuntimeFailed'
  | 'DependencyFailed'
  | 'Drift'
  | 'PlanStale'
  | 'Locked'
  | 'Crashed'
  /** A stage of a reconcile threw an error berth does not classify (a bug, a driver failing in an unforeseen way, an unwritable state dir): the message names the stage. */
  | 'InternalError'
  /** selfHeal or health-check replacements healed an app too often in a short time: berth stopped healing it. */
  | 'HealLimitReached'
  /** A lifecycle hook of a plugin marked `required: true` vetoed the apply (a maintenance window): nothing changed. */
  | 'Vetoed'
  /** A plugin call failed (the reconcile went on without it). */
  | 'PluginFailed';

/** Order of badness: an environment's health is the worst of its apps'. */
export const HEALTH_ORDER: readonly HealthCode[] = ['Healthy', 'Suspended', 'Progressing', 'Unknown', 'Missing', 'Degraded'];

/** The worst of `values` (Healthy when there are none). */
export function worstHealth(values: Iterable<HealthCode>): HealthCode {
  let worst: HealthCode = 'Healthy';
  for (const h of values) if (HEALTH_ORDER.indexOf(h) > HEALTH_ORDER.indexOf(worst)) worst = h;
  return worst;
}

/** A reconcile's result from its apps' results: any failure fails it; a rollback or skip marks it RolledBack. */
export function reconcileResultOf(results: Iterable<AppResult>): ReconcileResult {
  let result: ReconcileResult = 'Succeeded';
  for (const r of results) {
    if (r === 'Failed') return 'Failed';
    if (r === 'RolledBack' || r === 'Skipped') result = 'RolledBack';
  }
  return result;
}

/** The reason code for an error berth raised, from its stable `code`. */
export function reasonOfError(err: unknown): ReasonCode {
  const code = (err as { code?: unknown } | undefined)?.code;
  switch (code) {
    case 'E_IMAGE':
      return 'ImagePullFailed';
    case 'E_NGINX_CONFIG':
      return 'ProxyRejected';
    case 'E_NGINX_COMMAND':
      return 'ProxyUnavailable';
    case 'E_DOCKER_UNAVAILABLE':
      return 'RuntimeUnavailable';
    case 'E_VALIDATION':
      return 'RenderFailed';
    case 'E_SOURCE':
    case 'E_GIT':
      return 'SourceUnavailable';
    case 'E_LOCKED':
      return 'Locked';
    case 'E_PLAN_STALE':
      return 'PlanStale';
    default:
      return 'RuntimeFailed';
  }
}
