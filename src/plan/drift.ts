import { joinWithin, plural, truncate } from '../util/text.js';
import type { Action, AppPlan, Plan } from './types.js';

/** One way an app's live state differs from the revision: the plan's action, in a few words and in full. */
export interface DriftItem {
  kind: Action['kind'];
  /** A few words for a commit status: `1 of 3 replicas missing`. */
  summary: string;
  /** The plan's own line: `replicas 2 → 3 (replica missing)`. */
  reason: string;
  diff: string[];
}

/** What differs between live state and one revision, app by app, and why. */
export interface DriftFindings {
  apps: { app: string; items: DriftItem[] }[];
  /** The proxy's own report when its config was changed by hand (the driver says where and how). */
  proxy?: string;
  /** One line for a commit status (≤ `maxSummary`, 140 characters by default): `web: 1 of 3 replicas missing; nginx file edited`. */
  summary: string;
}

/** A few words for one action of a plan made against a revision already applied, i.e. for drift. */
function summarise(a: Action, app: AppPlan): string {
  const of = `${a.count} of ${plural(app.desired?.replicas ?? a.count, 'replica')}`;
  switch (a.kind) {
    case 'create':
    case 'scale-up':
      return `${of} missing`;
    case 'heal':
      return a.cause === 'unhealthy' ? `${plural(a.count, 'replica')} failing health checks` : `${of} not running`;
    case 'replace':
      return `${plural(a.count, 'replica')} changed by hand (${a.diff[0] ?? 'spec differs'})`;
    case 'scale-down':
      return plural(a.count, 'extra replica');
    case 'remove':
      return `not in the repo (${plural(a.count, 'container')})`;
    case 'route-update':
      return /^upstream out of date/.test(a.reason) ? 'upstream out of date' : 'route differs';
  }
}

/** The proxy driver's report in a few words: `nginx file edited: line 3 is …` → `nginx file edited`. */
export function proxySummary(proxy: string): string {
  return truncate(proxy.split(/: | \(/)[0]!.trim(), 60);
}

/**
 * Reads a plan made against the revision berth applied as a drift report: each app whose live state
 * moved away from it, and how. Held apps (a version that rolled back) are not drift, and neither is a
 * replica failing its health check unless `includeUnhealthy`; `only` narrows to the apps that drifted.
 */
export function driftFindings(plan: Plan, options: { only?: ReadonlySet<string>; includeUnhealthy?: boolean; proxy?: boolean; maxSummary?: number } = {}): DriftFindings {
  const apps: DriftFindings['apps'] = [];
  for (const app of plan.apps) {
    if (app.held || (options.only && !options.only.has(app.app))) continue;
    const items = app.actions
      .filter((a) => options.includeUnhealthy || a.cause !== 'unhealthy')
      .map((a): DriftItem => ({ kind: a.kind, summary: summarise(a, app), reason: a.reason, diff: a.diff }));
    if (items.length) apps.push({ app: app.app, items });
  }
  const proxy = options.proxy === false ? undefined : plan.proxy.rewrite;
  const parts = [...apps.map((a) => `${a.app}: ${a.items.map((i) => i.summary).join(', ')}`), ...(proxy ? [proxySummary(proxy)] : [])];
  return { apps, ...(proxy && { proxy }), summary: joinWithin(parts, options.maxSummary ?? 140) };
}
