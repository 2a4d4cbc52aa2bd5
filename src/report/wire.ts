import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import { reportCommitStatuses } from '../forge/statuses.js';
import type { CommitStatusReporter } from '../forge/types.js';
import { recordHistory, writeStatusFile, type HistoryStore } from './history.js';
import { logEvents } from './log.js';
import type { Metrics } from './metrics.js';

export interface Reporting {
  history: HistoryStore;
  log: Logger;
  metrics?: Metrics;
  reporters?: CommitStatusReporter[];
  /** Commit-status context, `berth/<env>` by default. */
  context: string;
}

/** Subscribes every listener of a reconcile to the bus: the one place the controller and `berth apply` share. */
export function wireReporting(bus: EventBus, r: Reporting): () => void {
  const offs = [
    recordHistory(bus, r.history),
    writeStatusFile(bus, r.history),
    logEvents(bus, r.log),
    ...(r.metrics ? [r.metrics.subscribe(bus)] : []),
    reportCommitStatuses(bus, r.reporters ?? [], { context: r.context, onError: (reporter, err) => r.log.warn({ reporter, err: (err as Error).message }, 'commit status not reported') }),
  ];
  return () => offs.forEach((off) => off());
}
