import type { Logger } from 'pino';
import { EventBus } from '../events/bus.js';
import { GitNotesReporter } from '../forge/local/git-notes.js';
import { HealthMonitor } from '../health/monitor.js';
import { HistoryStore } from '../report/history.js';
import type { Metrics } from '../report/metrics.js';
import { wireReporting } from '../report/wire.js';
import type { Drivers } from '../runtime/factory.js';
import type { ConfigSource } from '../source/open.js';
import { systemClock } from '../util/clock.js';
import type { GlobalOptions } from './context.js';
import { createDrivers, type DriverOptions } from './drivers.js';

/** What a command that reconciles stands on: drivers, the event bus with its listeners, history, probes. */
export interface Pipeline extends Drivers {
  bus: EventBus;
  history: HistoryStore;
  health: HealthMonitor;
  /** Unsubscribes the listeners (after `bus.flush()`). */
  close(): void;
}

/**
 * Builds the pipeline of one environment the same way for `berth apply` and `berth run`, so both
 * record the same history, status and commit statuses.
 */
export function buildPipeline(env: string, opts: GlobalOptions & DriverOptions, source: ConfigSource, log: Logger, metrics?: Metrics): Pipeline {
  const bus = new EventBus({ onError: (name, err) => log.warn({ subscriber: name, err: (err as Error)?.message }, 'event subscriber failed') });
  const drivers = createDrivers(opts, (message) => log.warn({ detail: message }, 'nginx reload not confirmed'));
  const history = new HistoryStore(opts.stateDir, env);
  const health = new HealthMonitor({
    runtime: drivers.runtime,
    clock: systemClock,
    log,
    onChange: (app, previous, next) => bus.emit('health.changed', { env, app, ...(previous && { previous }), health: next }),
  });
  const close = wireReporting(bus, {
    history,
    log,
    ...(metrics && { metrics }),
    ...(source.git && !source.git.remote && { reporters: [new GitNotesReporter(source.git)] }),
    context: `berth/${env}`,
  });
  return { ...drivers, bus, history, health, close };
}
