import type { HeldVersion } from '../plan/plan.js';
import type { AppPlan } from '../plan/types.js';
import type { DesiredApp, HealLimit } from '../render/types.js';
import { canonicalJson, sha256 } from '../util/canonical.js';
import type { ReconcileMemory } from './memory.js';

// The flapping guard: at most `limit.heals` heals of one app within `limit.windowSeconds`. A heal
// is any apply that runs for an app while the repo did not change it and nobody forced a sync:
// selfHeal repairing drift, or a replica replaced for failing its health check. Past the limit the
// app is held (reason HealLimitReached) until the repo changes the app or a person forces a sync.
// The state lives in the reconciler's memory, so a restarted berth keeps counting.

/** The app as the repo describes it (container spec, replica count, route): "the repo changed the app" means this changed. */
function appVersion(app: DesiredApp): string {
  return sha256(canonicalJson({ specHash: app.specHash, replicas: app.spec.replicas, route: app.spec.route ?? null })).slice(0, 16);
}

/** "10 min", "90 s", "2 h": a window as people say it. */
function formatWindow(seconds: number): string {
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** Drops what no longer applies: counts and limits of apps that left the repo or changed in it, heals older than the window. */
export function tidyHeals(memory: ReconcileMemory, apps: readonly DesiredApp[], limit: HealLimit, now: number): void {
  if (isEmpty(memory.heals) && isEmpty(memory.healLimited)) return;
  const versions = new Map(apps.map((a) => [a.name, appVersion(a)]));
  for (const [app, record] of Object.entries(memory.heals ?? {})) {
    record.at = record.at.filter((t) => now - t < limit.windowSeconds * 1000);
    if (versions.get(app) !== record.version || record.at.length === 0) delete memory.heals![app];
  }
  for (const [app, entry] of Object.entries(memory.healLimited ?? {})) if (versions.get(app) !== entry.version) delete memory.healLimited![app];
}

function isEmpty(record: object | undefined): boolean {
  return record === undefined || Object.keys(record).length === 0;
}

/** Apps left alone after too many heals, as the planner holds them (only while the repo still describes them the same). */
export function heldByLimit(memory: ReconcileMemory, apps: readonly DesiredApp[]): Map<string, HeldVersion> {
  const held = new Map<string, HeldVersion>();
  for (const app of apps) {
    const entry = memory.healLimited?.[app.name];
    if (entry && entry.version === appVersion(app)) held.set(app.name, { specHash: entry.specHash, message: entry.message, reason: 'HealLimitReached' });
  }
  return held;
}

/**
 * The apps of `about` (the apps this reconcile would heal) that have already used up their heals:
 * they are marked limited in memory and returned with the reason people read.
 */
export function reachLimits(memory: ReconcileMemory, about: readonly AppPlan[], apps: readonly DesiredApp[], limit: HealLimit, now: number, revision: string): { app: string; message: string }[] {
  const byName = new Map(apps.map((a) => [a.name, a]));
  const reached: { app: string; message: string }[] = [];
  for (const p of about) {
    const app = byName.get(p.app);
    if (!app || memory.healLimited?.[p.app]) continue;
    const version = appVersion(app);
    const record = memory.heals?.[p.app];
    const recent = record && record.version === version ? record.at.filter((t) => now - t < limit.windowSeconds * 1000).length : 0;
    if (recent < limit.heals) continue;
    const message = `healed ${recent} times in ${formatWindow(limit.windowSeconds)}; berth leaves it alone until the repo changes it or a sync is forced`;
    (memory.healLimited ??= {})[p.app] = { version, specHash: app.specHash, message, revision, since: new Date(now).toISOString() };
    reached.push({ app: p.app, message });
  }
  return reached;
}

/** Counts one heal of each of `healed`. */
export function countHeals(memory: ReconcileMemory, healed: readonly string[], apps: readonly DesiredApp[], now: number): void {
  const byName = new Map(apps.map((a) => [a.name, a]));
  for (const name of healed) {
    const app = byName.get(name);
    if (!app) continue;
    const version = appVersion(app);
    const record = memory.heals?.[name];
    if (record && record.version === version) record.at.push(now);
    else (memory.heals ??= {})[name] = { version, at: [now] };
  }
}

/** A person forced a sync: these apps may be healed again, their count starts from zero. */
export function forgetHeals(memory: ReconcileMemory, apps: readonly string[]): void {
  for (const app of apps) {
    delete memory.heals?.[app];
    delete memory.healLimited?.[app];
  }
}
