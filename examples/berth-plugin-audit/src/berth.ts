/**
 * The part of berth's plugin contract this plugin uses, copied from berth's `src/plugins/types.ts`
 * and `src/events/types.ts` (berth 0.1). Types only: this file compiles to nothing, and the plugin
 * loads none of berth's code at run time.
 *
 * Why a copy: berth publishes no type declarations yet, so a plugin author cannot
 * `import type … from 'berth'`. A copy of the few interfaces you use is what a real author writes.
 * A copy can drift from berth: berth's own CI checks that this plugin's `create` still fits berth's
 * real `PluginFactory` (test/integration/plugins.test.ts), so a change of the contract fails there.
 */

/** berth's event types (`EventType`); a plugin subscribes to these, to `prefix.*`, or to `*`. */
export type EventType =
  | 'reconcile.started'
  | 'reconcile.finished'
  | 'reconcile.error'
  | 'app.progress'
  | 'app.result'
  | 'drift.detected'
  | 'drift.healed'
  | 'drift.resolved'
  | 'health.changed'
  | 'health.failed'
  | 'status.changed'
  | 'plugin.stateChanged'
  | 'scaling.decision';

export type EventSelector = EventType | `${string}.*` | '*';

/** An event as berth hands it to a handler: its type, sequence number, time and payload (plain JSON). */
export interface BerthEvent {
  type: EventType;
  seq: number;
  time: string;
  env: string;
}

export interface PluginLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** What berth hands `create` (a subset of berth's PluginContext: controls and metricsText are not used here). */
export interface PluginContext {
  /** The Plugin document's metadata.name. */
  name: string;
  env: string;
  /** `spec.config`, validated against config.schema.json (defaults filled), secrets resolved. */
  config: Record<string, unknown>;
  log: PluginLogger;
  /** Aborted when the plugin stops. */
  signal: AbortSignal;
  now(): number;
}

export interface PluginHealth {
  ok: boolean;
  message?: string;
}

export interface ApplyHookContext {
  env: string;
  revision: string;
  trigger: string;
  changes: { app: string; actions: string[] }[];
}

/** What `create` returns: the extension points this plugin implements (a subset of berth's PluginInstance). */
export interface PluginInstance {
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
  health?(): Promise<PluginHealth> | PluginHealth;
  eventHandler?: {
    events?: EventSelector[];
    handle(event: BerthEvent): Promise<void> | void;
  };
  hooks?: {
    preApply?(ctx: ApplyHookContext): Promise<{ veto: string } | void> | { veto: string } | void;
  };
}
