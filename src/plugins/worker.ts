/**
 * `isolation: worker`: a plugin runs in a worker thread with a memory limit. This half runs in berth:
 * it starts the thread, relays every PluginInstance call over postMessage, and turns the thread's end
 * (out of memory, a crash, terminate(), stop()) into rejected calls and an unhealthy `health()`, so
 * a plugin that fails this way never takes berth down. The thread's half is worker-main.ts.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { BerthError } from '../errors.js';
import type { BerthEvent } from '../events/types.js';
import type { HealthCheckResult, HealthCheckTarget } from '../health/providers/types.js';
import { SecretValue } from '../render/secrets.js';
import type { DesiredApp, DesiredState } from '../render/types.js';
import type { ExecResult } from '../runtime/types.js';
import type {
  ApplyHookContext,
  ApplyResultContext,
  EventHandler,
  LifecycleHooks,
  PluginContext,
  PluginFactory,
  PluginHealth,
  PluginInstance,
  PluginLogger,
  Scaler,
  ScalerInput,
} from './types.js';

// ---------------------------------------------------------------------------------------------
// Protocol: everything that crosses the thread boundary (structured clone). worker-main.ts imports
// these types only, so the thread loads none of berth's code.

/** What the thread starts with (`workerData`). Config is plain JSON: the host reveals secrets before create. */
export interface WorkerInit {
  /** The plugin module's URL (href). */
  entry: string;
  name: string;
  env: string;
  config: Record<string, unknown>;
}

/** A SecretValue as a worker sees it: its reference, never its value; `$secret` finds it again on the way back. */
export interface SecretMarker {
  $secret: number;
  ref: string;
}

/** `T` as it crosses the boundary: every SecretValue in it replaced by a SecretMarker. */
export type Wire<T> = T extends SecretValue ? SecretMarker : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;

/**
 * A SecretValue in a health check's config, with its value: the check needs it, as an inline plugin
 * would reveal() it. The thread rebuilds it as an object that reveal()s and still prints as a mask.
 */
export interface RevealedSecret {
  $revealed: true;
  ref: string;
  /** Undefined when the secret has no value (reveal() then throws, as SecretValue's does). */
  value?: string;
}

/**
 * A HealthCheckTarget on the wire: `exec` stays in berth (the thread asks for it with an `exec`
 * request) and the config's SecretValues are RevealedSecrets.
 */
export type WireCheckTarget = Omit<HealthCheckTarget, 'exec' | 'config'> & { config: Record<string, unknown> };

export type Proposal = Awaited<ReturnType<Scaler['propose']>>;

/** A ScalerInput on the wire: `now` as an ISO string, rebuilt into a Date in the thread. */
export type WireScalerInput = Omit<ScalerInput, 'now'> & { now: string };

/** The arguments of each call berth relays, by method. */
export interface CallArgs {
  start: Record<never, never>;
  stop: Record<never, never>;
  health: Record<never, never>;
  handle: { event: BerthEvent };
  /** `index` into the instance's healthChecks. */
  check: { index: number; target: WireCheckTarget };
  export: { metricsText: string };
  propose: { input: WireScalerInput };
  preApply: { ctx: ApplyHookContext };
  postApply: { ctx: ApplyResultContext };
  renderTransform: { state: Wire<DesiredState> };
}

/** What each call answers, by method (`void` travels as undefined). */
export interface CallResults {
  start: undefined;
  stop: undefined;
  health: PluginHealth | undefined;
  handle: undefined;
  check: HealthCheckResult;
  export: undefined;
  propose: Proposal;
  preApply: { veto: string } | undefined;
  postApply: undefined;
  renderTransform: Wire<DesiredApp>[];
}

export type Method = keyof CallArgs & keyof CallResults;
export type CallRequest = { [M in Method]: { method: M } & CallArgs[M] }[Method];

/** An Error as it crosses the boundary; `code` when the thrown error had a string one. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: WireError };

/** What the instance implements, as the thread found it after create. */
export interface InstanceDescription {
  start: boolean;
  stop: boolean;
  health: boolean;
  eventHandler?: { events?: EventHandler['events'] };
  healthChecks?: { protocol: string; describe?: string }[];
  metricsExporter: boolean;
  scaler?: { intervalSeconds?: number };
  hooks?: { preApply: boolean; postApply: boolean; renderTransform: boolean };
}

export type LogLevel = keyof PluginLogger;
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export type Control = { action: 'sync'; reason: string } | { action: 'rescale'; reason: string } | { action: 'suspend'; reason: string } | { action: 'resume' };

/** Where loading stopped: the module did not import, exports no create, or create threw. */
export type LoadStage = 'import' | 'no-create' | 'create';

/** What the thread asks berth for, and what berth answers, by method. */
export interface AskArgs {
  /** `ctx.metricsText()`. */
  metricsText: Record<never, never>;
  /** `target.exec(command)` of health check call `call`. */
  exec: { call: number; command: string[] };
}
export interface AskResults {
  metricsText: string;
  exec: ExecResult;
}
export type AskMethod = keyof AskArgs & keyof AskResults;
export type Ask = { [M in AskMethod]: { method: M } & AskArgs[M] }[AskMethod];

/** berth → thread. */
export type ToWorker =
  | { kind: 'call'; id: number; request: CallRequest }
  /** Aborts the signal of call `id` (a health check's). */
  | { kind: 'cancel'; id: number }
  /** `ctx.signal` aborted: the plugin is stopping. */
  | { kind: 'abort' }
  /** The answer to the thread's `ask` `id`. */
  | { kind: 'answer'; id: number; result: Outcome<AskResults[AskMethod]> };

/** thread → berth. */
export type FromWorker =
  | { kind: 'ready'; description: InstanceDescription }
  | { kind: 'failed'; stage: LoadStage; error: WireError }
  | { kind: 'result'; id: number; result: Outcome<CallResults[Method]> }
  | { kind: 'log'; level: LogLevel; msg: string; fields?: Record<string, unknown> }
  | { kind: 'control'; control: Control }
  | { kind: 'ask'; id: number; ask: Ask };

// ---------------------------------------------------------------------------------------------
// Errors

/** Why a worker plugin failed as a whole (rather than one call of it). */
export type WorkerFailure =
  | 'config'
  | 'load'
  | 'no-create'
  | 'create'
  | 'start-timeout'
  | 'out-of-memory'
  | 'crashed'
  | 'exited'
  | 'terminated'
  | 'stopped'
  | 'unsendable'
  | 'secret';

/** A worker plugin that could not start, or whose thread ended (E_PLUGIN; `reason` says which). */
export class PluginWorkerError extends BerthError {
  readonly reason: WorkerFailure;

  constructor(plugin: string, reason: WorkerFailure, message: string, context: Record<string, unknown> = {}, cause?: unknown) {
    super('E_PLUGIN', `plugin ${plugin}: ${message}`, { plugin, reason, ...context }, cause);
    this.reason = reason;
  }
}

/** An error thrown in the thread, as an Error here: same name, message, stack and code. */
function fromWireError(w: WireError): Error {
  const err = new Error(w.message);
  err.name = w.name;
  if (w.stack) err.stack = w.stack;
  if (w.code !== undefined) Object.assign(err, { code: w.code });
  return err;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// Starting

export interface WorkerPluginOptions {
  /** The Plugin document's name, for messages. */
  name: string;
  /** The thread's old-generation heap limit (`spec.memoryLimitMb`). */
  memoryLimitMb: number;
  /** How long import + create may take (default 10 s); the thread is terminated past it. */
  startTimeoutMs?: number;
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
/** The young generation stays small: the limit that matters is the old one, and it is the one users set. */
const MAX_YOUNG_GENERATION_MB = 16;

/** A PluginFactory that runs the plugin module at `entry` in a worker thread (`isolation: worker`). */
export function workerFactory(entry: URL, options: WorkerPluginOptions): PluginFactory {
  return (ctx) => startWorker(entry, options, ctx);
}

async function startWorker(entry: URL, options: WorkerPluginOptions, ctx: PluginContext): Promise<PluginInstance> {
  checkPlainConfig(options.name, ctx.config);
  if (ctx.signal.aborted) throw new PluginWorkerError(options.name, 'stopped', 'stopped before its worker started');
  const init: WorkerInit = { entry: entry.href, name: ctx.name, env: ctx.env, config: ctx.config };
  const resourceLimits: ResourceLimits = {
    maxOldGenerationSizeMb: options.memoryLimitMb,
    maxYoungGenerationSizeMb: Math.max(1, Math.min(MAX_YOUNG_GENERATION_MB, Math.floor(options.memoryLimitMb / 4))),
  };
  let worker: Worker;
  try {
    worker = new Worker(workerMain(), { workerData: init, resourceLimits });
  } catch (err) {
    throw new PluginWorkerError(options.name, 'load', 'cannot start its worker', { memoryLimitMb: options.memoryLimitMb }, err);
  }
  const plugin = new WorkerPlugin(worker, options, ctx);
  const description = await plugin.ready(entry, options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  return plugin.instance(description);
}

/**
 * The thread's entry. Compiled (dist/): worker-main.js. From source: worker-main.ts behind a
 * bootstrap that registers tsx in the thread, because Node 20 does not carry the parent's loader
 * hooks into workers and tsx's `--import` (which workers inherit) registers only on the main thread
 * there. Without tsx (a Node that strips types itself), worker-main.ts as it is.
 */
function workerMain(): URL {
  if (!import.meta.url.endsWith('.ts')) return new URL('./worker-main.js', import.meta.url);
  const main = new URL('./worker-main.ts', import.meta.url);
  let tsx: string;
  try {
    tsx = import.meta.resolve('tsx/esm/api');
  } catch {
    return main;
  }
  const code = `import { register } from ${JSON.stringify(tsx)};\nregister();\nawait import(${JSON.stringify(main.href)});\n`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** The config must be plain JSON to cross over; a SecretValue left in it would arrive without its value. */
function checkPlainConfig(plugin: string, config: Record<string, unknown>): void {
  const walk = (value: unknown, at: string): void => {
    if (value instanceof SecretValue) throw new PluginWorkerError(plugin, 'config', `config${at} is an unrevealed secret: reveal secrets before starting a worker plugin`, { field: at });
    if (value === null || ['string', 'number', 'boolean', 'undefined'].includes(typeof value)) return;
    if (Array.isArray(value)) return value.forEach((v, i) => walk(v, `${at}[${i}]`));
    if (isPlainObject(value)) return Object.entries(value).forEach(([k, v]) => walk(v, `${at}.${k}`));
    throw new PluginWorkerError(plugin, 'config', `config${at} is not plain JSON (${typeof value}) and cannot be sent to its worker`, { field: at });
  };
  walk(config, '');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------------
// The connection

interface Pending {
  method: Method;
  /** A health check's `target.exec`, which the thread asks for by this call's id. */
  exec?: HealthCheckTarget['exec'];
  resolve(value: CallResults[Method]): void;
  reject(err: Error): void;
  /** Stops listening to the call's AbortSignal. */
  done(): void;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * One plugin's thread: pending calls by id, and the reason it ended once it has. The thread is
 * unref'd while no call is pending, so an idle plugin never keeps a one-shot command alive.
 */
class WorkerPlugin {
  readonly #worker: Worker;
  readonly #name: string;
  readonly #memoryLimitMb: number;
  readonly #ctx: PluginContext;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Set until the thread says ready (or fails). */
  #starting: Deferred<InstanceDescription> | undefined = deferred();
  /** Why the thread ended; every later call rejects with it. */
  #ended: PluginWorkerError | undefined;
  readonly #onAbort = (): void => {
    this.#post({ kind: 'abort' });
  };

  constructor(worker: Worker, options: WorkerPluginOptions, ctx: PluginContext) {
    this.#worker = worker;
    this.#name = options.name;
    this.#memoryLimitMb = options.memoryLimitMb;
    this.#ctx = ctx;
    // Everything the thread sends is handled inside a try: a malformed message (plugin code can reach
    // parentPort too) must never throw in berth's event loop.
    worker.on('message', (msg: FromWorker) => {
      try {
        this.#onMessage(msg);
      } catch (err) {
        this.#ctx.log.warn('plugin worker message not understood', { plugin: this.#name, error: messageOf(err) });
      }
    });
    worker.on('error', (err: Error) => this.#died(this.#crashError(err)));
    worker.on('exit', (code: number) => this.#died(new PluginWorkerError(this.#name, 'exited', `worker exited with code ${code}`, { exitCode: code })));
    ctx.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Waits for the thread to load the plugin and create it; past `timeoutMs` the thread is terminated. */
  async ready(entry: URL, timeoutMs: number): Promise<InstanceDescription> {
    const starting = this.#starting!;
    const timer = setTimeout(() => {
      const err = new PluginWorkerError(this.#name, 'start-timeout', `worker did not load ${entry.href} within ${timeoutMs} ms`, { entry: entry.href });
      void this.#end(err);
    }, timeoutMs);
    try {
      return await starting.promise;
    } catch (err) {
      await this.#end(err instanceof PluginWorkerError ? err : new PluginWorkerError(this.#name, 'load', 'worker failed to start', {}, err));
      throw err;
    } finally {
      clearTimeout(timer);
      this.#starting = undefined;
      this.#updateRef();
    }
  }

  /** The PluginInstance berth's host sees: what the plugin implements, each method relayed. */
  instance(d: InstanceDescription): PluginInstance {
    const inst: PluginInstance = {
      stop: () => this.#stop(d.stop),
      health: () => this.#health(d.health),
      terminate: () => this.#end(new PluginWorkerError(this.#name, 'terminated', 'worker terminated')),
    };
    if (d.start) inst.start = () => this.#call({ method: 'start' });
    if (d.eventHandler) inst.eventHandler = { ...(d.eventHandler.events && { events: d.eventHandler.events }), handle: (event) => this.#call({ method: 'handle', event }) };
    if (d.healthChecks) {
      inst.healthChecks = d.healthChecks.map(({ protocol, describe }, index) => ({
        protocol,
        ...(describe !== undefined && { describe }),
        // async: building the wire target (revealing secrets) can throw; that rejects, as every call does.
        check: async (target, signal) => this.#call({ method: 'check', index, target: wireTarget(target) }, signal, target.exec.bind(target)),
      }));
    }
    if (d.metricsExporter) inst.metricsExporter = { export: (metricsText) => this.#call({ method: 'export', metricsText }) };
    if (d.scaler) {
      const input = (i: ScalerInput): WireScalerInput => ({ ...i, now: i.now.toISOString() });
      inst.scaler = { ...(d.scaler.intervalSeconds !== undefined && { intervalSeconds: d.scaler.intervalSeconds }), propose: async (i) => this.#call({ method: 'propose', input: input(i) }) };
    }
    if (d.hooks) {
      const hooks: LifecycleHooks = {};
      if (d.hooks.preApply) hooks.preApply = (ctx) => this.#call({ method: 'preApply', ctx });
      if (d.hooks.postApply) hooks.postApply = (ctx) => this.#call({ method: 'postApply', ctx });
      if (d.hooks.renderTransform) hooks.renderTransform = (state) => this.#renderTransform(state);
      inst.hooks = hooks;
    }
    return inst;
  }

  /**
   * Sends one call and waits for its answer. A health check's `signal` is relayed as a cancel, and
   * its `exec` stays here for the thread to ask for.
   */
  #call<R extends CallRequest>(request: R, signal?: AbortSignal, exec?: HealthCheckTarget['exec']): Promise<CallResults[R['method']]> {
    if (this.#ended) return Promise.reject(this.#ended);
    const id = this.#nextId++;
    return new Promise<CallResults[R['method']]>((resolve, reject) => {
      const onAbort = (): void => {
        this.#post({ kind: 'cancel', id });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        method: request.method,
        // The thread answers a call with its method's result type (worker-main's `run`).
        resolve: (value) => resolve(value as CallResults[R['method']]),
        reject,
        ...(exec && { exec }),
        done: () => signal?.removeEventListener('abort', onAbort),
      });
      const unsent = this.#post({ kind: 'call', id, request });
      if (unsent) {
        this.#settle(id)?.reject(new PluginWorkerError(this.#name, 'unsendable', `cannot send ${request.method} to its worker`, { method: request.method }, unsent));
        return;
      }
      if (signal?.aborted) onAbort();
      this.#updateRef();
    });
  }

  async #health(implemented: boolean): Promise<PluginHealth> {
    if (!implemented) return this.#endedHealth() ?? { ok: true };
    try {
      return this.#endedHealth() ?? (await this.#call({ method: 'health' })) ?? { ok: true };
    } catch (err) {
      // The thread ended while the plugin's health() ran: that is the answer, not an error.
      const ended = this.#endedHealth();
      if (ended) return ended;
      throw err;
    }
  }

  /** Unhealthy, saying why, once the thread has ended. */
  #endedHealth(): PluginHealth | undefined {
    return this.#ended && { ok: false, message: this.#ended.message };
  }

  /** The plugin's own stop (when it has one), then the thread ends. */
  async #stop(implemented: boolean): Promise<void> {
    try {
      if (implemented && !this.#ended) await this.#call({ method: 'stop' });
    } finally {
      await this.#end(new PluginWorkerError(this.#name, 'stopped', 'worker stopped'));
    }
  }

  /** Secrets cross as markers (the thread never sees a value) and come back as the same SecretValues. */
  async #renderTransform(state: Readonly<DesiredState>): Promise<DesiredApp[]> {
    const secrets = new Map<SecretValue, number>();
    const apps = await this.#call({ method: 'renderTransform', state: hideSecrets(state, secrets) });
    // Shape checked by the host, which validates what renderTransform returns before using it.
    return restoreSecrets(apps, [...secrets.keys()], this.#name) as DesiredApp[];
  }

  #onMessage(msg: FromWorker): void {
    switch (msg.kind) {
      case 'ready':
        this.#starting?.resolve(msg.description);
        return;
      case 'failed':
        this.#starting?.reject(this.#loadError(msg.stage, msg.error));
        return;
      case 'result': {
        const pending = this.#settle(msg.id);
        if (!pending) return;
        if (msg.result.ok) pending.resolve(msg.result.value);
        else pending.reject(fromWireError(msg.result.error));
        return;
      }
      case 'log':
        if (!LOG_LEVELS.includes(msg.level)) throw new Error(`unknown log level ${String(msg.level)}`);
        this.#ctx.log[msg.level](String(msg.msg), msg.fields);
        return;
      case 'control':
        this.#control(msg.control);
        return;
      case 'ask':
        void this.#answer(msg.id, msg.ask);
        return;
    }
  }

  #control(control: Control): void {
    try {
      if (control.action === 'sync') this.#ctx.controls.sync(control.reason);
      else if (control.action === 'rescale') this.#ctx.controls.rescale(control.reason);
      else if (control.action === 'suspend') this.#ctx.controls.suspend(control.reason);
      else if (control.action === 'resume') this.#ctx.controls.resume();
    } catch (err) {
      this.#ctx.log.warn('plugin control failed', { plugin: this.#name, action: control.action, error: messageOf(err) });
    }
  }

  async #answer(id: number, ask: Ask): Promise<void> {
    let result: Outcome<AskResults[AskMethod]>;
    try {
      result = { ok: true, value: await this.#ask(ask) };
    } catch (err) {
      result = { ok: false, error: { name: err instanceof Error ? err.name : 'Error', message: messageOf(err) } };
    }
    this.#post({ kind: 'answer', id, result });
  }

  #ask(ask: Ask): Promise<AskResults[AskMethod]> {
    if (ask.method === 'metricsText') return this.#ctx.metricsText();
    const exec = this.#pending.get(ask.call)?.exec;
    if (!exec) throw new Error('exec is only available while its health check runs');
    return exec(ask.command.map(String));
  }

  #loadError(stage: LoadStage, error: WireError): PluginWorkerError {
    const cause = fromWireError(error);
    if (stage === 'no-create') return new PluginWorkerError(this.#name, 'no-create', error.message, { stage });
    if (stage === 'import') return new PluginWorkerError(this.#name, 'load', 'cannot load its module', { stage }, cause);
    return new PluginWorkerError(this.#name, 'create', 'create failed', { stage }, cause);
  }

  #crashError(err: Error): PluginWorkerError {
    if ((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return new PluginWorkerError(this.#name, 'out-of-memory', `worker ran out of its ${this.#memoryLimitMb} MB memory limit`, { memoryLimitMb: this.#memoryLimitMb }, undefined);
    }
    return new PluginWorkerError(this.#name, 'crashed', 'worker crashed', {}, err);
  }

  /** The thread ended on its own: said once in the log, since no call may be there to report it. */
  #died(err: PluginWorkerError): void {
    if (this.#ended) return;
    this.#ctx.log.error('plugin worker ended', { plugin: this.#name, reason: err.reason, error: err.message });
    this.#fail(err);
  }

  /** Ends the thread on purpose (terminate, stop, failed start); resolves once it is gone. */
  async #end(err: PluginWorkerError): Promise<void> {
    this.#fail(err);
    await this.#worker.terminate();
  }

  /** Records why the thread ended and rejects every pending call with it; the first reason wins. */
  #fail(err: PluginWorkerError): void {
    if (this.#ended) return;
    this.#ended = err;
    this.#ctx.signal.removeEventListener('abort', this.#onAbort);
    this.#starting?.reject(err);
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(err);
  }

  #settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (!pending) return undefined;
    this.#pending.delete(id);
    pending.done();
    this.#updateRef();
    return pending;
  }

  /** Sends a message; returns the error when it cannot be cloned. A gone thread drops it silently. */
  #post(msg: ToWorker): Error | undefined {
    try {
      this.#worker.postMessage(msg);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  #updateRef(): void {
    if (this.#starting || this.#pending.size > 0) this.#worker.ref();
    else this.#worker.unref();
  }
}

// ---------------------------------------------------------------------------------------------
// Secrets and health check targets

/** The target's data, copied field by field (it may carry more than can be cloned). */
function wireTarget(target: HealthCheckTarget): WireCheckTarget {
  return {
    host: target.host,
    ...(target.port !== undefined && { port: target.port }),
    ...(target.containerPort !== undefined && { containerPort: target.containerPort }),
    container: { id: target.container.id, name: target.container.name },
    config: revealSecrets(target.config),
    timeoutMs: target.timeoutMs,
  };
}

function revealSecrets(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const walk = (v: unknown): unknown => {
    if (v instanceof SecretValue) return { $revealed: true, ref: v.ref, ...(v.resolved && { value: v.reveal() }) } satisfies RevealedSecret;
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, walk(v)]));
}

function hideSecrets<T>(value: T, secrets: Map<SecretValue, number>): Wire<T> {
  const walk = (v: unknown): unknown => {
    if (v instanceof SecretValue) {
      let index = secrets.get(v);
      if (index === undefined) secrets.set(v, (index = secrets.size));
      return { $secret: index, ref: v.ref } satisfies SecretMarker;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  // walk replaces exactly the SecretValues, which is what Wire<T> says.
  return walk(value) as Wire<T>;
}

function isSecretMarker(v: unknown): v is SecretMarker {
  return isPlainObject(v) && Object.keys(v).length === 2 && typeof v.$secret === 'number' && typeof v.ref === 'string';
}

function restoreSecrets(value: unknown, secrets: SecretValue[], plugin: string): unknown {
  if (isSecretMarker(value)) {
    const secret = secrets[value.$secret];
    if (!secret || secret.ref !== value.ref) throw new PluginWorkerError(plugin, 'secret', `renderTransform returned a secret it was not given (${value.ref})`, { ref: value.ref });
    return secret;
  }
  if (Array.isArray(value)) return value.map((v) => restoreSecrets(v, secrets, plugin));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, restoreSecrets(v, secrets, plugin)]));
  return value;
}
