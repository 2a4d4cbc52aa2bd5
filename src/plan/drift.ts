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
  /** One line for a commit status (≤ 140 characters): `web: 1 of 3 replicas missing; nginx file edited`. */
  summary: string;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A few words for one action of a plan made against a revision already applied, i.e. for drift. */
function summarise(a: Action, app: AppPlan): string {
  const want = app.desired?.replicas ?? a.count;
  switch (a.kind) {
    case 'create':
      return `${a.count} of ${want} replica${want === 1 ? '' : 's'} missing`;
    case 'scale-up':
      return `${a.count} of ${want} replica${want === 1 ? '' : 's'} missing`;
    case 'heal':
      return a.cause === 'unhealthy' ? `${plural(a.count, 'replica')} failing health checks` : `${a.count} of ${want} replica${want === 1 ? '' : 's'} not running`;
    case 'replace':
      return `${plural(a.count, 'replica')} changed by hand (${a.diff[0] ?? 'spec differs'})`;
    case 'scale-down':
      return `${plural(a.count, 'extra replica')}`;
    case 'remove':
      return `not in the repo (${plural(a.count, 'container')})`;
    case 'route-update':
      return /^upstream out of date/.test(a.reason) ? 'upstream out of date' : 'route differs';
  }
}

/** The proxy driver's report in a few words: `nginx file edited: line 3 is …` → `nginx file edited`. */
export function proxySummary(proxy: string): string {
  const head = proxy.split(/: | \(/)[0]!.trim();
  return head.length > 60 ? `${head.slice(0, 57)}...` : head;
}

/** Joins parts into at most `max` characters, ending with `(+N more)` when some do not fit. */
export function joinWithin(parts: string[], max: number, separator = '; '): string {
  const full = parts.join(separator);
  if (full.length <= max) return full;
  for (let keep = parts.length - 1; keep >= 1; keep--) {
    const text = `${parts.slice(0, keep).join(separator)}${separator}(+${parts.length - keep} more)`;
    if (text.length <= max) return text;
  }
  return `${full.slice(0, max - 1)}…`;
}

/**
 * Reads a plan made against the revision berth applied as a drift report: each app whose live state
 * moved away from it, and how. Held apps (a version that rolled back) are not drift, and neither is a
 * replica failing its health check unless `includeUnhealthy`; `only` narrows to the apps that drifted.
 */
export function driftFindings(plan: Plan, options: { only?: ReadonlySet<string>; includeUnhealthy?: boolean; proxy?: boolean } = {}): DriftFindings {
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
  return { apps, ...(proxy && { proxy }), summary: joinWithin(parts, 140) };
}
