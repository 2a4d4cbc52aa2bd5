import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import { reportCommitStatuses, type StatusReporter } from '../forge/statuses.js';
import { recordHistory, writeStatusFile, type HistoryStore } from './history.js';
import { logEvents } from './log.js';
import type { Metrics } from './metrics.js';

export interface Reporting {
  history: HistoryStore;
  log: Logger;
  metrics?: Metrics;
  /** Where commit statuses go (a forge, git notes); none when the repo has neither. */
  reporters?: StatusReporter[];
  /** Commit-status context, `berth/<env>` by default (`/drift` and `/plan` are added for those). */
  context: string;
  /** berth's own address, linked from each status (`--external-url`). */
  externalUrl?: string;
}

/** Subscribes every listener of a reconcile to the bus: the one place the controller and `berth apply` share. */
export function wireReporting(bus: EventBus, r: Reporting): () => void {
  const offs = [
    recordHistory(bus, r.history),
    writeStatusFile(bus, r.history),
    logEvents(bus, r.log),
    ...(r.metrics ? [r.metrics.subscribe(bus)] : []),
    reportCommitStatuses(bus, r.reporters ?? [], { context: r.context, ...(r.externalUrl && { externalUrl: r.externalUrl }) }),
  ];
  return () => offs.forEach((off) => off());
}
