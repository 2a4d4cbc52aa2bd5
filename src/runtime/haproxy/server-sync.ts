import type { ProxyConfig } from '../types.js';
import { haproxyServers } from './config.js';
import { backendName } from './names.js';
import { commandLine, parseBackends, parseServerLoad, parseServersState, parseWorkerPid, succeeded, type LiveServer, type RuntimeApi, type ServerCommand } from './runtime-api.js';
import { backendChanges, serverDifferences, type BackendChanges } from './servers.js';

export interface ServerSyncOptions {
  api: RuntimeApi;
  /** Longest wait for a leaving server's sessions to end before they are shut. */
  drainTimeoutMs: number;
  now(): number;
  sleep(ms: number): Promise<void>;
  onWarning?: (message: string) => void;
}

/** What HAProxy runs: its backends, and the servers of each. */
interface LiveHaproxy {
  backends: Set<string>;
  servers: Map<string, LiveServer[]>;
}

/** How often a draining server's sessions, and a reloaded worker, are polled. */
export const POLL_MS = 20;
/** How long `del server` is retried while HAProxy still holds a connection to a server in maintenance. */
const DELETE_RETRY_MS = 1000;

/** The servers HAProxy runs, read and changed through its Runtime API: no reload. */
export class ServerSync {
  readonly #o: ServerSyncOptions;

  constructor(options: ServerSyncOptions) {
    this.#o = options;
  }

  /** The current worker's pid, undefined when the socket does not answer. */
  workerPid(): Promise<number | undefined> {
    return this.#o.api.send('show info').then(parseWorkerPid, () => undefined);
  }

  /** The backends HAProxy runs (none when the socket does not answer). */
  backends(): Promise<Set<string>> {
    return this.#o.api.send('show backend').then(parseBackends, () => new Set<string>());
  }

  /**
   * Makes the servers HAProxy runs match `config`. `reload` says why that is not possible (no admin
   * socket, a backend HAProxy does not run, a command refused): the caller reloads instead.
   */
  async sync(config: ProxyConfig): Promise<{ changed: boolean; reload?: string }> {
    let live: LiveHaproxy;
    try {
      live = await this.#live();
    } catch (err) {
      return { changed: false, reload: (err as Error).message };
    }
    const changes: BackendChanges[] = [];
    for (const r of config.routes) {
      const backend = backendName(config.env, r.app);
      if (!live.backends.has(backend)) return { changed: false, reload: `HAProxy does not run backend ${backend} (app "${r.app}"): it has not loaded berth's file` };
      const c = backendChanges(backend, haproxyServers(r.servers), live.servers.get(backend) ?? []);
      if (c.now.length || c.leave.length) changes.push(c);
    }
    if (changes.length === 0) return { changed: false };
    try {
      for (const c of changes) for (const cmd of c.now) await this.#send(cmd);
      await this.#drainAndDelete(config.env, changes.filter((c) => c.leave.length > 0));
    } catch (err) {
      return { changed: true, reload: (err as Error).message };
    }
    return { changed: true };
  }

  /** What differs between the servers HAProxy runs and `state`; undefined when they match or HAProxy cannot be asked. */
  async drift(state: ProxyConfig): Promise<string | undefined> {
    let live: LiveHaproxy;
    try {
      live = await this.#live();
    } catch {
      return undefined;
    }
    const found: string[] = [];
    for (const r of state.routes) {
      const backend = backendName(state.env, r.app);
      if (!live.backends.has(backend)) found.push(`app ${r.app}: HAProxy does not run backend ${backend}`);
      else for (const d of serverDifferences(haproxyServers(r.servers), live.servers.get(backend) ?? [])) found.push(`app ${r.app}: ${d}`);
    }
    if (found.length === 0) return undefined;
    return `haproxy runtime differs from berth's file: ${found.slice(0, 3).join('; ')}${found.length > 3 ? ` (and ${found.length - 3} more)` : ''}`;
  }

  async #live(): Promise<LiveHaproxy> {
    const backends = parseBackends(await this.#o.api.send('show backend'));
    const servers = parseServersState(await this.#o.api.send('show servers state'));
    return { backends, servers };
  }

  async #send(cmd: ServerCommand): Promise<void> {
    const line = commandLine(cmd);
    const reply = await this.#o.api.send(line);
    if (!succeeded(cmd, reply)) throw new Error(`"${line}" failed: ${reply || 'no answer'}`);
  }

  /**
   * Leaving servers get no new requests (drain) while the ones under way finish; once a server has
   * no session or queued request left (or the drain timeout passed, when its sessions are shut), it
   * goes into maintenance and is deleted. A server HAProxy will not delete yet stays in maintenance
   * (no traffic): the next apply, or reload, removes it.
   */
  async #drainAndDelete(env: string, leaving: BackendChanges[]): Promise<void> {
    for (const c of leaving) for (const server of c.leave) await this.#send({ kind: 'state', backend: c.backend, server, state: 'drain' });
    const deadline = this.#o.now() + this.#o.drainTimeoutMs;
    for (const c of leaving) {
      for (;;) {
        const load = parseServerLoad(await this.#o.api.send(`show stat ${c.backend} 4 -1`));
        const busy = c.leave.some((s) => {
          const l = load.get(s);
          return l !== undefined && l.sessions + l.queued > 0;
        });
        if (!busy || this.#o.now() >= deadline) break;
        await this.#o.sleep(POLL_MS);
      }
    }
    for (const c of leaving) {
      for (const server of c.leave) {
        await this.#send({ kind: 'state', backend: c.backend, server, state: 'maint' });
        if (await this.#delete(c.backend, server)) continue;
        await this.#send({ kind: 'shutdown-sessions', backend: c.backend, server });
        if (await this.#delete(c.backend, server)) continue;
        this.#o.onWarning?.(`haproxy keeps server ${c.backend}/${server} of environment "${env}" in maintenance (no traffic): it still holds connections, so it could not be deleted yet`);
      }
    }
  }

  /** `del server`, retried for a moment while HAProxy still holds idle connections to it. */
  async #delete(backend: string, server: string): Promise<boolean> {
    const cmd: ServerCommand = { kind: 'del', backend, server };
    const until = this.#o.now() + DELETE_RETRY_MS;
    for (;;) {
      const reply = await this.#o.api.send(commandLine(cmd));
      if (succeeded(cmd, reply) || reply.startsWith('No such server')) return true;
      if (this.#o.now() >= until) return false;
      await this.#o.sleep(POLL_MS);
    }
  }
}
