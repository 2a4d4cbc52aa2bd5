import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';

/** Logs follow the event bus: a constant message per event type, the event's fields as context. */
export function logEvents(bus: EventBus, log: Logger): () => void {
  const offs = [
    bus.on('reconcile.started', (e) => log.info({ env: e.env, revision: e.revision, trigger: e.trigger, counts: e.counts }, 'applying')),
    bus.on('app.progress', (e) => log.info({ env: e.env, app: e.app, phase: e.phase, detail: e.message }, 'apply progress')),
    bus.on('reconcile.finished', (e) => {
      if (e.noop) return;
      const level = e.result === 'Succeeded' ? 'info' : 'warn';
      log[level]({ env: e.env, revision: e.revision, result: e.result, reason: e.reason, durationMs: e.durationMs, error: e.error }, 'reconcile finished');
    }),
    bus.on('reconcile.error', (e) => log.error({ env: e.env, reason: e.reason, detail: e.message }, 'reconcile could not run; keeping the running state')),
    bus.on('drift.detected', (e) => log.warn({ env: e.env, revision: e.revision, apps: e.apps, selfHeal: e.selfHeal }, 'drift detected')),
    bus.on('drift.healed', (e) => log.info({ env: e.env, apps: e.apps }, 'drift healed')),
    bus.on('health.failed', (e) => log.warn({ env: e.env, app: e.app, replica: e.replica, failures: e.failures, detail: e.message }, 'replica failed its health check; replacing it')),
    bus.on('health.changed', (e) => log.info({ env: e.env, app: e.app, health: e.health.status, reason: e.health.reason, detail: e.health.message }, 'app health changed')),
  ];
  return () => offs.forEach((off) => off());
}
