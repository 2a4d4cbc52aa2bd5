import type { Plan } from '../plan/types.js';
import type { ProxyRoute, UpstreamServer } from '../runtime/types.js';
import type { ApplyDeps, Member, Phase } from './types.js';

/** Shared state of one apply: the proxy model every app's rollout edits, and the reload count. */
export class ApplyRun {
  readonly routes = new Map<string, ProxyRoute>();
  reloads = 0;

  constructor(
    readonly deps: ApplyDeps,
    readonly plan: Plan,
  ) {
    for (const r of plan.proxy.routes) this.routes.set(r.app, structuredClone(r));
  }

  get env(): string {
    return this.plan.env;
  }

  progress(app: string, phase: Phase, message: string): void {
    this.deps.onProgress?.({ app, phase, message });
  }

  /** Points the app's upstream at `members` (weights optional); an empty set keeps the last good servers. */
  setServers(app: string, members: Member[], weights?: ReadonlyMap<string, number>): void {
    const route = this.routes.get(app);
    if (!route) return;
    const servers: UpstreamServer[] = [];
    for (const m of members) {
      const weight = weights?.get(m.id);
      if (m.address) servers.push({ address: m.address, containerId: m.id, ...(weight !== undefined && { weight }) });
    }
    if (servers.length === 0 && route.servers.length > 0) return;
    route.servers = servers;
  }

  /** Writes the proxy config if it changed: one test + one reload for everything changed since the last sync. */
  async syncProxy(): Promise<boolean> {
    const { changed } = await this.deps.proxy.apply({ env: this.env, routes: [...this.routes.values()] });
    if (changed) this.reloads++;
    return changed;
  }
}
