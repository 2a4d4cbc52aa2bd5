/**
 * The plugin host of one environment: starts the plugins the repo enables (dependencies first), stops
 * them in reverse, reloads one whose document changed, and calls every plugin through a guard. A
 * guarded call has a timeout; a plugin that throws, hangs or is slow is logged with its name and
 * counted, and after `failureThreshold` failures in a row it is moved to `error` and left alone until
 * it is reloaded (a new commit of its document, or POST /api/v1/plugins/:name/reload). Nothing a
 * plugin does can fail or block a reconcile: only a `preApply` hook of a plugin marked
 * `required: true` can stop an apply, and that stop is reported as such.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import { EVENT_TYPES, type BerthEvent, type EventType } from '../events/types.js';
import type { HealthCheckProvider } from '../health/providers/types.js';
import type { Metrics } from '../report/metrics.js';
import { SecretValue } from '../render/secrets.js';
import { checkTransformed } from '../render/transform.js';
import type { DesiredState, PluginConfig } from '../render/types.js';
import { canonicalJson } from '../util/canonical.js';
import type { PluginCatalog } from './catalog.js';
import { Lifecycle, type StateChange } from './lifecycle.js';
import { EXTENSION_POINTS, type AppStats, type ApplyHookContext, type ApplyResultContext, type ControllerControls, type ExtensionPoint, type PluginDefinition, type PluginHealth, type PluginInstance, type PluginState } from './types.js';
import { workerFactory } from './worker.js';

/** What each extension point is for (GET /api/v1/extension-points). */
export const POINT_DESCRIPTIONS: Readonly<Record<ExtensionPoint, string>> = {
  'event-handler': 'receives berth events (reconcile.*, app.*, health.*, drift.*, scaling.decision, plugin.stateChanged), in order, one queue per plugin',
  'health-check': 'a protocol apps select in healthCheck.provider; check(target) returns status, latency and message',
  'load-balancer': 'the proxy berth drives (--proxy): nginx and haproxy are built in',
  'metrics-exporter': "gets berth's metrics every intervalSeconds and sends them on (GET /metrics is built in)",
  scaler: 'proposes replica counts for apps with scaling: { min, max }; the first proposal in priority order wins',
  'lifecycle-hook': 'preApply (may veto when required: true), postApply, on every apply of berth run',
  'message-queue': 'bridges events out and commands (sync, suspend, resume) in over a message queue',
};

/** Failures in a row that put a plugin in `error`. */
export const DEFAULT_FAILURE_THRESHOLD = 5;
/** Events an event handler may have waiting before the oldest are dropped (and counted). */
const EVENT_QUEUE = 1000;

export interface HealthProviderRegistry {
  /** Returns the function that removes the provider again. Throws when the protocol is taken. */
  register(provider: HealthCheckProvider, owner: string): () => void;
}

export interface PluginHostDeps {
  env: string;
  catalog: PluginCatalog;
  bus: EventBus;
  log: Logger;
  metrics: Metrics;
  controls: ControllerControls;
  healthProviders?: HealthProviderRegistry;
  failureThreshold?: number;
  now?: () => number;
  /** Default 15 s: how often metrics exporters are called when their config sets no intervalSeconds. */
  exportIntervalMs?: number;
  /** What plugins get as `ctx.appStats` (app-stats.ts); without it they get none. */
  appStats?: (app: string) => Promise<AppStats>;
}

/** A plugin as the API and `berth plugins` show it. */
export interface PluginView {
  name: string;
  use: string;
  version?: string;
  origin: string;
  provides: ExtensionPoint[];
  state: PluginState;
  priority: number;
  file: string;
  isolation: 'inline' | 'worker';
  lastError?: { message: string; at: string; point: string };
  calls: number;
  failures: number;
}

type Point = 'create' | 'start' | 'stop' | 'health' | 'event' | 'export' | 'scale' | 'preApply' | 'postApply' | 'renderTransform' | 'health-check';

interface Entry {
  config: PluginConfig;
  /** What a change of the document is compared by. */
  fingerprint: string;
  def?: PluginDefinition;
  lifecycle: Lifecycle;
  instance?: PluginInstance;
  abort?: AbortController;
  offs: (() => void)[];
  lastError?: { message: string; at: string; point: string };
  consecutiveFailures: number;
  calls: number;
  failures: number;
  /** Dependencies it waits for (it is in error until they run). */
  waitingFor?: string[];
}

class PluginTimeout extends Error {}

function fingerprint(config: PluginConfig): string {
  const replace = (v: unknown): unknown => {
    if (v instanceof SecretValue) return { secret: v.ref, digest: v.digest() };
    if (Array.isArray(v)) return v.map(replace);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replace(x)]));
    return v;
  };
  const { after: _after, file: _file, ...rest } = config;
  return canonicalJson(replace(rest));
}

/** The config a plugin receives: secrets revealed (they never leave the plugin's context). */
function reveal(v: unknown): unknown {
  if (v instanceof SecretValue) return v.reveal();
  if (Array.isArray(v)) return v.map(reveal);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
  return v;
}

/** Stops an instance berth gives up on, without waiting long or counting it as a call. */
async function halt(instance: PluginInstance | undefined): Promise<void> {
  if (!instance || typeof instance !== 'object') return;
  await Promise.race([Promise.resolve().then(() => instance.stop?.()).catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
  await terminate(instance);
}

/** Ends a worker (a no-op for inline plugins): never throws, never waits more than 5 s. */
async function terminate(instance: PluginInstance | undefined): Promise<void> {
  await Promise.race([Promise.resolve().then(() => instance?.terminate?.()).catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
}

function scalerOf(entry: { instance?: PluginInstance }): PluginInstance['scaler'] {
  return entry.instance?.scaler;
}

function matches(filter: readonly string[] | undefined, type: EventType): boolean {
  if (!filter?.length) return true;
  return filter.some((f) => f === '*' || f === type || (f.endsWith('.*') && type.startsWith(f.slice(0, -1))));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class PluginHost {
  readonly #deps: PluginHostDeps;
  readonly #entries = new Map<string, Entry>();
  /** Start order of the last sync (dependencies first): stops go the other way. */
  #order: string[] = [];
  /** Serialises sync, reload and close: one lifecycle change at a time. */
  #chain: Promise<void> = Promise.resolve();

  constructor(deps: PluginHostDeps) {
    this.#deps = deps;
  }

  /** Brings the running plugins to `desired` (render's order: dependencies first). */
  sync(desired: PluginConfig[]): Promise<void> {
    return this.#serial(async () => {
      const wanted = new Map(desired.map((c) => [c.name, c]));
      // Stop what went away, in reverse start order.
      for (const entry of this.#inStopOrder()) {
        const next = wanted.get(entry.config.name);
        if (!next) {
          await this.#stop(entry, 'removed from the repo');
          entry.lifecycle.walk('inactive', 'removed from the repo');
          this.#entries.delete(entry.config.name);
        }
      }
      for (const config of desired) {
        const entry = this.#entries.get(config.name);
        if (!entry) {
          await this.#install(config);
          continue;
        }
        if (entry.fingerprint !== fingerprint(config)) await this.#update(entry, config, 'its Plugin document changed');
        else if (entry.waitingFor?.every((dep) => this.#entries.get(dep)?.lifecycle.state === 'running')) await this.#update(entry, config, 'its dependencies run again');
        entry.config = config;
      }
      this.#order = desired.map((c) => c.name);
    });
  }

  /** Entries in reverse start order (entries not in the last sync's order first). */
  #inStopOrder(): Entry[] {
    const rank = (e: Entry) => this.#order.indexOf(e.config.name);
    return [...this.#entries.values()].sort((a, b) => rank(b) - rank(a));
  }

  /** Stops and starts one plugin again (from error too). Throws when there is no such plugin. */
  reload(name: string): Promise<PluginView> {
    return this.#serial(async () => {
      const entry = this.#entries.get(name);
      if (!entry) throw new Error(`no plugin "${name}" is enabled in environment ${this.#deps.env}`);
      await this.#update(entry, entry.config, 'reload asked for');
      // A reinstall (another plugin behind the name) replaces the entry.
      return this.#view(this.#entries.get(name) ?? entry);
    });
  }

  /**
   * Takes a running plugin out of service (`maintenance`: no events, hooks, scaling or exports reach it;
   * it keeps its connections) or puts it back (`running`). Throws when the plugin is in another state.
   */
  maintenance(name: string, on: boolean): Promise<PluginView> {
    return this.#serial(async () => {
      const entry = this.#entries.get(name);
      if (!entry) throw new Error(`no plugin "${name}" is enabled in environment ${this.#deps.env}`);
      if (on && entry.lifecycle.state !== 'maintenance') entry.lifecycle.to('maintenance', 'asked for through the API');
      if (!on && entry.lifecycle.state === 'maintenance') entry.lifecycle.to('running', 'back from maintenance');
      return this.#view(entry);
    });
  }

  /** Stops every plugin, in reverse start order. */
  close(): Promise<void> {
    return this.#serial(async () => {
      for (const entry of this.#inStopOrder()) {
        await this.#stop(entry, 'berth is stopping');
        entry.lifecycle.walk('inactive', 'berth is stopping');
      }
      this.#entries.clear();
    });
  }

  list(): PluginView[] {
    return [...this.#entries.values()].map((e) => this.#view(e));
  }

  get(name: string): PluginView | undefined {
    const e = this.#entries.get(name);
    return e && this.#view(e);
  }

  /** The plugin's own health (guarded), or its state when it is not running. */
  async health(name: string): Promise<(PluginHealth & { state: PluginState }) | undefined> {
    const entry = this.#entries.get(name);
    if (!entry) return undefined;
    const state = entry.lifecycle.state;
    if (state !== 'running' && state !== 'maintenance') return { state, ok: false, message: entry.lastError?.message ?? `plugin is ${state}` };
    if (!entry.instance?.health) return { state, ok: true, message: 'running' };
    const instance = entry.instance;
    const r = await this.#call(entry, 'health', () => instance.health!());
    return r.ok ? { state, ...r.value } : { state, ok: false, message: r.error };
  }

  /**
   * Asks every running lifecycle hook's preApply, in priority order. A veto of a `required` plugin
   * stops the apply; any other veto, and any error, is only reported (a warning each).
   */
  async preApply(ctx: ApplyHookContext): Promise<{ veto?: { plugin: string; reason: string }; warnings: string[] }> {
    const warnings: string[] = [];
    for (const entry of this.#running('preApply')) {
      const hooks = entry.instance!.hooks!;
      const r = await this.#call(entry, 'preApply', () => hooks.preApply!(ctx));
      const required = entry.config.required;
      if (!r.ok) {
        warnings.push(`plugin ${entry.config.name}: preApply failed (${r.error}); the apply goes on${required ? ' (a required hook stops an apply only by a veto)' : ''}`);
        continue;
      }
      const veto = r.value && typeof r.value === 'object' && typeof r.value.veto === 'string' ? r.value.veto : undefined;
      if (!veto) continue;
      if (required) return { veto: { plugin: entry.config.name, reason: veto }, warnings };
      warnings.push(`plugin ${entry.config.name} would veto the apply (${veto}), but it is not required: true; the apply goes on`);
    }
    return { warnings };
  }

  /**
   * Runs every running renderTransform hook in priority order, each on the previous one's output.
   * An output that fails the checks a repo's apps pass (schema, routes, policy) is dropped, with a
   * warning, and counts as a failed call of that plugin.
   */
  async renderTransform(state: DesiredState): Promise<{ state: DesiredState; warnings: string[] }> {
    const warnings: string[] = [];
    let current = state;
    for (const entry of this.#running('renderTransform')) {
      const source = `plugin ${entry.config.name} (renderTransform)`;
      const hooks = entry.instance!.hooks!;
      const r = await this.#call(entry, 'renderTransform', () => hooks.renderTransform!(current));
      if (!r.ok) {
        warnings.push(`${source} failed (${r.error}); its change is left out`);
        continue;
      }
      let checked: ReturnType<typeof checkTransformed>;
      try {
        checked = checkTransformed(current, r.value, source);
      } catch (err) {
        // An output too malformed to even check (an app without env or ports, a cycle…) is refused the same way.
        checked = { ok: false, problems: [{ code: 'schema', file: source, line: 0, column: 0, message: `its apps cannot be checked: ${message(err)}` }] };
      }
      if (!checked.ok) {
        const why = checked.problems.map((p) => p.message).join('; ');
        this.#failed(entry, 'renderTransform', `returned apps that fail the repo's checks: ${why}`);
        warnings.push(`${source} returned apps that fail the repo's checks (${why}); its change is left out`);
        continue;
      }
      current = checked.state;
    }
    return { state: current, warnings };
  }

  async postApply(ctx: ApplyResultContext): Promise<void> {
    for (const entry of this.#running('postApply')) {
      const hooks = entry.instance!.hooks!;
      await this.#call(entry, 'postApply', () => hooks.postApply!(ctx));
    }
  }

  /** Running plugins with a scaler, in priority order (the controller's scaling loop asks them). */
  scalers(): { name: string; intervalSeconds: number; propose: NonNullable<PluginInstance['scaler']>['propose'] }[] {
    return this.#running('scaler').map((entry) => ({
      name: entry.config.name,
      intervalSeconds: scalerOf(entry)?.intervalSeconds ?? 30,
      propose: async (input) => {
        // The instance running now: a scaler reloaded since the round began is asked in its new form.
        const scaler = scalerOf(entry);
        if (!scaler) return undefined;
        const r = await this.#call(entry, 'scale', () => scaler.propose(input));
        return r.ok ? r.value : undefined;
      },
    }));
  }

  /** Each extension point with the enabled plugins that provide it, in the order they are called. */
  extensionPoints(): { point: ExtensionPoint; description: string; plugins: { name: string; use: string; state: PluginState; priority: number }[] }[] {
    const entries = [...this.#entries.values()].sort((a, b) => a.config.priority - b.config.priority || (a.config.name < b.config.name ? -1 : 1));
    return EXTENSION_POINTS.map((point) => ({
      point,
      description: POINT_DESCRIPTIONS[point],
      plugins: entries.filter((e) => e.def?.manifest.provides.includes(point)).map((e) => ({ name: e.config.name, use: e.config.use, state: e.lifecycle.state, priority: e.config.priority })),
    }));
  }

  #running(kind: 'preApply' | 'postApply' | 'renderTransform' | 'scaler'): Entry[] {
    const has = (e: Entry) => (kind === 'scaler' ? !!e.instance?.scaler : !!e.instance?.hooks?.[kind]);
    return [...this.#entries.values()].filter((e) => e.lifecycle.state === 'running' && has(e)).sort((a, b) => a.config.priority - b.config.priority || (a.config.name < b.config.name ? -1 : 1));
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn);
    this.#chain = run.then(() => undefined, () => undefined);
    return run;
  }

  #view(e: Entry): PluginView {
    return {
      name: e.config.name,
      use: e.config.use,
      ...(e.def && { version: e.def.manifest.version }),
      origin: !e.def ? 'unknown' : e.def.origin.kind === 'builtin' ? 'builtin' : e.def.origin.path,
      provides: e.def?.manifest.provides ?? [],
      state: e.lifecycle.state,
      priority: e.config.priority,
      file: e.config.file,
      isolation: e.config.isolation,
      ...(e.lastError && { lastError: e.lastError }),
      calls: e.calls,
      failures: e.failures,
    };
  }

  #onState(config: PluginConfig): (change: StateChange) => void {
    return (change) => {
      this.#deps.metrics.pluginRunning.set({ env: this.#deps.env, plugin: config.name }, change.to === 'running' ? 1 : 0);
      this.#deps.log.info({ plugin: config.name, use: config.use, from: change.from, to: change.to, ...(change.reason && { reason: change.reason }) }, 'plugin state');
      this.#deps.bus.emit('plugin.stateChanged', { env: this.#deps.env, plugin: config.name, use: config.use, from: change.from, to: change.to, ...(change.reason && { reason: change.reason }) });
    };
  }

  async #install(config: PluginConfig): Promise<void> {
    const entry: Entry = { config, fingerprint: fingerprint(config), lifecycle: new Lifecycle(config.name, this.#onState(config)), offs: [], consecutiveFailures: 0, calls: 0, failures: 0 };
    this.#entries.set(config.name, entry);
    entry.lifecycle.to('installing');
    if (config.problems?.length) return this.#fail(entry, 'create', config.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message}`).join('; '));
    const def = this.#deps.catalog.get(config.use);
    if (!def) return this.#fail(entry, 'create', `no plugin named "${config.use}" is installed (see berth plugins)`);
    entry.def = def;
    const mismatch = await this.#integrityMismatch(def, config);
    if (mismatch) return this.#fail(entry, 'create', mismatch);
    entry.lifecycle.to('installed');
    await this.#start(entry, { verified: true });
  }

  /** Why the installed code does not match the document's `integrity` pin; undefined when it does (or nothing is pinned). */
  async #integrityMismatch(def: PluginDefinition, config: PluginConfig): Promise<string | undefined> {
    if (!config.integrity) return undefined;
    const actual = await def.integrity().catch((err: unknown) => `unreadable (${message(err)})`);
    return actual === config.integrity ? undefined : `integrity mismatch: ${config.file} pins ${config.integrity}, the installed code is ${actual ?? 'built into berth (nothing to pin)'}`;
  }

  /** configuring → starting → running, dependencies permitting. */
  async #start(entry: Entry, options: { verified?: boolean } = {}): Promise<void> {
    const { config } = entry;
    entry.lifecycle.to('configuring');
    if (config.problems?.length) return this.#fail(entry, 'create', config.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message}`).join('; '));
    // A reload or a changed document loads the code again (a worker imports it afresh): check the pin again.
    const mismatch = options.verified ? undefined : await this.#integrityMismatch(entry.def!, config);
    if (mismatch) return this.#fail(entry, 'create', mismatch);
    const blocked = config.after.filter((dep) => this.#entries.get(dep)?.lifecycle.state !== 'running');
    entry.waitingFor = blocked.length ? blocked : undefined;
    if (blocked.length) return this.#fail(entry, 'create', `depends on ${blocked.map((b) => `${b} (${this.#entries.get(b)?.lifecycle.state ?? 'not enabled'})`).join(', ')}, which is not running`);
    const def = entry.def!;
    const abort = new AbortController();
    entry.abort = abort;
    const log = this.#deps.log.child({ plugin: config.name });
    let revealed: Record<string, unknown>;
    try {
      revealed = reveal(config.config) as Record<string, unknown>;
    } catch (err) {
      return this.#fail(entry, 'create', message(err));
    }
    const ctx = {
      name: config.name,
      env: this.#deps.env,
      config: revealed,
      log: {
        debug: (msg: string, fields?: Record<string, unknown>) => log.debug(fields ?? {}, msg),
        info: (msg: string, fields?: Record<string, unknown>) => log.info(fields ?? {}, msg),
        warn: (msg: string, fields?: Record<string, unknown>) => log.warn(fields ?? {}, msg),
        error: (msg: string, fields?: Record<string, unknown>) => log.error(fields ?? {}, msg),
      },
      signal: abort.signal,
      now: this.#deps.now ?? Date.now,
      controls: this.#deps.controls,
      metricsText: () => this.#deps.metrics.registry.metrics(),
      ...(this.#deps.appStats && { appStats: this.#deps.appStats }),
    };
    entry.lifecycle.to('starting');
    const creating = Promise.resolve().then(async () => {
      const factory = config.isolation === 'worker' ? workerFactory(def.entry, { name: config.name, memoryLimitMb: config.memoryLimitMb }) : await def.load();
      return factory(ctx);
    });
    const created = await this.#call(entry, 'create', () => creating, { starting: true });
    if (!created.ok) {
      // An instance that arrives after its timeout is stopped at once (a worker's thread ended).
      abort.abort();
      creating.then((late) => void halt(late), () => {});
      return this.#fail(entry, 'create', created.error);
    }
    const instance = created.value;
    if (!instance || typeof instance !== 'object') return this.#fail(entry, 'create', `create() returned ${instance === null ? 'null' : typeof instance}, not the plugin's instance`);
    entry.instance = instance;
    if (instance.start) {
      const started = await this.#call(entry, 'start', () => instance.start!(), { starting: true });
      if (!started.ok) {
        abort.abort();
        entry.instance = undefined;
        void halt(instance);
        return this.#fail(entry, 'start', started.error);
      }
    }
    if (!this.#attach(entry)) return;
    entry.consecutiveFailures = 0;
    entry.lifecycle.to('running');
  }

  /** Wires a started instance to its extension points; false (and the plugin in error) when one refuses it. */
  #attach(entry: Entry): boolean {
    const { instance, config } = entry;
    if (!instance) return false;
    const handler = instance.eventHandler;
    if (handler) {
      // Subscribed to the types it selects only, so its queue never fills with events it would skip.
      const types = EVENT_TYPES.filter((t) => matches(handler.events, t));
      entry.offs.push(
        this.#deps.bus.on(
          types,
          async (event: BerthEvent) => {
            // Events still queued when this instance was replaced (a reload) are not for it: it has stopped.
            if (entry.instance !== instance || entry.lifecycle.state !== 'running' || !matches(handler.events, event.type)) return;
            await this.#call(entry, 'event', () => handler.handle(event));
          },
          { name: `plugin ${config.name}`, maxQueue: EVENT_QUEUE },
        ),
      );
    }
    for (const provider of instance.healthChecks ?? []) {
      const guarded: HealthCheckProvider = {
        protocol: provider.protocol,
        ...(provider.describe && { describe: provider.describe }),
        check: async (target, signal) => {
          const started = performance.now();
          const r = await this.#call(entry, 'health-check', () => provider.check(target, signal));
          return r.ok ? r.value : { status: 'unhealthy', latencyMs: performance.now() - started, message: `plugin ${config.name}: ${r.error}` };
        },
      };
      try {
        if (this.#deps.healthProviders) entry.offs.push(this.#deps.healthProviders.register(guarded, config.name));
      } catch (err) {
        for (const off of entry.offs.splice(0)) off();
        entry.abort?.abort();
        entry.instance = undefined;
        void halt(instance);
        this.#fail(entry, 'start', message(err));
        return false;
      }
    }
    const exporter = instance.metricsExporter;
    if (exporter) {
      const seconds = Number((config.config as { intervalSeconds?: unknown }).intervalSeconds);
      const every = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : (this.#deps.exportIntervalMs ?? 15_000);
      let busy = false;
      const timer = setInterval(() => {
        if (busy || entry.lifecycle.state !== 'running') return;
        busy = true;
        void this.#deps.metrics.registry
          .metrics()
          .then((text) => this.#call(entry, 'export', () => exporter.export(text)))
          .catch((err: unknown) => this.#deps.log.warn({ plugin: config.name, err: message(err) }, 'metrics could not be read for the exporter'))
          .finally(() => (busy = false));
      }, every);
      timer.unref();
      entry.offs.push(() => clearInterval(timer));
    }
    return true;
  }

  async #stop(entry: Entry, reason: string): Promise<void> {
    for (const off of entry.offs.splice(0)) off();
    const state = entry.lifecycle.state;
    if (state === 'running' || state === 'maintenance' || state === 'error') entry.lifecycle.to('stopping', reason);
    else if (state !== 'installed' && state !== 'inactive') entry.lifecycle.walk('installed', reason);
    // stop() first (a handler flushes what it queued), then the signal ends whatever is left.
    const instance = entry.instance;
    entry.instance = undefined;
    if (instance?.stop) await this.#call(entry, 'stop', () => instance.stop!(), { starting: true });
    entry.abort?.abort();
    await terminate(instance);
    if (entry.lifecycle.state === 'stopping') entry.lifecycle.to('installed', reason);
  }

  async #update(entry: Entry, config: PluginConfig, reason: string): Promise<void> {
    for (const off of entry.offs.splice(0)) off();
    const state = entry.lifecycle.state;
    if (state === 'running') entry.lifecycle.to('updating', reason);
    const old = entry.instance;
    entry.instance = undefined;
    if (old?.stop) await this.#call(entry, 'stop', () => old.stop!(), { starting: true });
    entry.abort?.abort();
    await terminate(old);
    entry.config = config;
    entry.fingerprint = fingerprint(config);
    entry.lastError = undefined;
    entry.consecutiveFailures = 0;
    if (entry.def?.manifest.name !== config.use || state === 'inactive' || state === 'installing') {
      // Another plugin behind the same name, or one that never got installed: install afresh.
      if (entry.lifecycle.state === 'updating') entry.lifecycle.to('error', reason);
      entry.lifecycle.walk('inactive', reason);
      this.#entries.delete(config.name);
      await this.#install(config);
      return;
    }
    if (entry.lifecycle.state === 'updating' || entry.lifecycle.state === 'error') await this.#start(entry);
    else {
      entry.lifecycle.walk('installed', reason);
      await this.#start(entry);
    }
  }

  #fail(entry: Entry, point: Point, why: string): void {
    entry.lastError = { message: why, at: new Date((this.#deps.now ?? Date.now)()).toISOString(), point };
    this.#deps.log.warn({ plugin: entry.config.name, point, err: why }, 'plugin failed');
    if (entry.lifecycle.state !== 'error') entry.lifecycle.to('error', why);
  }

  /**
   * Counts a failure of `entry` (logged with its name, in metrics); after `failureThreshold` in a row
   * it is taken out of service: detached, its signal aborted, stopped, in `error` until reloaded.
   */
  #failed(entry: Entry, point: Point, why: string, options: { outcome?: 'error' | 'timeout'; starting?: boolean; fatal?: boolean } = {}): void {
    const { env } = this.#deps;
    const plugin = entry.config.name;
    entry.failures++;
    entry.consecutiveFailures++;
    entry.lastError = { message: why, at: new Date((this.#deps.now ?? Date.now)()).toISOString(), point };
    this.#deps.metrics.pluginCalls.inc({ env, plugin, point, outcome: options.outcome ?? 'error' });
    this.#deps.log.warn({ plugin, point, failures: entry.consecutiveFailures, err: why }, 'plugin call failed');
    const threshold = this.#deps.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD;
    if (!options.starting && (options.fatal || entry.consecutiveFailures >= threshold) && entry.lifecycle.state === 'running') {
      for (const off of entry.offs.splice(0)) off();
      entry.abort?.abort();
      const instance = entry.instance;
      entry.instance = undefined;
      if (instance) void halt(instance);
      entry.lifecycle.to('error', options.fatal ? `its worker was ended: ${why}` : `${entry.consecutiveFailures} failures in a row; last: ${why}`);
    }
  }

  /**
   * One guarded call: a timeout, errors caught, logged with the plugin's name and counted. While
   * `starting`, a failure is the caller's to report; otherwise repeated failures move the plugin to error.
   */
  async #call<T>(entry: Entry, point: Point, fn: () => T | Promise<T>, options: { starting?: boolean } = {}): Promise<{ ok: true; value: Awaited<T> } | { ok: false; error: string }> {
    const { env } = this.#deps;
    const plugin = entry.config.name;
    const timeoutMs = entry.config.timeoutSeconds * 1000;
    const started = performance.now();
    entry.calls++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        Promise.resolve().then(fn),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new PluginTimeout(`${point} timed out after ${entry.config.timeoutSeconds} s`)), timeoutMs);
        }),
      ]);
      entry.consecutiveFailures = 0;
      this.#deps.metrics.pluginCalls.inc({ env, plugin, point, outcome: 'ok' });
      return { ok: true, value: value as Awaited<T> };
    } catch (err) {
      const timedOut = err instanceof PluginTimeout;
      const why = `${timedOut ? '' : `${point} threw: `}${message(err)}`;
      // A worker that hangs is ended (its thread would otherwise run on), and with it the plugin: error at once.
      const ended = timedOut && entry.config.isolation === 'worker' && !!entry.instance?.terminate;
      this.#failed(entry, point, why, { outcome: timedOut ? 'timeout' : 'error', ...options, ...(ended && { fatal: true }) });
      return { ok: false, error: why };
    } finally {
      clearTimeout(timer);
      this.#deps.metrics.pluginCallDuration.observe({ env, plugin, point }, (performance.now() - started) / 1000);
    }
  }
}
