import { dependencyOrder } from '../render/checks.js';
import { containerFields } from '../render/render.js';
import type { DesiredApp, DesiredState } from '../render/types.js';
import { serverAddressOf } from '../runtime/address.js';
import { LABELS } from '../runtime/labels.js';
import type { LiveContainer, LiveState, ProxyRoute } from '../runtime/types.js';
import { formatRevision } from '../source/types.js';
import type { ReasonCode } from '../status/vocabulary.js';
import { canonicalJson, sha256 } from '../util/canonical.js';
import { cpuToNano, memoryToBytes } from '../util/units.js';
import { specDiff } from './diff.js';
import type { Action, ActionKind, AppPlan, ContainerTemplate, DesiredTarget, LiveFingerprint, Plan, ReplicaGroups, ReplicaRef, RouteTarget } from './types.js';

/** How many actions of each kind the apps' plans hold. */
export function countActions(apps: readonly AppPlan[]): Record<ActionKind, number> {
  const counts: Record<ActionKind, number> = { create: 0, replace: 0, 'scale-up': 0, 'scale-down': 0, heal: 0, remove: 0, 'route-update': 0 };
  for (const a of apps) for (const act of a.actions) counts[act.kind]++;
  return counts;
}

/**
 * A version of an app berth must not roll out: it rolled back (`RolledBack`, the default), or it
 * was healed too often (`HealLimitReached`). Held until the repo changes the app or a person forces it.
 */
export interface HeldVersion {
  specHash: string;
  message: string;
  reason?: ReasonCode;
}

export interface PlanOptions {
  /** Remove containers of apps no longer in the repo (default: the environment's `prune` setting). */
  prune?: boolean;
  /** Apps whose desired version rolled back before, by app name. */
  held?: ReadonlyMap<string, HeldVersion>;
  /** When the plan is made (for the saved plan's header). */
  now?: Date;
  /**
   * Running replicas that failed their health check (the health monitor's verdict): container id →
   * what failed, e.g. "failed its health check 3 times in a row: GET /health → 500". Replicas of the
   * desired version among them are replaced through the app's strategy, health-gated like an update.
   */
  unhealthy?: ReadonlyMap<string, string>;
}

/** The route an app should have, with the container port it targets. */
function routeTarget(app: DesiredApp): RouteTarget | undefined {
  const r = app.spec.route;
  const port = r?.port ?? app.spec.ports[0]?.containerPort;
  if (!r || port === undefined) return undefined;
  return { app: app.name, host: r.host, path: r.path, stripPrefix: r.stripPrefix, proxyOptions: r.nginx ? { nginx: r.nginx } : {}, port, drainSeconds: r.drainSeconds };
}

function sameRoute(a: RouteTarget | undefined, b: ProxyRoute | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.host === b.host && a.path === b.path && a.stripPrefix === b.stripPrefix && canonicalJson(a.proxyOptions) === canonicalJson(b.proxyOptions ?? {});
}

/** The stop grace period a container was created with (from its berth.spec label), default 10 s; replicas share labels, so parsed once each. */
const graces = new Map<string, number>();
function graceOf(c: LiveContainer): number {
  let grace = graces.get(c.spec);
  if (grace !== undefined) return grace;
  try {
    const value = (JSON.parse(c.spec) as { stopGracePeriodSeconds?: unknown }).stopGracePeriodSeconds;
    grace = typeof value === 'number' ? value : 10;
  } catch {
    grace = 10;
  }
  if (graces.size > 10_000) graces.clear();
  graces.set(c.spec, grace);
  return grace;
}

function refOf(c: LiveContainer, port?: number): ReplicaRef {
  const address = serverAddressOf(c, port);
  return { id: c.id, name: c.name, replica: c.replica, specHash: c.specHash, state: c.state, status: c.status, host: c.host, ports: c.ports, graceSeconds: graceOf(c), ...(address && { address }) };
}

/** The `berth.spec` label of an app: render memoises apps, so this is computed once per app version. */
const specLabels = new WeakMap<DesiredApp, string>();
function specLabel(app: DesiredApp): string {
  let label = specLabels.get(app);
  if (label === undefined) specLabels.set(app, (label = canonicalJson(containerFields(app.name, app.labels, app.spec))));
  return label;
}

/** How to start a replica of `app`: the container fields, labels and resolved resources. */
function templateOf(env: string, revision: string, app: DesiredApp): ContainerTemplate {
  const { spec } = app;
  const userLabels = Object.fromEntries(Object.entries(app.labels).filter(([k]) => !k.startsWith('berth.')));
  return {
    namePrefix: `${env}-${app.name}`,
    nameSuffix: app.specHash.slice(0, 8),
    image: spec.image,
    labels: {
      ...userLabels,
      [LABELS.managed]: 'true',
      [LABELS.env]: env,
      [LABELS.app]: app.name,
      [LABELS.revision]: revision,
      [LABELS.specHash]: app.specHash,
      [LABELS.spec]: specLabel(app),
    },
    ...(spec.command && { command: spec.command }),
    ...(spec.args && { args: spec.args }),
    ...(spec.workingDir && { workingDir: spec.workingDir }),
    ...(spec.user && { user: spec.user }),
    env: spec.env,
    ports: spec.ports.map((p) => ({ containerPort: p.containerPort, protocol: p.protocol, ...(p.hostPort && { hostPort: p.hostPort }) })),
    ...(spec.resources?.cpu && { cpuNano: cpuToNano(spec.resources.cpu) }),
    ...(spec.resources?.memory && { memoryBytes: memoryToBytes(spec.resources.memory) }),
    volumes: spec.volumes,
    restartPolicy: spec.restartPolicy,
    stopGracePeriodSeconds: spec.stopGracePeriodSeconds,
    init: spec.init,
    ...(spec.privileged && { privileged: true }),
    ...(spec.capAdd?.length && { capAdd: spec.capAdd }),
  };
}

function targetOf(env: string, revision: string, app: DesiredApp): DesiredTarget {
  const route = routeTarget(app);
  return { specHash: app.specHash, replicas: app.spec.replicas, image: app.spec.image, template: templateOf(env, revision, app), ...(app.spec.healthCheck && { healthCheck: app.spec.healthCheck }), strategy: app.spec.strategy, ...(route && { route }) };
}

/** Sorts an app's live replicas into what the rollout keeps, verifies, replaces and removes. */
function groupReplicas(app: DesiredApp, live: LiveContainer[], route: ProxyRoute | undefined, target: RouteTarget | undefined, unhealthy: ReadonlyMap<string, string> | undefined): ReplicaGroups {
  const port = target?.port;
  const inUpstream = new Set(route?.servers.map((s) => s.containerId) ?? []);
  const running = live.filter((c) => c.state === 'running');
  // A replica failing its health check is retired like an older version: its replacement is gated first.
  const retire = (c: LiveContainer): boolean => c.specHash !== app.specHash || (unhealthy?.has(c.id) ?? false);
  const current = running.filter((c) => !retire(c)).sort((a, b) => a.replica - b.replica);
  const extras = current.length > app.spec.replicas ? current.slice(app.spec.replicas).reverse() : [];
  const kept = current.slice(0, app.spec.replicas);
  // Routed replicas missing from the upstream, and every replica of an unrouted app, may never have
  // passed a gate (an apply was killed): they are verified before they count.
  const confirmed = (c: LiveContainer): boolean => target !== undefined && inUpstream.has(c.id);
  return {
    keep: kept.filter(confirmed).map((c) => refOf(c, port)),
    verify: kept.filter((c) => !confirmed(c)).map((c) => refOf(c, port)),
    replace: running.filter(retire).sort((a, b) => a.replica - b.replica).map((c) => refOf(c, port)),
    removeStopped: live.filter((c) => c.state !== 'running').map((c) => refOf(c, port)),
    scaleDown: extras.map((c) => refOf(c, port)),
    prune: [],
  };
}

/** The actions people read for one desired app. */
function actionsOf(app: DesiredApp, live: LiveContainer[], route: ProxyRoute | undefined, target: RouteTarget | undefined, unhealthy: ReadonlyMap<string, string> | undefined): Action[] {
  const actions: Action[] = [];
  const add = (kind: ActionKind, reason: string, count: number, diff: string[] = [], cause?: Action['cause']) =>
    actions.push({ kind, app: app.name, reason, diff, count, ...((kind === 'replace' || cause) && { strategy: app.spec.strategy.type }), ...(cause && { cause }) });
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
  if (broken.length > 0) add('heal', `replica not running: ${broken.map((c) => `${c.name} (${c.status})`).join(', ')}`, broken.length);
  const failing = current.filter((c) => unhealthy?.has(c.id));
  if (failing.length > 0) add('heal', failing.map((c) => `replica ${c.name} ${unhealthy!.get(c.id)!}`).join('; '), failing.length, [], 'unhealthy');
  if (stale.length === 0 && live.length > 0) {
    // A broken replica is already replaced by heal; scale-up covers replicas with no container at all.
    const present = current.length + broken.length;
    if (present < want) add('scale-up', `replicas ${present} → ${want}${present > 0 ? ' (replica missing)' : ''}`, want - present);
    if (current.length > want) add('scale-down', `replicas ${current.length} → ${want}`, current.length - want);
  }
  if (!sameRoute(target, route)) {
    const why = !route ? `add route ${target!.host}${target!.path}` : !target ? `remove route ${route.host}${route.path}` : `route changed: ${route.host}${route.path} → ${target.host}${target.path}`;
    add('route-update', why, 0);
  } else if (target && route && actions.length === 0) {
    // The upstream must list exactly the running replicas (ports change when Docker restarts one).
    const expected = current.map((c) => serverAddressOf(c, target.port)).filter((a): a is string => !!a).sort();
    const actual = route.servers.map((s) => s.address).sort();
    if (canonicalJson(expected) !== canonicalJson(actual)) add('route-update', `upstream out of date: ${actual.join(', ') || '(none)'} → ${expected.join(', ') || '(none)'}`, 0);
  }
  return actions;
}

function emptyGroups(): ReplicaGroups {
  return { keep: [], verify: [], replace: [], removeStopped: [], scaleDown: [], prune: [] };
}

/** Marks apps whose desired version rolled back before, then the apps that depend on a held one. */
function holdApps(apps: AppPlan[], held: ReadonlyMap<string, HeldVersion> | undefined): void {
  if (!held?.size) return;
  const heldNames = new Set<string>();
  for (const a of apps) {
    if (a.op !== 'converge' || a.actions.length === 0) continue;
    const h = held.get(a.app);
    if (h && h.specHash === a.desired?.specHash) {
      a.held = { reason: h.reason ?? 'RolledBack', message: h.message };
      // Dependents wait for a version that rolled back; an app left alone after too many heals runs its desired version.
      if (a.held.reason === 'RolledBack') heldNames.add(a.app);
      continue;
    }
    const dep = a.dependsOn.find((d) => heldNames.has(d));
    if (dep) {
      a.held = { reason: 'DependencyFailed', message: `dependency "${dep}" is held at its previous version (its new version rolled back)` };
      heldNames.add(a.app);
    }
  }
}

/** What live state looked like, compactly: a saved plan applies only while this still holds. */
export function fingerprint(live: LiveState): LiveFingerprint {
  const containers = live.containers.map((c) => ({ id: c.id, name: c.name, app: c.app, specHash: c.specHash, state: c.state })).sort((a, b) => (a.id < b.id ? -1 : 1));
  // A hand edit of the proxy's file changes the fingerprint too (the routes berth wrote may not have).
  return { containers, proxy: sha256(canonicalJson(live.proxy.routes) + (live.proxy.drift ?? '')).slice(0, 16) };
}

/** Pure: desired × live → the complete, ordered work that makes live match desired. */
export function plan(desired: DesiredState, live: LiveState, options: PlanOptions = {}): Plan {
  const env = desired.environment;
  const revision = formatRevision(desired.revision);
  const prune = options.prune ?? desired.settings.prune;
  const byApp = new Map<string, LiveContainer[]>();
  for (const c of live.containers) byApp.set(c.app, [...(byApp.get(c.app) ?? []), c]);
  const routes = new Map(live.proxy.routes.map((r) => [r.app, r]));
  const apps: AppPlan[] = [];
  for (const app of dependencyOrder(desired.apps)) {
    const mine = byApp.get(app.name) ?? [];
    const route = routes.get(app.name);
    const desiredTarget = targetOf(env, desired.revision.sha ?? 'worktree', app);
    const actions = actionsOf(app, mine, route, desiredTarget.route, options.unhealthy);
    apps.push({ app: app.name, op: actions.length ? 'converge' : 'none', actions, dependsOn: app.spec.dependsOn, desired: desiredTarget, replicas: groupReplicas(app, mine, route, desiredTarget.route, options.unhealthy) });
  }
  const desiredNames = new Set(desired.apps.map((a) => a.name));
  const gone = [...new Set([...byApp.keys(), ...routes.keys()])].filter((n) => !desiredNames.has(n)).sort();
  for (const name of gone) {
    const mine = byApp.get(name) ?? [];
    const route = routes.get(name);
    const actions: Action[] = [];
    if (prune && mine.length) actions.push({ kind: 'remove', app: name, reason: 'not in repo', diff: [], count: mine.length });
    if (route) actions.push({ kind: 'route-update', app: name, reason: `remove route ${route.host}${route.path}: app not in repo`, diff: [], count: 0 });
    const replicas = { ...emptyGroups(), prune: prune ? mine.map((c) => refOf(c)) : [] };
    apps.push({ app: name, op: actions.length ? 'prune' : 'none', actions, dependsOn: [], replicas });
  }
  holdApps(apps, options.held);
  // A retired environment's last step: its proxy config goes while it still exists.
  const removeProxy = desired.settings.retired === true && live.proxy.present === true;
  const counts = countActions(apps);
  return {
    version: 1,
    env,
    revision,
    revisionKey: desired.revisionKey,
    createdAt: (options.now ?? new Date()).toISOString(),
    apps,
    proxy: { routes: live.proxy.routes, drop: gone.filter((n) => routes.has(n)), ...(live.proxy.drift && { rewrite: live.proxy.drift }), ...(removeProxy && { remove: true }) },
    counts,
    empty: apps.every((a) => a.actions.length === 0) && !live.proxy.drift && !removeProxy,
    live: fingerprint(live),
  };
}
