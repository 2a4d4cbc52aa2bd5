import type { Logger } from 'pino';
import { EventBus } from '../events/bus.js';
import { StatusReporter } from '../forge/statuses.js';
import type { Forge } from '../forge/types.js';
import { HealthMonitor } from '../health/monitor.js';
import { HistoryStore } from '../report/history.js';
import type { Metrics } from '../report/metrics.js';
import { wireReporting } from '../report/wire.js';
import type { Drivers } from '../runtime/factory.js';
import { systemClock } from '../util/clock.js';
import type { GlobalOptions } from './context.js';
import { createDrivers, type DriverOptions } from './drivers.js';

/** What a command that reconciles stands on: drivers, the event bus with its listeners, history, probes. */
export interface Pipeline extends Drivers {
  bus: EventBus;
  history: HistoryStore;
  health: HealthMonitor;
  /** Delivers commit statuses to the forge (or git notes), when there is one. */
  statuses?: StatusReporter;
  /** Gives queued commit statuses up to `timeoutMs` to go out, then stops the reporter; says whether all went out. */
  closeStatuses(timeoutMs: number): Promise<boolean>;
  /** Unsubscribes the listeners (after `bus.flush()`). */
  close(): void;
}

/** Where an environment's commit statuses go and how they are named. */
export interface StatusOptions {
  forge?: Forge;
  /** `berth/<env>` unless `--status-context` says otherwise. */
  context: string;
  externalUrl?: string;
}

/** The kind of status a context names, as the metrics label it. */
function statusKind(context: string): 'reconcile' | 'drift' | 'plan' {
  return context.endsWith('/drift') ? 'drift' : context.endsWith('/plan') ? 'plan' : 'reconcile';
}

/** A reporter for `forge` that logs what it could not deliver and counts what it did. */
function statusReporter(forge: Forge, log: Logger, metrics?: Metrics): StatusReporter {
  return new StatusReporter(forge, {
    onError: (status, err) => log.warn({ forge: forge.name, sha: status.sha, context: status.context, state: status.state, err: (err as Error).message }, 'commit status not reported'),
    onDelivery: (d) => metrics?.commitStatuses.inc({ forge: d.forge, kind: statusKind(d.context), state: d.state, outcome: d.outcome }),
  });
}

/**
 * Builds the pipeline of one environment the same way for `berth apply` and `berth run`, so both
 * record the same history, status and commit statuses.
 */
export function buildPipeline(env: string, opts: GlobalOptions & DriverOptions, log: Logger, metrics?: Metrics, status: StatusOptions = { context: `berth/${env}` }): Pipeline {
  const bus = new EventBus({ onError: (name, err) => log.warn({ subscriber: name, err: (err as Error)?.message }, 'event subscriber failed') });
  const drivers = createDrivers(opts, (message) => log.warn({ detail: message }, 'nginx reload not confirmed'));
  const history = new HistoryStore(opts.stateDir, env);
  const health = new HealthMonitor({
    runtime: drivers.runtime,
    clock: systemClock,
    log,
    onChange: (app, previous, next) => bus.emit('health.changed', { env, app, ...(previous && { previous }), health: next }),
  });
  const statuses = status.forge ? statusReporter(status.forge, log, metrics) : undefined;
  const close = wireReporting(bus, {
    history,
    log,
    ...(metrics && { metrics }),
    ...(statuses && { reporters: [statuses] }),
    context: status.context,
    ...(status.externalUrl && { externalUrl: status.externalUrl }),
  });
  const closeStatuses = async (timeoutMs: number): Promise<boolean> => {
    const delivered = (await statuses?.flush(timeoutMs)) ?? true;
    statuses?.close();
    return delivered;
  };
  return { ...drivers, bus, history, health, ...(statuses && { statuses }), closeStatuses, close };
}
