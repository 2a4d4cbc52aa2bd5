import { driftFindings, type DriftFindings } from '../plan/drift.js';
import { plan } from '../plan/plan.js';
import type { DesiredState } from '../render/types.js';
import { observe } from '../runtime/observe.js';
import type { ProxyDriver, RuntimeDriver } from '../runtime/types.js';
import type { ConfigSource } from '../source/open.js';
import { parseRevision, type Revision } from '../source/types.js';
import { scaledOf, withScaling } from './plugins.js';
import { planOptions, type HealthSource, type ReconcileDeps } from './reconcile.js';

/**
 * The commit of a revision berth applied (`branch@sha1:…`), with its branch: at hand in the repo (or
 * the controller's clone), else fetched with its branch (a shallow fetch finds it while it is still
 * the branch head). Undefined for a revision without a commit.
 */
export async function readAppliedRevision(source: ConfigSource, applied: string | undefined): Promise<Revision | undefined> {
  const { branch, sha } = parseRevision(applied);
  if (!sha || source.kind !== 'git') return undefined;
  const read = async (): Promise<Revision> => {
    const r = await source.read(sha);
    return { ...r, ref: { ...r.ref, ...(branch && { branch }) } };
  };
  return read().catch(async (err: unknown) => {
    if (!branch || !source.git?.remote) throw err;
    await source.fetch(branch);
    return read();
  });
}

/** What `berth drift` and `GET /api/v1/drift` answer: live state compared with the applied revision. */
export interface DriftReport extends DriftFindings {
  env: string;
  /** The revision live state was compared with (the one berth applied). */
  revision: string;
  checkedAt: string;
  drifted: boolean;
  /** Apps held at their previous version (their new one rolled back): they differ from the repo, knowingly. */
  held: { app: string; reason: string; message: string }[];
  /** Running replicas failing their health check (replaced by berth whether selfHeal is on or not): not drift. */
  unhealthy: { app: string; reason: string }[];
}

/**
 * Compares live state with `desired` (the applied revision's) as a reconcile would plan it, and reads
 * the plan as drift: what differs, per app, and why. Read-only: nothing is changed.
 */
export async function checkDrift(
  deps: Pick<ReconcileDeps, 'env' | 'memory' | 'prune' | 'clock'> & { runtime: RuntimeDriver; proxy: ProxyDriver; health?: Pick<HealthSource, 'failedReplicas'> },
  desired: DesiredState,
): Promise<DriftReport> {
  const live = await observe(deps.env, deps.runtime, deps.proxy);
  // Replicas a scaler set are what berth wants, not drift.
  const wanted = withScaling(desired, scaledOf(deps.memory));
  const planned = plan(wanted, live, planOptions(deps, { force: false }, wanted));
  const findings = driftFindings(planned);
  const held = planned.apps.filter((a) => a.held && a.actions.length).map((a) => ({ app: a.app, reason: a.held!.reason, message: a.held!.message }));
  const unhealthy = planned.apps.flatMap((a) => a.actions.filter((x) => x.cause === 'unhealthy').map((x) => ({ app: a.app, reason: x.reason })));
  return {
    env: deps.env,
    revision: planned.revision,
    checkedAt: new Date(deps.clock.now()).toISOString(),
    drifted: findings.apps.length > 0 || findings.proxy !== undefined,
    ...findings,
    held,
    unhealthy,
  };
}
