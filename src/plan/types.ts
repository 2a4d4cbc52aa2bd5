import type { EnvValue, HealthCheckSpec, StrategySpec, StrategyType } from '../render/types.js';
import type { ContainerCreateSpec, ContainerState, LiveContainer, ProxyOptions, ProxyRoute } from '../runtime/types.js';
import type { ReasonCode } from '../status/vocabulary.js';

export type ActionKind = 'create' | 'replace' | 'scale-up' | 'scale-down' | 'heal' | 'remove' | 'route-update';

/** One change, as people read it in `berth plan`. */
export interface Action {
  kind: ActionKind;
  app: string;
  /** Why, in one line: "spec changed: image a → b", "replica missing", "not in repo". */
  reason: string;
  /** Field-level changes, one per line (`spec.image: a → b`); secrets shown only as changed. */
  diff: string[];
  /** Containers affected (create/scale-up: how many to start; others: how many touched). */
  count: number;
  strategy?: StrategyType;
  /** Set on the heal that replaces running replicas failing their health check (not drift: the app itself is sick). */
  cause?: 'unhealthy';
}

/** A live replica as the plan refers to it: enough to gate, route, drain and stop it. */
export interface ReplicaRef extends Pick<LiveContainer, 'id' | 'name' | 'replica' | 'specHash' | 'state' | 'status' | 'host' | 'ports'> {
  /** `host:port` the proxy sends this replica's traffic to (routed apps with a published port). */
  address?: string;
  /** The stop grace period it was created with. */
  graceSeconds: number;
}

/**
 * Everything a runtime needs to start one replica, but its number: the create spec without name,
 * replica label and revealed env. Secrets stay SecretValues until the runtime call.
 */
export interface ContainerTemplate extends Omit<ContainerCreateSpec, 'name' | 'env'> {
  /** Names are `<namePrefix>-<replica>-<nameSuffix>`: Docker's unique names make a resumed apply unable to duplicate a replica. */
  namePrefix: string;
  nameSuffix: string;
  /** Every label but the replica number (added per replica). */
  labels: Record<string, string>;
  env: Record<string, EnvValue>;
}

/** The route an app should have: where it is served and the container port traffic goes to. */
export interface RouteTarget extends Omit<ProxyRoute, 'servers'> {
  port: number;
  drainSeconds: number;
}

/** What the app should become. */
export interface DesiredTarget {
  specHash: string;
  replicas: number;
  image: string;
  template: ContainerTemplate;
  healthCheck?: HealthCheckSpec;
  strategy: StrategySpec;
  route?: RouteTarget;
}

/**
 * Which live replicas the rollout keeps, verifies, replaces or removes: grouped once, here.
 * - keep: running, desired spec, already in the upstream (or the app has no route and they passed before);
 * - verify: running, desired spec, never confirmed healthy (left by an interrupted apply): gated before use;
 * - replace: running, an older spec, or the desired spec failing its health check: retired by the strategy;
 * - removeStopped: not running (killed, crashed, half-created): removed first, no traffic reaches them;
 * - scaleDown: running desired replicas beyond the replica count (highest numbers first);
 * - prune: every replica of an app that left the repo.
 */
export interface ReplicaGroups {
  keep: ReplicaRef[];
  verify: ReplicaRef[];
  replace: ReplicaRef[];
  removeStopped: ReplicaRef[];
  scaleDown: ReplicaRef[];
  prune: ReplicaRef[];
}

/** One app's part of a plan: what people read (actions) and what apply executes (the rest). */
export interface AppPlan {
  app: string;
  /** converge: make it match `desired`; prune: remove it; none: in sync. */
  op: 'converge' | 'prune' | 'none';
  actions: Action[];
  dependsOn: string[];
  desired?: DesiredTarget;
  replicas: ReplicaGroups;
  /** Set when this app must not be rolled out by this reconcile (its version rolled back before, or a dependency's did). */
  held?: { reason: ReasonCode; message: string };
}

/** A digest of the live state a plan was made from: a saved plan is refused once it no longer matches. */
export interface LiveFingerprint {
  containers: { id: string; name: string; app: string; specHash: string; state: ContainerState }[];
  proxy: string;
}

/** Ordered, complete work for one environment: apps in dependsOn order, then removals. */
export interface Plan {
  version: 1;
  env: string;
  /** `branch@sha1:<40 hex>` as people read it. */
  revision: string;
  /** Identity of the revision (commit sha, or a tree digest for a plain directory). */
  revisionKey: string;
  createdAt: string;
  apps: AppPlan[];
  /**
   * The proxy model apply starts from (the live config), and the routes to drop. `rewrite` says why
   * the proxy's file must be written again though no route changes (edited by hand): apply's final
   * proxy sync rewrites it from `routes`. `remove`: the environment is retired and its proxy config
   * still exists: apply ends by removing it (instead of the final sync) once every app succeeded.
   */
  proxy: { routes: ProxyRoute[]; drop: string[]; rewrite?: string; remove?: boolean };
  counts: Record<ActionKind, number>;
  /** True when applying would change nothing: Synced. */
  empty: boolean;
  live: LiveFingerprint;
}

export type { ProxyOptions };
