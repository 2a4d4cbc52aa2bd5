import { mkdir, readFile, rename, unlink, watch, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ProxyAppStats, ProxyConfig, ProxyDriver } from '../types.js';
import { runLocal, withConfig, type CommandRunner } from './command.js';
import { configDrift, fileHeader, parseHaproxyState, renderHaproxyConfig, renderRetired, sameStructure } from './config.js';
import { HaproxyCommandError, HaproxyConfigError } from './errors.js';
import { backendName } from './names.js';
import { unixSocketApi, type RuntimeApi } from './runtime-api.js';
import { POLL_MS, ServerSync } from './server-sync.js';
import { readBackendStats } from './stats.js';
import { configProblems, ignoredNginxOptions } from './validate.js';

export interface HaproxyOptions {
  /** The file berth owns, holding one environment; HAProxy loads it after its main config (`-f main.cfg -f FILE`, or a folder). */
  configFile: string;
  /** The admin socket: `stats socket PATH level admin` in HAProxy's global section. */
  socket: string;
  /** The frontend's `bind` (an address, plus any bind options: `:443 ssl crt /etc/haproxy/site.pem`). */
  bind: string;
  /** Tests the config without touching the running HAProxy (`haproxy -c -f main.cfg -f {config}`); `{config}` becomes configFile. */
  checkCmd: string[];
  /** Reloads HAProxy (master-worker: SIGUSR2 to the master, e.g. `systemctl reload haproxy`); `{config}` becomes configFile. */
  reloadCmd: string[];
  /** Runs checkCmd and reloadCmd. Default: a local process, no shell. */
  runCommand?: CommandRunner;
  /** The Runtime API. Default: the admin socket. */
  api?: RuntimeApi;
  /** Minimum time between two reloads. */
  minReloadIntervalMs: number;
  /** Longest wait for a leaving server's sessions to end before they are shut (default 30 s). */
  drainTimeoutMs?: number;
  /** How long to wait for a reloaded HAProxy's new worker before warning (default 5 s). */
  reloadTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Ignored nginx options, an unconfirmed reload, a server that could not be deleted (apply goes on). */
  onWarning?: (message: string) => void;
}

/** Environment names as the repository schema allows them: written into comments and names. */
const ENV_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * HAProxy behind ProxyDriver. A change of servers only (a rolling update: add, drain, remove,
 * weights) is made through the Runtime API without a reload, and the file is rewritten to match, so
 * a restart or reload serves the same. Anything else (a route added or removed) is written
 * atomically, tested with `haproxy -c` (refused: the old file is restored) and reloaded.
 */
export class HaproxyDriver implements ProxyDriver {
  readonly name = 'haproxy';
  readonly #opts: HaproxyOptions;
  readonly #servers: ServerSync;
  readonly #api: RuntimeApi;
  /** The text this driver last wrote: its own writes are not drift. */
  #written: string | undefined;
  #lastReload = 0;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #warned = new Set<string>();
  /** Reloads done (a change of routes). */
  reloads = 0;
  /** Changes made through the Runtime API alone, without a reload. */
  runtimeUpdates = 0;

  constructor(options: HaproxyOptions) {
    if (/[\u0000-\u001f]/.test(options.bind)) throw new Error(`haproxy bind ${JSON.stringify(options.bind)} holds a control character`);
    this.#opts = options;
    this.#api = options.api ?? unixSocketApi(options.socket);
    this.#servers = new ServerSync({
      api: this.#api,
      drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
      now: () => this.#now(),
      sleep: (ms) => this.#sleep(ms),
      ...(options.onWarning && { onWarning: options.onWarning }),
    });
  }

  file(): string {
    return this.#opts.configFile;
  }

  /** The model berth last wrote, with `drift` when the file, or the servers HAProxy runs, are not what berth wrote. */
  async read(env: string): Promise<ProxyConfig> {
    const file = this.file();
    const text = await readFile(file, 'utf8').catch(() => undefined);
    // An empty file is the placeholder an operator creates so HAProxy starts before berth's first apply.
    if (text === undefined || text.trim() === '') return { env, routes: [], present: false };
    const head = fileHeader(text);
    if (head?.retired) return { env, routes: [], present: false };
    const state = parseHaproxyState(text);
    if (!state) return { env, routes: [], present: true, drift: `haproxy file ${file} has no readable berth state (edited by hand or not written by berth)` };
    if (state.env !== env) return { env, routes: [], present: false, drift: `haproxy file ${file} holds environment "${state.env}"; give each environment its own --haproxy-config and --haproxy-bind` };
    const drift = configDrift(text, state, this.#opts.bind) ?? (await this.#servers.drift(state));
    return drift ? { ...state, present: true, drift: `${drift} (${file})` } : { ...state, present: true };
  }

  /** Changes of the file made by anyone but this driver (a hand edit, a deletion), until `signal` aborts. */
  async *watch(env: string, signal: AbortSignal): AsyncIterable<{ env: string; file: string }> {
    const file = this.file();
    const dir = path.dirname(file);
    await mkdir(dir, { recursive: true });
    try {
      for await (const change of watch(dir, { signal })) {
        if (change.filename !== path.basename(file)) continue;
        const text = await readFile(file, 'utf8').catch(() => undefined);
        if (text !== undefined && text === this.#written) continue;
        yield { env, file };
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }

  /**
   * `app`'s backend counters (stats.ts): requests since the current worker started, its pid as the
   * epoch, and the mean response time. Undefined when HAProxy runs no such backend, or reloaded
   * while it was read. No p95: HAProxy keeps none.
   */
  async stats(env: string, app: string): Promise<ProxyAppStats | undefined> {
    const before = await this.#servers.workerPid();
    const backend = await readBackendStats(this.#api, backendName(env, app));
    const after = await this.#servers.workerPid();
    if (!backend || before === undefined || before !== after) return undefined;
    return { requestsTotal: backend.requestsTotal, epoch: String(before), ...(backend.meanResponseMs !== undefined && { meanResponseMs: backend.meanResponseMs }) };
  }

  apply(config: ProxyConfig): Promise<{ changed: boolean }> {
    return this.#exclusive(() => this.#apply(config));
  }

  /** A retired environment: its routes go (the file stays, as a stub HAProxy still loads), tested and reloaded. */
  remove(env: string): Promise<{ changed: boolean }> {
    return this.#exclusive(async () => {
      const file = this.file();
      const previous = await readFile(file, 'utf8').catch(() => undefined);
      if (previous === undefined || fileHeader(previous)?.retired || parseHaproxyState(previous)?.env !== env) return { changed: false };
      await this.#commit(env, previous, renderRetired(env), []);
      return { changed: true };
    });
  }

  async #apply(config: ProxyConfig): Promise<{ changed: boolean }> {
    this.#refuse(config);
    this.#warnIgnored(config);
    const file = this.file();
    const bind = this.#opts.bind;
    const next = renderHaproxyConfig(config, bind);
    const previous = await readFile(file, 'utf8').catch(() => undefined);
    const before = previous === undefined ? undefined : parseHaproxyState(previous);
    if (before && before.env !== config.env) {
      throw new HaproxyConfigError(`haproxy file ${file} holds environment "${before.env}"; environment "${config.env}" cannot be written there too. Give each environment its own --haproxy-config and --haproxy-bind`, { env: config.env, file, other: before.env });
    }
    // The Runtime API is enough when the file is berth's own, in this format, and only servers change.
    const runtimeOnly = before !== undefined && previous === renderHaproxyConfig(before, bind) && sameStructure(before, config, bind);
    if (!runtimeOnly) {
      await this.#commit(config.env, previous, next, config.routes.map((r) => backendName(config.env, r.app)));
      return { changed: true };
    }
    if (previous !== next) await this.#writeTested(config.env, previous, next);
    const outcome = await this.#servers.sync(config);
    if (outcome.reload) {
      this.#opts.onWarning?.(`haproxy: reloading instead of using the Runtime API for environment "${config.env}": ${outcome.reload}`);
      await this.#reload(config.env, previous, next, config.routes.map((r) => backendName(config.env, r.app)));
      return { changed: true };
    }
    if (outcome.changed) this.runtimeUpdates++;
    return { changed: outcome.changed || previous !== next };
  }

  /** Routes HAProxy cannot be given are refused before anything is written, naming app and field. */
  #refuse(config: ProxyConfig): void {
    const file = this.file();
    if (!ENV_NAME.test(config.env)) throw new HaproxyConfigError(`environment name ${JSON.stringify(config.env)} cannot be written into the haproxy file: expected letters, digits, '.', '_' or '-'`, { env: config.env, file });
    const problems = configProblems(config);
    const first = problems[0];
    if (!first) return;
    const all = problems.map((p) => `app "${p.app}": ${p.field}: ${p.message}`).join('; ');
    throw new HaproxyConfigError(`haproxy cannot serve the routes of environment "${config.env}": ${all}`, { env: config.env, app: first.app, field: first.field, file });
  }

  /** route.nginx belongs to nginx: HAProxy does not read it. Said once per app and value, not on every apply. */
  #warnIgnored(config: ProxyConfig): void {
    for (const r of config.routes) {
      const names = ignoredNginxOptions(r);
      const key = `${config.env}\0${r.app}\0${JSON.stringify(r.proxyOptions?.nginx)}`;
      if (names.length === 0 || this.#warned.has(key)) continue;
      this.#warned.add(key);
      this.#opts.onWarning?.(`haproxy ignores route.nginx of app "${r.app}" in environment "${config.env}" (${names.join(', ')}): those are nginx directives`);
    }
  }

  /** Runs `work` after every earlier call: two applies never interleave their Runtime API commands. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Puts `next` in place and tests it; refused: `previous` is restored and HAProxy's message thrown. */
  async #writeTested(env: string, previous: string | undefined, next: string): Promise<void> {
    const file = this.file();
    await mkdir(path.dirname(file), { recursive: true });
    await this.#write(next);
    const run = this.#opts.runCommand ?? runLocal;
    const test = await run(withConfig(this.#opts.checkCmd, file));
    if (test.ok) return;
    await this.#restore(previous);
    throw new HaproxyConfigError(`haproxy rejected the new config for environment "${env}"; the previous config was restored and HAProxy keeps serving it. haproxy said: ${test.output}`, { env, file });
  }

  /**
   * Once the reload interval allows: writes and tests `next`, then reloads and waits for the new
   * worker to run `backends`. `previous` comes back when either step fails.
   */
  async #commit(env: string, previous: string | undefined, next: string, backends: string[]): Promise<void> {
    const wait = this.#lastReload + this.#opts.minReloadIntervalMs - this.#now();
    if (wait > 0) await this.#sleep(wait);
    await this.#writeTested(env, previous, next);
    await this.#reload(env, previous, next, backends);
  }

  async #reload(env: string, previous: string | undefined, next: string, backends: string[]): Promise<void> {
    const file = this.file();
    const run = this.#opts.runCommand ?? runLocal;
    const workerBefore = await this.#servers.workerPid();
    const reload = await run(withConfig(this.#opts.reloadCmd, file));
    if (!reload.ok) {
      if (previous !== next) await this.#restore(previous);
      throw new HaproxyCommandError(`haproxy reload failed (${this.#opts.reloadCmd.join(' ')}): ${reload.output}; is HAProxy running?${previous !== next ? ' The previous config was restored.' : ''}`, { env, file });
    }
    await this.#waitReloaded(env, workerBefore, backends);
    this.#lastReload = this.#now();
    this.reloads++;
  }

  /** A reload is asynchronous: it is live once a new worker answers the admin socket with every backend of the new config. */
  async #waitReloaded(env: string, workerBefore: number | undefined, backends: string[]): Promise<void> {
    const timeout = this.#opts.reloadTimeoutMs ?? 5000;
    const deadline = this.#now() + timeout;
    while (this.#now() < deadline) {
      const pid = await this.#servers.workerPid();
      if (pid !== undefined && pid !== workerBefore) {
        const running = await this.#servers.backends();
        if (backends.every((b) => running.has(b))) return;
      }
      await this.#sleep(POLL_MS);
    }
    this.#opts.onWarning?.(`haproxy did not run the new config for "${env}" within ${timeout} ms of the reload (no new worker with its backends on ${this.#opts.socket}); continuing`);
  }

  /** Temp file in the same folder + rename: HAProxy never reads a half-written file. */
  async #write(text: string): Promise<void> {
    const file = this.file();
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    this.#written = text;
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
  }

  async #restore(previous: string | undefined): Promise<void> {
    if (previous !== undefined) return this.#write(previous);
    this.#written = undefined;
    await unlink(this.file()).catch(() => {});
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  #sleep(ms: number): Promise<void> {
    return this.#opts.sleep ? this.#opts.sleep(ms) : new Promise((r) => setTimeout(r, ms));
  }
}
