/**
 * The plugin model: what a plugin declares (its manifest), what berth hands it (its context), and the
 * extension points it may implement. A plugin is enabled by a `kind: Plugin` document in the config
 * repo (`plugins/<name>.yaml`), so every plugin change is a reviewed commit.
 *
 * Extension points, and the order they run in when several plugins implement one: ascending
 * `spec.priority` of their Plugin documents (default 100), then by name.
 */
import type { BerthEvent, EventType } from '../events/types.js';
import type { HealthCheckProvider } from '../health/providers/types.js';
import type { DesiredApp, DesiredState } from '../render/types.js';
import type { EnvStatus } from '../status/types.js';

export const EXTENSION_POINTS = ['event-handler', 'health-check', 'load-balancer', 'metrics-exporter', 'scaler', 'lifecycle-hook', 'message-queue'] as const;
export type ExtensionPoint = (typeof EXTENSION_POINTS)[number];

/** A JSON Schema (draft 2020-12) object. */
export type JsonSchema = Record<string, unknown>;

/**
 * What a plugin declares about itself. For a package this is the `berth` field of its package.json
 * (plus its `name` and `version`), read without running any of its code.
 */
export interface PluginManifest {
  /** The name Plugin documents `use`: lowercase letters, digits and dashes. */
  name: string;
  version: string;
  description?: string;
  provides: ExtensionPoint[];
  /** Schema of `spec.config`; render validates the config against it, with file and line. */
  configSchema?: JsonSchema;
  /** Plugins (by manifest name) that must be enabled too, and start first. */
  dependsOn?: string[];
}

/** Where a plugin came from. */
export type PluginOrigin = { kind: 'builtin' } | { kind: 'directory'; path: string } | { kind: 'package'; path: string; packageName: string };

/** A discovered plugin: its manifest and how to load its code (only when it starts). */
export interface PluginDefinition {
  manifest: PluginManifest;
  origin: PluginOrigin;
  /** The module that exports `create` (what a worker thread loads for `isolation: worker`). */
  entry: URL;
  /** Digest pinned by `spec.integrity` (sha512-…, base64): a folder's or npm's record of the package. */
  integrity(): Promise<string | undefined>;
  load(): Promise<PluginFactory>;
}

/** A plugin's code: called once per start with its context; returns what it implements. */
export type PluginFactory = (ctx: PluginContext) => PluginInstance | Promise<PluginInstance>;

export interface PluginLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** What berth offers a plugin: its validated config (secrets resolved), a logger, and a few controls. */
export interface PluginContext {
  /** The Plugin document's metadata.name. */
  name: string;
  env: string;
  config: Record<string, unknown>;
  log: PluginLogger;
  /** Aborted when the plugin stops: end timers, sockets and loops with it. */
  signal: AbortSignal;
  now(): number;
  /** Ask for a reconcile, pause or resume reconciling (message-queue bridges, chat-ops). */
  controls: ControllerControls;
  /** The metrics berth exports, in Prometheus text format (metrics exporters). */
  metricsText(): Promise<string>;
  /**
   * What the running replicas of `app` (in this environment) use now: from the runtime (CPU, memory)
   * and, where the proxy keeps counters, from the proxy (requests/s). Rejects when the runtime cannot
   * be read. Absent under `isolation: worker` and where berth has no runtime (it is not relayed to threads).
   */
  appStats?(app: string): Promise<AppStats>;
}

/**
 * One reading of an app (PluginContext.appStats). A metric is absent when no source measures it:
 * open-source nginx has no per-upstream counters (no requests/s), and no built-in proxy has a p95.
 */
export interface AppStats {
  /** Running containers of the app (the ones measured). */
  replicas: number;
  /** Mean over the replicas of CPU use, % of one CPU (as `docker stats`: 150 = one and a half CPUs). */
  cpuPercent?: number;
  /** Mean over the replicas of memory in use, page cache left out (as `docker stats`). */
  memoryBytes?: number;
  /** Mean over the replicas of memory in use as % of each one's limit (the host's memory when it has none). */
  memoryPercent?: number;
  /** Requests per second to the app's route, all replicas together, since the previous reading (the first reading has none). */
  requestsPerSecond?: number;
  /** Mean response time over recent requests, ms (HAProxy: the last 1024). A mean, not a percentile. */
  meanResponseMs?: number;
  /** 95th percentile of the response time, ms: only from a proxy that measures it (nginx and HAProxy do not). */
  p95Ms?: number;
  /** What the values came from, e.g. ['docker', 'haproxy']. */
  source: string[];
}

export interface ControllerControls {
  sync(reason: string): void;
  /** Asks the scalers now, not at the next interval (a scaler driven by its own clock: cron). */
  rescale(reason: string): void;
  suspend(reason: string): void;
  resume(): void;
  status(): EnvStatus | undefined;
}

/** What a started plugin implements. Every method is called through berth's guard (timeout, errors caught). */
export interface PluginInstance {
  /** Optional start work (open connections); the plugin is `running` once it resolves. */
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
  /** `GET /api/v1/plugins/:name/health`. Default: healthy while running. */
  health?(): Promise<PluginHealth> | PluginHealth;
  eventHandler?: EventHandler;
  healthChecks?: PluginHealthCheckProvider[];
  metricsExporter?: MetricsExporter;
  scaler?: Scaler;
  hooks?: LifecycleHooks;
  /** Ends the plugin at once (a worker thread is terminated): berth calls it when a call hangs. */
  terminate?(): Promise<void>;
}

export interface PluginHealth {
  ok: boolean;
  message?: string;
}

/**
 * Event handler: receives the events it subscribes to, in order, one at a time per plugin. A slow
 * handler delays only its own queue (bounded: the oldest events are dropped and counted past it).
 */
export interface EventHandler {
  /** Event types or patterns (`reconcile.*`, `*`); default every event. */
  events?: (EventType | `${string}.*` | '*')[];
  handle(event: BerthEvent): Promise<void> | void;
}

/** Health-check provider: apps select it with `healthCheck.provider.protocol` (src/health/providers/types.ts). */
export type PluginHealthCheckProvider = HealthCheckProvider;

/** Metrics exporter: called every `intervalSeconds` (config, default 15) with berth's metrics. */
export interface MetricsExporter {
  export(metricsText: string): Promise<void>;
}

/** What a scaler sees of one app. */
export interface ScalerInput {
  env: string;
  app: string;
  /** Replicas the repo says. */
  declared: number;
  /** Replicas berth runs now (the last decision, else declared). */
  current: number;
  min: number;
  max: number;
  now: Date;
}

/**
 * Scaler: proposes a replica count for the apps that declare `scaling: { min, max }`. berth clamps it
 * to those bounds, applies it, records it as a `scaling.decision` event, and does not call it drift.
 */
export interface Scaler {
  /** How often berth asks (default 30 s). */
  intervalSeconds?: number;
  propose(input: ScalerInput): Promise<{ replicas: number; reason: string } | undefined> | { replicas: number; reason: string } | undefined;
}

export interface ApplyHookContext {
  env: string;
  revision: string;
  trigger: string;
  /** Apps the plan changes, with their action kinds. */
  changes: { app: string; actions: string[] }[];
}

export interface ApplyResultContext extends ApplyHookContext {
  result: string;
}

/**
 * Lifecycle hooks on the reconcile: `preApply` may veto an apply (a maintenance window) — only a
 * plugin whose Plugin document says `required: true` can stop it; other vetoes and any error are
 * reported and the apply goes on. `renderTransform` may change the desired state; what it returns is
 * validated again before use.
 */
export interface LifecycleHooks {
  preApply?(ctx: ApplyHookContext): Promise<{ veto: string } | void> | { veto: string } | void;
  postApply?(ctx: ApplyResultContext): Promise<void> | void;
  renderTransform?(state: Readonly<DesiredState>): Promise<DesiredApp[]> | DesiredApp[];
}

/** A plugin's lifecycle states. */
export const PLUGIN_STATES = ['inactive', 'installing', 'installed', 'configuring', 'starting', 'running', 'updating', 'stopping', 'error', 'maintenance'] as const;
export type PluginState = (typeof PLUGIN_STATES)[number];
