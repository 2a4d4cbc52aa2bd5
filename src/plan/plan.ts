import { dependencyOrder } from '../render/checks.js';
import { containerFields } from '../render/render.js';
import type { DesiredApp, DesiredState } from '../render/types.js';
import { publishedAddress } from '../runtime/address.js';
import type { LiveContainer, LiveState, ProxyRoute } from '../runtime/types.js';
import { specDiff } from './diff.js';
import type { Action, ActionKind, AppPlan, Plan } from './types.js';

export interface PlanOptions {
  /** Remove containers of apps no longer in the repo (default: the environment's prune setting). */
  prune?: boolean;
}

/** The route an app should have in the proxy, without servers. */
export function desiredRoute(app: DesiredApp): Omit<ProxyRoute, 'servers'> | undefined {
  const r = app.spec.route;
  if (!r) return undefined;
  return { app: app.name, host: r.host, path: r.path, stripPrefix: r.stripPrefix, options: r.nginx ?? {} };
}

/** The container port a route sends traffic to. */
export function routePort(app: DesiredApp): number | undefined {
  return app.spec.route?.port ?? app.spec.ports[0]?.containerPort;
}

/** `host:port` of a replica for its app's route. */
export function serverAddress(app: DesiredApp, c: LiveContainer): string | undefined {
  const port = routePort(app);
  const addr = port === undefined ? undefined : publishedAddress(c, port);
  return addr ? `${addr.host}:${addr.port}` : undefined;
}

function sameRoute(a: Omit<ProxyRoute, 'servers'> | undefined, b: ProxyRoute | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.host === b.host && a.path === b.path && a.stripPrefix === b.stripPrefix && JSON.stringify(Object.entries(a.options).sort()) === JSON.stringify(Object.entries(b.options).sort());
}

function planApp(app: DesiredApp, live: LiveContainer[], route: ProxyRoute | undefined): Action[] {
  const actions: Action[] = [];
  const add = (kind: ActionKind, reason: string, count: number, diff: string[] = []) => actions.push({ kind, app: app.name, reason, diff, count, ...(kind === 'replace' && { strategy: app.spec.strategy.type }) });
  const mine = live.filter((c) => c.specHash === app.specHash);
  const current = mine.filter((c) => c.state === 'running');
  const broken = mine.filter((c) => c.state !== 'running');
  const stale = live.filter((c) => c.specHash !== app.specHash);
  const want = app.spec.replicas;

  if (live.length === 0) {
    if (want > 0) add('create', `new app: ${want} replica${want === 1 ? '' : 's'}`, want);
  } else if (stale.length > 0) {
    const diff = specDiff(stale[0]!.spec, containerFields(app.name, app.labels, app.spec));
    const first = diff[0] ?? 'spec changed';
    add('replace', `spec changed: ${first}${diff.length > 1 ? ` (+${diff.length - 1} more)` : ''}`, stale.length, diff);
  }
  if (broken.length > 0) {
    add('heal', `replica not running: ${broken.map((c) => `${c.name} (${c.status})`).join(', ')}`, broken.length);
  }
  if (stale.length === 0 && live.length > 0) {
    // A broken replica is already replaced by heal; scale-up covers replicas with no container at all.
    const present = current.length + broken.length;
    if (present < want) add('scale-up', `replicas ${present} → ${want}${present > 0 ? ' (replica missing)' : ''}`, want - present);
    if (current.length > want) add('scale-down', `replicas ${current.length} → ${want}`, current.length - want);
  }
  const target = desiredRoute(app);
  if (!sameRoute(target, route)) {
    const why = !route ? `add route ${target!.host}${target!.path}` : !target ? `remove route ${route.host}${route.path}` : `route changed: ${route.host}${route.path} → ${target.host}${target.path}`;
    add('route-update', why, 0);
  } else if (target && route && actions.length === 0) {
    // Upstream must list exactly the running replicas (ports can change when Docker restarts one).
    const expected = current.map((c) => serverAddress(app, c)).filter((a): a is string => !!a).sort();
    const actual = route.servers.map((s) => s.address).sort();
    if (JSON.stringify(expected) !== JSON.stringify(actual)) add('route-update', `upstream out of date: ${actual.join(', ') || '(none)'} → ${expected.join(', ') || '(none)'}`, 0);
  }
  return actions;
}

/** Pure: desired × live → the ordered actions that make live match desired. */
export function plan(desired: DesiredState, live: LiveState, options: PlanOptions = {}): Plan {
  const prune = options.prune ?? desired.settings.prune;
  const byApp = new Map<string, LiveContainer[]>();
  for (const c of live.containers) byApp.set(c.app, [...(byApp.get(c.app) ?? []), c]);
  const routes = new Map(live.proxy.routes.map((r) => [r.app, r]));
  const apps: AppPlan[] = [];
  for (const app of dependencyOrder(desired.apps)) {
    const mine = byApp.get(app.name) ?? [];
    apps.push({ app: app.name, desired: app, live: mine, actions: planApp(app, mine, routes.get(app.name)) });
  }
  const desiredNames = new Set(desired.apps.map((a) => a.name));
  for (const name of [...byApp.keys()].filter((n) => !desiredNames.has(n)).sort()) {
    const mine = byApp.get(name)!;
    const actions: Action[] = prune ? [{ kind: 'remove', app: name, reason: 'not in repo', diff: [], count: mine.length }] : [];
    apps.push({ app: name, live: mine, actions });
  }
  const staleRoutes = live.proxy.routes.filter((r) => !desiredNames.has(r.app));
  for (const r of staleRoutes) {
    const existing = apps.find((a) => a.app === r.app);
    const action: Action = { kind: 'route-update', app: r.app, reason: `remove route ${r.host}${r.path}: app not in repo`, diff: [], count: 0 };
    if (existing) existing.actions.push(action);
    else apps.push({ app: r.app, live: [], actions: [action] });
  }
  const counts: Record<ActionKind, number> = { create: 0, replace: 0, 'scale-up': 0, 'scale-down': 0, heal: 0, remove: 0, 'route-update': 0 };
  for (const a of apps) for (const act of a.actions) counts[act.kind]++;
  const empty = apps.every((a) => a.actions.length === 0);
  return { env: desired.environment, revision: desired.revision.sha ?? 'worktree', apps, staleRoutes, counts, empty };
}
