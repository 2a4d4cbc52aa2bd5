import type { Plan } from '../plan/types.js';
import type { LiveContainer } from '../runtime/types.js';
import type { AppStatus, EnvStatus } from './types.js';
import { worstHealth, type HealthStatus } from './vocabulary.js';

export interface StatusInput {
  plan: Plan;
  containers: readonly LiveContainer[];
  /** The health monitor's verdict per app. */
  healthOf(app: string): HealthStatus;
  /** Apps whose desired version rolled back and is held, with the gate's message. */
  held: ReadonlyMap<string, { specHash: string; message: string }>;
  /** This reconcile's outcomes, by app (errors of apps that failed). */
  errors?: ReadonlyMap<string, string>;
}

/** Pure: each desired app's sync status and health from a fresh plan, live containers and the monitor. */
export function appStatuses(input: StatusInput): AppStatus[] {
  const apps: AppStatus[] = [];
  for (const p of input.plan.apps) {
    const d = p.desired;
    if (!d) continue;
    const ready = input.containers.filter((c) => c.app === p.app && c.specHash === d.specHash && c.state === 'running').length;
    let health = input.healthOf(p.app);
    const own = input.held.get(p.app);
    // The plan holds an app whose version rolled back, and the apps that depend on one: either way
    // the repo's version is not running, whatever the old replicas' probes say.
    const rolledBack = own !== undefined && own.specHash === d.specHash;
    const held = rolledBack ? { specHash: own.specHash, message: own.message } : p.held && { specHash: d.specHash, message: p.held.message };
    if (held) health = { status: 'Degraded', reason: rolledBack ? 'RolledBack' : (p.held?.reason ?? 'DependencyFailed'), message: held.message };
    const error = input.errors?.get(p.app);
    apps.push({
      app: p.app,
      syncStatus: p.actions.length ? 'OutOfSync' : 'Synced',
      health: health.status,
      ...(health.message && { healthMessage: health.message }),
      ...(health.reason && { reason: health.reason }),
      revision: input.plan.revision,
      ...(error && { message: error }),
      replicas: { ready, desired: d.replicas },
      image: d.image,
      ...(held && { held }),
    });
  }
  return apps;
}

/** The environment's status from its apps: sync from the plan (`Retired` once a retired environment has nothing left), health the worst of the apps'. */
export function envStatus(previous: EnvStatus, apps: AppStatus[], plan: Plan, now: Date, options: { retired?: boolean } = {}): EnvStatus {
  const syncStatus = !plan.empty ? 'OutOfSync' : options.retired ? 'Retired' : 'Synced';
  return { ...previous, syncStatus, health: worstHealth(apps.map((a) => a.health)), apps, updatedAt: now.toISOString() };
}

/** The status with one app's probe verdict swapped in (undefined when nothing shown changes). A held app stays Degraded. */
export function withAppHealth(status: EnvStatus, app: string, health: HealthStatus): EnvStatus | undefined {
  const current = status.apps.find((a) => a.app === app);
  if (!current || current.held) return undefined;
  if (current.health === health.status && current.healthMessage === health.message && current.reason === health.reason) return undefined;
  const apps = status.apps.map((a) => (a.app === app ? { ...a, health: health.status, healthMessage: health.message, reason: health.reason } : a));
  return { ...status, apps, health: worstHealth(apps.map((a) => a.health)) };
}
