import { BerthError } from '../errors.js';
import { fingerprint } from '../plan/plan.js';
import type { LiveFingerprint, Plan } from '../plan/types.js';
import type { DesiredState } from '../render/types.js';
import type { LiveState } from '../runtime/types.js';

/** What changed between two fingerprints of live state, in words (first few differences). */
export function liveChanges(before: LiveFingerprint, now: LiveFingerprint): string[] {
  const changes: string[] = [];
  const was = new Map(before.containers.map((c) => [c.id, c]));
  const is = new Map(now.containers.map((c) => [c.id, c]));
  for (const [id, c] of was) {
    const n = is.get(id);
    if (!n) changes.push(`container ${c.name} is gone`);
    else if (n.state !== c.state) changes.push(`container ${c.name} is ${n.state} (was ${c.state})`);
    else if (n.specHash !== c.specHash) changes.push(`container ${c.name} has another spec`);
  }
  for (const [id, c] of is) if (!was.has(id)) changes.push(`container ${c.name} (${c.app}) is new`);
  if (before.proxy !== now.proxy) changes.push('the proxy config was rewritten');
  return changes;
}

/**
 * A saved plan applies only to the revision and the live state it was made from (as `terraform
 * apply PLANFILE`): anything else is refused with what moved.
 */
export function checkSavedPlan(saved: Plan, desired: DesiredState, live: LiveState): Plan {
  if (saved.env !== desired.environment) {
    throw new BerthError('E_PLAN_STALE', `the saved plan is for environment "${saved.env}", not "${desired.environment}"`, { env: desired.environment });
  }
  if (saved.revisionKey !== desired.revisionKey) {
    throw new BerthError('E_PLAN_STALE', `the saved plan was made at ${saved.revision}, but the environment's branch is now at ${desired.revision.sha ? `sha1:${desired.revision.sha}` : 'another tree'}; make a new plan`, { env: saved.env });
  }
  const changes = liveChanges(saved.live, fingerprint(live));
  if (changes.length) {
    const shown = changes.slice(0, 5).join('; ') + (changes.length > 5 ? `; and ${changes.length - 5} more` : '');
    throw new BerthError('E_PLAN_STALE', `live state changed since the plan was made at ${saved.createdAt}: ${shown}; make a new plan`, { env: saved.env });
  }
  return saved;
}
