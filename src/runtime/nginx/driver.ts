import http from 'node:http';
import { mkdir, readdir, readFile, rename, stat, unlink, watch, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../../errors.js';
import { runLocal as run, type CommandRunner } from '../command.js';
import type { ProxyConfig, ProxyDriver } from '../types.js';
import { configDrift, GENERATION_PATH, generationOf, listenAddress, parseNginxState, renderNginxConfig, statusHost } from './config.js';

export class NginxConfigError extends BerthError {
  constructor(message: string, context: Record<string, unknown>) {
    super('E_NGINX_CONFIG', message, context);
  }
}

export interface NginxOptions {
  /** Folder the user's nginx.conf includes inside http {}; berth writes berth-<env>.conf there. */
  confDir: string;
  listen: string;
  testCmd: string[];
  reloadCmd: string[];
  /**
   * Runs testCmd and reloadCmd. Default: a local process (no shell). With nginx in its own container
   * the factory passes one that runs them inside it through the Docker API (`--nginx-container`).
   */
  runCommand?: CommandRunner;
  /** Minimum time between two reloads (reloads drop requests when too frequent). */
  minReloadIntervalMs: number;
  /** How long to wait for nginx to serve a reloaded config before warning (reload is asynchronous). */
  reloadTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Called when the new config could not be confirmed live in time (apply goes on). */
  onWarning?: (message: string) => void;
}

function fetchGeneration(host: string, port: number, env: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: GENERATION_PATH, headers: { host: statusHost(env) }, agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

/** Consecutive answers with the new generation that count as "nginx serves it" (20 ms apart). */
const LIVE_CONFIRMATIONS = 10;

/** Runs nginx's test and reload commands as local processes (no shell, 30 s at most). */
export const runLocal: CommandRunner = (argv) => run(argv, 'is it installed and on PATH? with nginx in its own container, use --nginx-container');

/** The server names a config file serves, each with its listen address (a host conflicts only on the same address). */
function serverNames(text: string): { host: string; key: string }[] {
  const out: { host: string; key: string }[] = [];
  for (const m of text.matchAll(/^server \{\n {2}listen ([^;\n]+);\n {2}server_name ([^;\n]+);/gm)) {
    for (const host of m[2]!.trim().split(/\s+/)) out.push({ host, key: `${m[1]!.trim()} ${host}` });
  }
  return out;
}

/** nginx behind ProxyDriver: one config file per environment, written atomically and tested before any reload. */
export class NginxDriver implements ProxyDriver {
  readonly name = 'nginx';
  readonly #opts: NginxOptions;
  #lastReload = 0;
  /** The text this driver last wrote per environment: its own writes are not drift. */
  readonly #written = new Map<string, string>();
  /** What the other environments' files serve, per file, as of their mtime and size: a stat instead of a read and parse per apply. */
  readonly #others = new Map<string, { mtimeMs: number; size: number; env: string; keys: Set<string> }>();
  reloads = 0;

  constructor(options: NginxOptions) {
    this.#opts = options;
  }

  file(env: string): string {
    return path.join(this.#opts.confDir, `berth-${env}.conf`);
  }

  /** The model berth last wrote, with `drift` set when the file is no longer exactly what berth wrote. */
  async read(env: string): Promise<ProxyConfig> {
    const file = this.file(env);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) return { env, routes: [], present: false };
    const state = parseNginxState(text);
    if (!state) return { env, routes: [], present: true, drift: `nginx file ${file} has no readable berth state (edited by hand or not written by berth)` };
    const drift = configDrift(text, state, this.#opts.listen);
    return drift ? { ...state, env, present: true, drift: `${drift} (${file})` } : { ...state, env, present: true };
  }

  /** Changes of `berth-<env>.conf` made by anyone but this driver (a hand edit, a deletion), until `signal` aborts. */
  async *watch(env: string, signal: AbortSignal): AsyncIterable<{ env: string; file: string }> {
    const file = this.file(env);
    const name = path.basename(file);
    await mkdir(this.#opts.confDir, { recursive: true });
    try {
      for await (const change of watch(this.#opts.confDir, { signal })) {
        if (change.filename !== name) continue;
        const text = await readFile(file, 'utf8').catch(() => undefined);
        if (text !== undefined && text === this.#written.get(env)) continue;
        yield { env, file };
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }

  async apply(config: ProxyConfig): Promise<{ changed: boolean }> {
    const file = this.file(config.env);
    const next = renderNginxConfig(config, this.#opts.listen);
    const previous = await readFile(file, 'utf8').catch(() => undefined);
    if (previous === next) return { changed: false };
    // Refused before any wait for the reload interval: nothing is written.
    await this.#refuseSharedHosts(config.env, next, previous);
    await this.#commit(config.env, file, previous, next, { rejected: `the new config for environment "${config.env}"`, restored: 'the previous config was restored' });
    return { changed: true };
  }

  /**
   * Two environments serving one host on the same listen address would be silently shadowed:
   * nginx only warns ("conflicting server name … ignored") and serves the first file's server.
   * A host this write adds that another of berth's files already serves is refused, naming both.
   */
  async #refuseSharedHosts(env: string, next: string, previous: string | undefined): Promise<void> {
    const had = new Set(serverNames(previous ?? '').map((s) => s.key));
    const serving = serverNames(next);
    const names = await readdir(this.#opts.confDir).catch(() => [] as string[]);
    const own = path.basename(this.file(env));
    const files = new Set(names.filter((n) => /^berth-.+\.conf$/.test(n)));
    for (const file of this.#others.keys()) if (!files.has(path.basename(file))) this.#others.delete(file);
    for (const name of [...files].filter((n) => n !== own).sort()) {
      const theirs = await this.#servedBy(path.join(this.#opts.confDir, name));
      if (!theirs) continue;
      const sharedAll = serving.filter((s) => theirs.keys.has(s.key));
      if (sharedAll.length === 0) continue;
      const other = theirs.env;
      const shared = sharedAll.filter((s) => !had.has(s.key));
      if (shared.length === 0) {
        // Shared before this write (files from before berth checked, or edited by hand): refusing now
        // would block every change of the environment, so it is reported on each write instead.
        this.#opts.onWarning?.(`host ${sharedAll.map((s) => s.host).join(', ')} is served by both environment "${env}" and environment "${other}" (${path.join(this.#opts.confDir, name)}) on the same nginx, which serves only one of them; give each environment its own hosts`);
        continue;
      }
      throw new NginxConfigError(
        `host ${shared.map((s) => s.host).join(', ')} is already served by environment "${other}" (${path.join(this.#opts.confDir, name)}) on the same nginx; environment "${env}" cannot route it too, because nginx would ignore one of the two servers ("conflicting server name"). Give each environment its own hosts, e.g. with an overlay on route.host`,
        { env, other, hosts: shared.map((s) => s.host) },
      );
    }
  }

  /** The env and listen+host keys another environment's file serves: parsed again only when its mtime or size changed. */
  async #servedBy(file: string): Promise<{ env: string; keys: Set<string> } | undefined> {
    const st = await stat(file).catch(() => undefined);
    if (!st) return undefined;
    const cached = this.#others.get(file);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached;
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    const entry = { mtimeMs: st.mtimeMs, size: st.size, env: parseNginxState(text)?.env ?? path.basename(file).replace(/^berth-|\.conf$/g, ''), keys: new Set(serverNames(text).map((s) => s.key)) };
    this.#others.set(file, entry);
    return entry;
  }

  /**
   * A retired environment: its file is deleted, nginx tested and reloaded; the file comes back when
   * either fails. Not waited on like `apply`: the status server that confirms a generation goes with the file.
   */
  async remove(env: string): Promise<{ changed: boolean }> {
    const file = this.file(env);
    const previous = await readFile(file, 'utf8').catch(() => undefined);
    if (previous === undefined) return { changed: false };
    await this.#commit(env, file, previous, undefined, { rejected: `the config without environment "${env}"'s file`, restored: `${file} was restored` });
    return { changed: true };
  }

  /**
   * Puts `next` in place of `previous` (undefined: deletes the file) once the reload interval allows,
   * then tests and reloads nginx; when either fails, `previous` is restored and the error thrown, in
   * the words of `what`. A written config is waited on until nginx serves it.
   */
  async #commit(env: string, file: string, previous: string | undefined, next: string | undefined, what: { rejected: string; restored: string }): Promise<void> {
    const now = this.#opts.now ?? Date.now;
    const sleep = this.#opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const wait = this.#lastReload + this.#opts.minReloadIntervalMs - now();
    if (wait > 0) await sleep(wait);

    if (next === undefined) {
      this.#written.delete(env);
      await unlink(file);
    } else {
      await mkdir(this.#opts.confDir, { recursive: true });
      this.#written.set(env, next);
      await this.#write(file, next);
    }
    const run = this.#opts.runCommand ?? runLocal;
    const test = await run(this.#opts.testCmd);
    if (!test.ok) {
      await this.#restore(env, file, previous);
      throw new NginxConfigError(`nginx rejected ${what.rejected}; ${what.restored} and nginx keeps serving it. nginx said: ${test.output}`, { env, file });
    }
    const reload = await run(this.#opts.reloadCmd);
    if (!reload.ok) {
      await this.#restore(env, file, previous);
      throw new BerthError('E_NGINX_COMMAND', `nginx reload failed (${this.#opts.reloadCmd.join(' ')}): ${reload.output}; is nginx running? ${what.restored}`, { env, file });
    }
    if (next !== undefined) await this.#waitLive(env, next, now, sleep);
    this.#lastReload = now();
    this.reloads++;
  }

  /** Polls the status server until nginx answers with the new generation: only then is traffic switched. */
  async #waitLive(env: string, text: string, now: () => number, sleep: (ms: number) => Promise<void>): Promise<void> {
    const addr = listenAddress(this.#opts.listen);
    const want = generationOf(text);
    if (!addr || !want) return;
    const deadline = now() + (this.#opts.reloadTimeoutMs ?? 5000);
    // Old workers keep accepting for a moment after the first new worker answers: wait until
    // several fresh connections in a row see the new generation.
    let confirmed = 0;
    while (now() < deadline) {
      confirmed = (await fetchGeneration(addr.host, addr.port, env)) === want ? confirmed + 1 : 0;
      if (confirmed >= LIVE_CONFIRMATIONS) return;
      await sleep(20);
    }
    this.#opts.onWarning?.(`nginx did not serve the new config for "${env}" within ${this.#opts.reloadTimeoutMs ?? 5000} ms of the reload (checked http://${addr.host}:${addr.port}${GENERATION_PATH}); continuing`);
  }

  /** Temp file in the same folder + rename: nginx never sees a half-written file. */
  async #write(file: string, text: string): Promise<void> {
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
  }

  async #restore(env: string, file: string, previous: string | undefined): Promise<void> {
    if (previous === undefined) {
      this.#written.delete(env);
      await unlink(file).catch(() => {});
    } else {
      this.#written.set(env, previous);
      await this.#write(file, previous);
    }
  }
}
