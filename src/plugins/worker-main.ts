/**
 * The thread half of `isolation: worker` (the berth half and the protocol are in worker.ts): imports
 * the plugin's module, calls its create with a context that relays to berth, says what the instance
 * implements, then answers berth's calls. It loads none of berth's code, so the thread's memory
 * limit is the plugin's own.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { HealthCheckTarget } from '../health/providers/types.js';
import type { DesiredState } from '../render/types.js';
import type { PluginContext, PluginFactory, PluginInstance } from './types.js';
import type {
  Ask,
  AskMethod,
  AskResults,
  CallRequest,
  CallResults,
  Control,
  FromWorker,
  InstanceDescription,
  LoadStage,
  LogLevel,
  Method,
  RevealedSecret,
  ToWorker,
  WireCheckTarget,
  WireError,
  WorkerInit,
} from './worker.js';

function connect(): MessagePort {
  if (!parentPort) throw new Error('worker-main runs only as a worker thread (see worker.ts)');
  return parentPort;
}

const port = connect();
const init = workerData as WorkerInit;

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: printable(err) };
  const code: unknown = (err as { code?: unknown }).code;
  return { name: err.name, message: err.message, ...(err.stack && { stack: err.stack }), ...(typeof code === 'string' && { code }) };
}

function printable(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'a value that cannot be printed';
  }
}

// ---------------------------------------------------------------------------------------------
// The plugin's context

/** Aborted when berth's `ctx.signal` is. */
const stopping = new AbortController();
/** Questions to berth waiting for its answer, by id. */
const asked = new Map<number, { resolve(value: AskResults[AskMethod]): void; reject(err: Error): void }>();
let nextAskId = 1;

/** Asks berth for something only its thread has (metrics text, a container exec). */
function ask<A extends Ask>(question: A): Promise<AskResults[A['method']]> {
  return new Promise((resolve, reject) => {
    const id = nextAskId++;
    // berth answers each ask with its method's result type (worker.ts `#ask`).
    asked.set(id, { resolve: (value) => resolve(value as AskResults[A['method']]), reject });
    send({ kind: 'ask', id, ask: question });
  });
}

function logger(level: LogLevel): (msg: string, fields?: Record<string, unknown>) => void {
  return (msg, fields) => {
    try {
      send({ kind: 'log', level, msg: printable(msg), ...(fields !== undefined && { fields }) });
    } catch (err) {
      // Fields that cannot be cloned (a function, a socket): the line still goes out, saying so.
      send({ kind: 'log', level, msg: printable(msg), fields: { unsendableFields: toWireError(err).message } });
    }
  };
}

function control(c: Control): void {
  send({ kind: 'control', control: c });
}

const ctx: PluginContext = {
  name: init.name,
  env: init.env,
  config: init.config,
  log: { debug: logger('debug'), info: logger('info'), warn: logger('warn'), error: logger('error') },
  signal: stopping.signal,
  now: () => Date.now(),
  controls: {
    sync: (reason) => control({ action: 'sync', reason: printable(reason) }),
    rescale: (reason) => control({ action: 'rescale', reason: printable(reason) }),
    suspend: (reason) => control({ action: 'suspend', reason: printable(reason) }),
    resume: () => control({ action: 'resume' }),
    // The controller's status lives in berth's thread and cannot be read synchronously from here.
    status: () => undefined,
  },
  metricsText: () => ask({ method: 'metricsText' }),
};

// ---------------------------------------------------------------------------------------------
// Loading

let instance: PluginInstance | undefined;
/** AbortControllers of the calls in progress, by id (a health check's signal). */
const inProgress = new Map<number, AbortController>();

port.on('message', (msg: ToWorker) => {
  switch (msg.kind) {
    case 'call':
      void answer(msg.id, msg.request);
      return;
    case 'cancel':
      inProgress.get(msg.id)?.abort();
      return;
    case 'abort':
      stopping.abort();
      return;
    case 'answer': {
      const waiting = asked.get(msg.id);
      asked.delete(msg.id);
      if (msg.result.ok) waiting?.resolve(msg.result.value);
      else waiting?.reject(Object.assign(new Error(msg.result.error.message), { name: msg.result.error.name }));
      return;
    }
  }
});

/** `create`, a default export function, or a default export object with `create`. */
function findCreate(mod: Record<string, unknown>): PluginFactory | undefined {
  const { create, default: def } = mod;
  if (typeof create === 'function') return create as PluginFactory;
  if (typeof def === 'function') return def as PluginFactory;
  if (typeof def === 'object' && def !== null && typeof (def as { create?: unknown }).create === 'function') {
    const owner = def as { create: PluginFactory };
    return (c) => owner.create(c);
  }
  return undefined;
}

function fail(stage: LoadStage, err: unknown): void {
  send({ kind: 'failed', stage, error: toWireError(err) });
}

async function load(): Promise<void> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(init.entry)) as Record<string, unknown>;
  } catch (err) {
    return fail('import', err);
  }
  const create = findCreate(mod);
  if (!create) return fail('no-create', new Error(`${init.entry} exports no create(context) function (export function create, or a default export)`));
  try {
    const created: unknown = await create(ctx);
    if (typeof created !== 'object' || created === null) throw new Error(`create returned ${created === null ? 'null' : typeof created}, not a plugin instance`);
    instance = created as PluginInstance;
  } catch (err) {
    return fail('create', err);
  }
  send({ kind: 'ready', description: describeInstance(instance) });
}

function describeInstance(inst: PluginInstance): InstanceDescription {
  const has = (v: unknown): boolean => typeof v === 'function';
  const { eventHandler, healthChecks, scaler, hooks } = inst;
  return {
    start: has(inst.start),
    stop: has(inst.stop),
    health: has(inst.health),
    ...(eventHandler && { eventHandler: eventHandler.events ? { events: [...eventHandler.events] } : {} }),
    ...(healthChecks && { healthChecks: healthChecks.map((p) => ({ protocol: printable(p.protocol), ...(p.describe !== undefined && { describe: printable(p.describe) }) })) }),
    metricsExporter: Boolean(inst.metricsExporter),
    ...(scaler && { scaler: scaler.intervalSeconds !== undefined ? { intervalSeconds: scaler.intervalSeconds } : {} }),
    ...(hooks && { hooks: { preApply: has(hooks.preApply), postApply: has(hooks.postApply), renderTransform: has(hooks.renderTransform) } }),
  };
}

// ---------------------------------------------------------------------------------------------
// Calls

function need<T>(part: T | undefined, what: string): T {
  if (part === undefined) throw new Error(`the plugin implements no ${what}`);
  return part;
}

async function run(inst: PluginInstance, id: number, req: CallRequest, signal: AbortSignal): Promise<CallResults[Method]> {
  switch (req.method) {
    case 'start':
      await inst.start?.();
      return undefined;
    case 'stop':
      await inst.stop?.();
      return undefined;
    case 'health':
      return (await inst.health?.()) ?? undefined;
    case 'handle':
      await need(inst.eventHandler, 'eventHandler').handle(req.event);
      return undefined;
    case 'check':
      return need(inst.healthChecks?.[req.index], `healthChecks[${req.index}]`).check(checkTarget(id, req.target), signal);
    case 'export':
      await need(inst.metricsExporter, 'metricsExporter').export(req.metricsText);
      return undefined;
    case 'propose':
      return (await need(inst.scaler, 'scaler').propose({ ...req.input, now: new Date(req.input.now) })) ?? undefined;
    case 'preApply': {
      const verdict = await need(inst.hooks?.preApply, 'hooks.preApply').call(inst.hooks, req.ctx);
      return verdict ? { veto: verdict.veto } : undefined;
    }
    case 'postApply':
      await need(inst.hooks?.postApply, 'hooks.postApply').call(inst.hooks, req.ctx);
      return undefined;
    case 'renderTransform': {
      // The plugin sees SecretMarkers where berth has SecretValues (it never gets a secret's value);
      // worker.ts swaps them back in what it returns.
      const apps = await need(inst.hooks?.renderTransform, 'hooks.renderTransform').call(inst.hooks, req.state as unknown as Readonly<DesiredState>);
      return apps as unknown as CallResults['renderTransform'];
    }
  }
}

async function answer(id: number, request: CallRequest): Promise<void> {
  const controller = new AbortController();
  inProgress.set(id, controller);
  let result: Extract<FromWorker, { kind: 'result' }>['result'];
  try {
    result = { ok: true, value: await run(need(instance, 'instance (create has not finished)'), id, request, controller.signal) };
  } catch (err) {
    result = { ok: false, error: toWireError(err) };
  } finally {
    inProgress.delete(id);
  }
  try {
    send({ kind: 'result', id, result });
  } catch (err) {
    // What the plugin returned cannot be cloned (a function, a class with private state).
    send({ kind: 'result', id, result: { ok: false, error: { name: 'DataCloneError', message: `${request.method} returned a value that cannot be sent to berth: ${toWireError(err).message}` } } });
  }
}

// ---------------------------------------------------------------------------------------------
// Health check targets

/** The target as the plugin gets it: `exec` asks berth, which runs it for call `call`. */
function checkTarget(call: number, target: WireCheckTarget): HealthCheckTarget {
  return { ...target, config: withSecrets(target.config), exec: (command) => ask({ method: 'exec', call, command }) };
}

function isRevealedSecret(v: unknown): v is RevealedSecret {
  return typeof v === 'object' && v !== null && (v as { $revealed?: unknown }).$revealed === true && typeof (v as { ref?: unknown }).ref === 'string';
}

function withSecrets(config: Record<string, unknown>): Record<string, unknown> {
  const walk = (v: unknown): unknown => {
    if (isRevealedSecret(v)) return new WorkerSecret(v.ref, v.value);
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, walk(v)]));
}

const MASK = '********';

/**
 * A secret of a health check's config, as SecretValue behaves for a plugin: reveal() gives the value;
 * it prints, serialises and inspects as a mask. (No digest(): its key stays in berth's thread.)
 */
class WorkerSecret {
  readonly ref: string;
  readonly #value: string | undefined;

  constructor(ref: string, value: string | undefined) {
    this.ref = ref;
    this.#value = value;
  }

  get resolved(): boolean {
    return this.#value !== undefined;
  }

  reveal(): string {
    if (this.#value === undefined) throw new Error(`secret "${this.ref}" has no value`);
    return this.#value;
  }

  toJSON(): string {
    return MASK;
  }

  toString(): string {
    return MASK;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretValue(${this.ref})`;
  }
}

await load();
