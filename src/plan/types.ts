import type { DesiredApp, StrategyType } from '../render/types.js';
import type { LiveContainer, ProxyRoute } from '../runtime/types.js';

export type ActionKind = 'create' | 'replace' | 'scale-up' | 'scale-down' | 'heal' | 'remove' | 'route-update';

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
}

export interface AppPlan {
  app: string;
  /** Undefined for an app that is only in live state (to prune). */
  desired?: DesiredApp;
  live: LiveContainer[];
  actions: Action[];
}

/** Ordered work for one environment: apps in dependsOn order, then removals. */
export interface Plan {
  env: string;
  revision: string;
  apps: AppPlan[];
  /** Routes of apps that are gone from the repo, to drop from the proxy. */
  staleRoutes: ProxyRoute[];
  counts: Record<ActionKind, number>;
  /** True when applying would change nothing: Synced. */
  empty: boolean;
}
