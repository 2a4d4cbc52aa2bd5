/**
 * Where plugins meet a reconcile (the controller passes a PluginHost through this seam; `berth apply`
 * passes only the manifests, so it validates Plugin documents without starting any plugin).
 */
import type { Plan } from '../plan/types.js';
import type { ApplyHookContext, ApplyResultContext } from '../plugins/types.js';
import type { PluginManifests } from '../render/plugins.js';
import type { DesiredState, PluginConfig } from '../render/types.js';
import type { ReconcileMemory } from './memory.js';

export interface ReconcilePlugins {
  /** The plugins that exist: render checks Plugin documents against them. */
  manifests: PluginManifests;
  /** After render: start, stop or reload plugins to match the revision's Plugin documents. Never throws. */
  sync?(plugins: PluginConfig[]): Promise<void>;
  /** After render: renderTransform hooks, their output checked as the repo's apps are; a refused one is a warning. */
  transform?(state: DesiredState): Promise<{ state: DesiredState; warnings: string[] }>;
  /** Before an apply: a veto of a `required` plugin stops it; other vetoes and errors are warnings. */
  preApply?(ctx: ApplyHookContext): Promise<{ veto?: { plugin: string; reason: string }; warnings: string[] }>;
  /** After an apply (not awaited by the reconcile). */
  postApply?(ctx: ApplyResultContext): Promise<void>;
  /** Replicas scalers set, per app; applied within each app's `scaling` bounds. */
  scaled?(): ReadonlyMap<string, number>;
}

/**
 * The desired state with the replica counts scalers decided, each clamped to its app's
 * `scaling: { min, max }` (apps without both bounds keep the repo's count). Replicas are not part of
 * the spec hash, so a scaled app is the same app: the plan scales it, and drift compares against it.
 */
export function withScaling(desired: DesiredState, scaled: ReadonlyMap<string, number> | undefined): DesiredState {
  if (!scaled?.size) return desired;
  let changed = false;
  const apps = desired.apps.map((app) => {
    const want = scaled.get(app.name);
    const bounds = app.spec.scaling;
    if (want === undefined || bounds?.min === undefined || bounds.max === undefined) return app;
    const replicas = Math.min(bounds.max, Math.max(bounds.min, want));
    if (replicas === app.spec.replicas) return app;
    changed = true;
    return { ...app, spec: { ...app.spec, replicas }, scaledFrom: app.spec.replicas };
  });
  return changed ? { ...desired, apps } : desired;
}

/** What a lifecycle hook is told about a plan: the apps it changes and how. */
export function hookContext(env: string, revision: string, trigger: string, planned: Plan): ApplyHookContext {
  return {
    env,
    revision,
    trigger,
    changes: planned.apps.filter((a) => a.actions.length > 0 && !a.held).map((a) => ({ app: a.app, actions: [...new Set(a.actions.map((x) => x.kind))] })),
  };
}

/** The replica counts scalers decided, as memory keeps them. */
export function scaledOf(memory: Pick<ReconcileMemory, 'scaled'>): ReadonlyMap<string, number> {
  return new Map(Object.entries(memory.scaled ?? {}).map(([app, d]) => [app, d.replicas]));
}

/** Apps whose newest scaler decision berth has not applied yet (a reconcile applies it even with selfHeal off). */
export function pendingScaling(memory: Pick<ReconcileMemory, 'scaled'>): ReadonlySet<string> {
  return new Set(Object.entries(memory.scaled ?? {}).filter(([, d]) => d.pending).map(([app]) => app));
}

/**
 * Marks the decisions of `apps` applied: after this, a replica missing from them is drift like any
 * other. Only a decision this reconcile planned counts (one the scaling loop made meanwhile waits).
 */
export function scalingApplied(memory: Pick<ReconcileMemory, 'scaled'>, desired: Pick<DesiredState, 'apps'>, apps: readonly string[]): void {
  for (const app of apps) {
    const d = memory.scaled?.[app];
    const planned = desired.apps.find((a) => a.name === app)?.spec.replicas;
    if (d?.pending && planned === d.replicas) memory.scaled![app] = { replicas: d.replicas, scaler: d.scaler, reason: d.reason, at: d.at };
  }
}
