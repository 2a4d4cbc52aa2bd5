import { BerthError } from '../errors.js';
import type { Plan } from '../plan/types.js';
import type { ProxyRoute, UpstreamServer } from '../runtime/types.js';
import { canonicalJson } from '../util/canonical.js';
import type { ApplyDeps, Member, Phase } from './types.js';

/** How long route switches are collected into one config test + reload (more gather while a reload is spaced). */
const PROXY_BATCH_MS = 50;

interface SyncRequest {
  /** The app whose staged route edits to publish; undefined: everything staged (the end of an apply). */
  app: string | undefined;
  resolve(changed: boolean): void;
  reject(err: unknown): void;
}

/**
 * Shared state of one apply: the proxy model and the reload count. Each app's rollout edits its own
 * staged route entry; `syncProxy(app)` publishes that app's entry only, so one app's half-done
 * rollout is never written by another's switch. Requests that arrive together (within the batch
 * window, or while a reload is in flight or spaced) share one config test and one reload; when nginx
 * refuses a batch of several apps, each is tried alone, so only the culprit fails.
 */
export class ApplyRun {
  reloads = 0;
  /** Routes as nginx serves them (as far as this apply knows). */
  readonly #live = new Map<string, ProxyRoute>();
  /** Edits not yet published, per app: a route, or null for "no route". */
  readonly #staged = new Map<string, ProxyRoute | null>();
  #requests: SyncRequest[] = [];
  #draining: Promise<void> | undefined;
  /** Rollouts (and prunes) under way: with one or none, no other app's switch can join a batch. */
  #rollouts = 0;

  constructor(
    readonly deps: ApplyDeps,
    readonly plan: Plan,
  ) {
    for (const r of plan.proxy.routes) this.#live.set(r.app, structuredClone(r));
  }

  get env(): string {
    return this.plan.env;
  }

  /** Runs one app's rollout (or prune), counted as in flight while it runs. */
  async rollout<T>(work: () => Promise<T>): Promise<T> {
    this.#rollouts++;
    try {
      return await work();
    } finally {
      this.#rollouts--;
    }
  }

  progress(app: string, phase: Phase, message: string): void {
    this.deps.onProgress?.({ app, phase, message });
  }

  /** The app's route as its rollout sees it: its staged edits, else what is published. */
  routeOf(app: string): ProxyRoute | undefined {
    const staged = this.#staged.get(app);
    return staged === undefined ? this.#live.get(app) : (staged ?? undefined);
  }

  /** Stages the app's route entry (undefined: no route); returns whether it had one. */
  stageRoute(app: string, route: ProxyRoute | undefined): boolean {
    const had = this.routeOf(app) !== undefined;
    this.#staged.set(app, route ? structuredClone(route) : null);
    return had;
  }

  /** Stages the route the app had before this apply (its definition and servers), to undo its rollout. */
  restoreRoute(app: string): void {
    const before = this.plan.proxy.routes.find((r) => r.app === app);
    this.#staged.set(app, before ? structuredClone(before) : null);
  }

  /** Points the app's upstream at `members` (weights optional); an empty set keeps the last good servers. */
  setServers(app: string, members: Member[], weights?: ReadonlyMap<string, number>): void {
    const current = this.routeOf(app);
    if (!current) return;
    const servers: UpstreamServer[] = [];
    for (const m of members) {
      const weight = weights?.get(m.id);
      if (m.address) servers.push({ address: m.address, containerId: m.id, ...(weight !== undefined && { weight }) });
    }
    if (servers.length === 0 && current.servers.length > 0) return;
    this.#staged.set(app, { ...structuredClone(current), servers });
  }

  /**
   * Publishes the app's staged route (every staged route when `app` is undefined) and resolves once
   * nginx serves it: whether the config changed. Throws (for this app only) when nginx refuses it.
   */
  syncProxy(app?: string): Promise<boolean> {
    // Nothing of this app's to publish: no need to queue behind other apps' reloads.
    if (app !== undefined && !this.#differs(app)) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      this.#requests.push({ app, resolve, reject });
      this.#draining ??= this.#drain();
    });
  }

  /**
   * A retired environment's last step: removes its proxy config (tested and reloaded by the proxy
   * driver); whether there was one. A proxy that cannot remove configs is synced to an empty one instead.
   */
  async removeProxy(): Promise<boolean> {
    if (!this.deps.proxy.remove) return this.syncProxy();
    const { changed } = await this.deps.proxy.remove(this.env);
    this.#live.clear();
    this.#staged.clear();
    if (changed) this.reloads++;
    return changed;
  }

  async #drain(): Promise<void> {
    for (;;) {
      if (this.#requests.length === 0) {
        this.#draining = undefined;
        return;
      }
      // Wait for others to join only when someone can: not at the end of an apply, nor for a lone rollout.
      const alone = this.#rollouts <= 1 || this.#requests.some((r) => r.app === undefined);
      if (!alone) await this.deps.clock.sleep(PROXY_BATCH_MS);
      await this.#flush(this.#requests.splice(0));
    }
  }

  async #flush(batch: SyncRequest[]): Promise<void> {
    const all = batch.some((r) => r.app === undefined);
    const apps = all ? [...this.#staged.keys()] : [...new Set(batch.map((r) => r.app!))];
    const pending = apps.filter((a) => this.#differs(a));
    // Nothing to publish for these apps: no test, no reload (the end of an apply still writes, to repair a hand edit).
    if (!all && pending.length === 0) return batch.forEach((r) => r.resolve(false));
    try {
      const changed = await this.#publish(pending);
      batch.forEach((r) => r.resolve(changed));
    } catch (err) {
      if (!refused(err) || pending.length < 2) return batch.forEach((r) => r.reject(err));
      await this.#isolate(batch, pending);
    }
  }

  /** nginx refused a batch of several apps: each alone, so only the apps whose routes nginx refuses fail. */
  async #isolate(batch: SyncRequest[], pending: string[]): Promise<void> {
    const errors = new Map<string, unknown>();
    let changed = false;
    for (const app of pending) {
      try {
        changed = (await this.#publish([app])) || changed;
      } catch (err) {
        errors.set(app, err);
      }
    }
    // A request for everything fails with the first refusal; an app's request with its own.
    const first = errors.values().next();
    for (const r of batch) {
      const err = r.app === undefined ? (first.done ? undefined : first.value) : errors.get(r.app);
      if (err === undefined) r.resolve(changed);
      else r.reject(err);
    }
  }

  /** One test + reload with the published routes plus the staged entries of `apps`; on success they are published. */
  async #publish(apps: string[]): Promise<boolean> {
    const next = new Map(this.#live);
    for (const app of apps) {
      const staged = this.#staged.get(app);
      if (staged) next.set(app, staged);
      else next.delete(app);
    }
    const { changed } = await this.deps.proxy.apply({ env: this.env, routes: [...next.values()] });
    for (const app of apps) {
      const staged = this.#staged.get(app);
      if (staged) this.#live.set(app, structuredClone(staged));
      else this.#live.delete(app);
      this.#staged.delete(app);
    }
    if (changed) this.reloads++;
    return changed;
  }

  #differs(app: string): boolean {
    const staged = this.#staged.get(app);
    if (staged === undefined) return false;
    const live = this.#live.get(app);
    if (!staged || !live) return !staged !== !live;
    return canonicalJson(staged) !== canonicalJson(live);
  }
}

/** The proxy tested the config and refused it (as opposed to failing to run or reload). */
function refused(err: unknown): boolean {
  return err instanceof BerthError && err.code === 'E_NGINX_CONFIG';
}
