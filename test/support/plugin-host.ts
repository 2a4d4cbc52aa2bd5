/**
 * A PluginHost on real parts, for testing the host itself:
 *
 *   const h = hostHarness([definition('audit', () => ({ start() {} }))]);
 *   await h.host.sync([pluginConfig('audit')]);
 *   await h.bus.flush();
 *   h.states('audit')  // ['installing', 'installed', 'configuring', 'starting', 'running']
 *   h.logs             // every log line, parsed
 *
 * Plugins are PluginDefinitions whose load() returns an inline factory; the bus, metrics and
 * health-check providers are berth's own; the logger is pino writing to an array.
 */
import { pino } from 'pino';
import { EventBus } from '../../src/events/bus.js';
import type { BerthEvent } from '../../src/events/types.js';
import { HealthProviders } from '../../src/health/providers/index.js';
import type { PluginCatalog } from '../../src/plugins/catalog.js';
import { PluginHost, type PluginHostDeps } from '../../src/plugins/host.js';
import type { ControllerControls, ExtensionPoint, PluginDefinition, PluginFactory } from '../../src/plugins/types.js';
import type { PluginConfig } from '../../src/render/types.js';
import { Metrics } from '../../src/report/metrics.js';

export const ENV = 'production';

/** A Plugin document as render gives it: `use` is the name, defaults as render fills them, `over` on top. */
export function pluginConfig(name: string, over: Partial<PluginConfig> = {}): PluginConfig {
  return { name, use: name, config: {}, file: `plugins/${name}.yaml`, priority: 100, required: false, timeoutSeconds: 1, isolation: 'inline', memoryLimitMb: 64, after: [], ...over };
}

export interface DefinitionOptions {
  provides?: ExtensionPoint[];
  /** What def.integrity() answers (default: undefined, as a built-in). */
  integrity?: string;
  /** The module a worker loads (isolation: worker). */
  entry?: URL;
}

/** A discovered plugin whose code is `factory` (isolation: inline). */
export function definition(name: string, factory: PluginFactory, options: DefinitionOptions = {}): PluginDefinition {
  return {
    manifest: { name, version: '1.0.0', provides: options.provides ?? ['event-handler'] },
    origin: { kind: 'directory', path: `/plugins/${name}` },
    entry: options.entry ?? new URL(`file:///plugins/${name}/index.js`),
    integrity: async () => options.integrity,
    load: async () => factory,
  };
}

export function fakeCatalog(defs: PluginDefinition[]): PluginCatalog {
  const byName = new Map(defs.map((d) => [d.manifest.name, d]));
  return { get: (name) => byName.get(name), list: () => [...byName.values()], problems: [] };
}

export interface HostHarness {
  host: PluginHost;
  bus: EventBus;
  metrics: Metrics;
  healthProviders: HealthProviders;
  /** Every log line (debug and up), parsed. */
  logs: Record<string, unknown>[];
  /** Every plugin.stateChanged event delivered so far (call `bus.flush()` first). */
  stateChanges: BerthEvent<'plugin.stateChanged'>[];
  /** The states `plugin` entered, in order (after `bus.flush()`). */
  states(plugin: string): string[];
  /** Calls of the controller controls plugins made, e.g. `sync healed 3`. */
  controlCalls: string[];
  /** berth_plugin_calls_total for one plugin, point and outcome. */
  calls(plugin: string, point: string, outcome: 'ok' | 'error' | 'timeout'): Promise<number>;
}

export function hostHarness(defs: PluginDefinition[], over: Partial<PluginHostDeps> = {}): HostHarness {
  const bus = new EventBus();
  const metrics = new Metrics();
  const healthProviders = new HealthProviders();
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const controlCalls: string[] = [];
  const controls: ControllerControls = {
    sync: (reason) => void controlCalls.push(`sync ${reason}`),
    rescale: (reason) => void controlCalls.push(`rescale ${reason}`),
    suspend: (reason) => void controlCalls.push(`suspend ${reason}`),
    resume: () => void controlCalls.push('resume'),
    status: () => undefined,
  };
  const stateChanges: BerthEvent<'plugin.stateChanged'>[] = [];
  bus.on('plugin.stateChanged', (e) => void stateChanges.push(e), { name: 'test' });
  const host = new PluginHost({ env: ENV, catalog: fakeCatalog(defs), bus, log, metrics, controls, healthProviders, ...over });
  return {
    host,
    bus,
    metrics,
    healthProviders,
    logs,
    stateChanges,
    states: (plugin) => stateChanges.filter((e) => e.plugin === plugin).map((e) => e.to),
    controlCalls,
    calls: async (plugin, point, outcome) => {
      const { values } = await metrics.pluginCalls.get();
      return values.find((v) => v.labels.plugin === plugin && v.labels.point === point && v.labels.outcome === outcome)?.value ?? 0;
    },
  };
}

/** Resolves once `check()` is true (polled every few ms); rejects after `timeoutMs` naming `what`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise with its resolve outside: a gate a fake plugin waits at. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
