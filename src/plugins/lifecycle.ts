import { BerthError } from '../errors.js';
import type { PluginState } from './types.js';

/**
 * Which state may follow which. The happy path is inactive → installing → installed → configuring →
 * starting → running; a config change goes running → updating → configuring → starting → running; a
 * plugin is stopped running → stopping → installed, and repeated failures put it in error, from which
 * a reload (configuring) or a removal (stopping) leads out. maintenance is entered from running by
 * hand (the API) and left to running or stopping.
 */
export const TRANSITIONS: Readonly<Record<PluginState, readonly PluginState[]>> = {
  inactive: ['installing'],
  installing: ['installed', 'error'],
  installed: ['configuring', 'inactive'],
  configuring: ['starting', 'error'],
  starting: ['running', 'error'],
  running: ['updating', 'stopping', 'maintenance', 'error'],
  updating: ['configuring', 'error'],
  maintenance: ['running', 'stopping', 'error'],
  stopping: ['installed', 'error'],
  error: ['configuring', 'stopping', 'inactive'],
};

export class PluginStateError extends BerthError {
  constructor(plugin: string, from: PluginState, to: PluginState) {
    super('E_PLUGIN_STATE', `plugin ${plugin}: cannot go from ${from} to ${to} (from ${from}: ${TRANSITIONS[from].join(', ')})`, { plugin, from, to });
  }
}

export interface StateChange {
  plugin: string;
  from: PluginState;
  to: PluginState;
  reason?: string;
}

/** One plugin's state: every change is validated, then reported to `onChange` (the event bus). */
export class Lifecycle {
  #state: PluginState = 'inactive';
  readonly #plugin: string;
  readonly #onChange: (change: StateChange) => void;

  constructor(plugin: string, onChange: (change: StateChange) => void) {
    this.#plugin = plugin;
    this.#onChange = onChange;
  }

  get state(): PluginState {
    return this.#state;
  }

  can(to: PluginState): boolean {
    return TRANSITIONS[this.#state].includes(to);
  }

  /** Moves to `to`, or throws PluginStateError (E_PLUGIN_STATE) when the move is not allowed. */
  to(to: PluginState, reason?: string): void {
    const from = this.#state;
    if (!this.can(to)) throw new PluginStateError(this.#plugin, from, to);
    this.#state = to;
    this.#onChange({ plugin: this.#plugin, from, to, ...(reason && { reason }) });
  }

  /** Walks the shortest allowed path to `target` (e.g. error → stopping → installed). */
  walk(target: PluginState, reason?: string): void {
    const path = shortestPath(this.#state, target);
    if (!path) throw new PluginStateError(this.#plugin, this.#state, target);
    for (const step of path) this.to(step, reason);
  }
}

/**
 * The states after `from` on the shortest allowed way to `to` (empty when already there). The way
 * never passes through error: every change is an event, and a walk must not report a failure that
 * did not happen (running → inactive goes by stopping and installed, not by error).
 */
export function shortestPath(from: PluginState, to: PluginState): PluginState[] | undefined {
  if (from === to) return [];
  const previous = new Map<PluginState, PluginState>([[from, from]]);
  const queue: PluginState[] = [from];
  while (queue.length) {
    const at = queue.shift()!;
    for (const next of TRANSITIONS[at]) {
      if (previous.has(next) || (next === 'error' && to !== 'error')) continue;
      previous.set(next, at);
      if (next === to) {
        const path: PluginState[] = [];
        for (let s: PluginState = to; s !== from; s = previous.get(s)!) path.unshift(s);
        return path;
      }
      queue.push(next);
    }
  }
  return undefined;
}
