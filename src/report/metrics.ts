import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventBus } from '../events/bus.js';
import { parseRevision } from '../source/types.js';

/** berth's Prometheus metrics, on a registry of their own (served at /metrics). */
export class Metrics {
  readonly registry = new Registry();
  readonly reconcileDuration = new Histogram({ name: 'berth_reconcile_duration_seconds', help: 'Duration of reconciles', labelNames: ['env', 'result'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry] });
  readonly reconcileTotal = new Counter({ name: 'berth_reconcile_total', help: 'Reconciles by result', labelNames: ['env', 'result'], registers: [this.registry] });
  readonly appInfo = new Gauge({ name: 'berth_app_info', help: 'One series per app: its sync status, health and revision (value 1)', labelNames: ['env', 'app', 'sync_status', 'health_status', 'revision'], registers: [this.registry] });
  readonly gitFetchDuration = new Histogram({ name: 'berth_git_fetch_duration_seconds', help: 'Duration of git fetch + read', labelNames: ['env'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });
  readonly webhookRequests = new Counter({ name: 'berth_webhook_requests_total', help: 'Webhook requests by forge and HTTP status', labelNames: ['forge', 'code'], registers: [this.registry] });
  readonly applyActions = new Counter({ name: 'berth_apply_actions_total', help: 'Plan actions applied, by kind', labelNames: ['env', 'action'], registers: [this.registry] });
  readonly triggers = new Counter({ name: 'berth_triggers_total', help: 'Reconcile triggers received, by source (many coalesce into one reconcile)', labelNames: ['env', 'trigger'], registers: [this.registry] });
  readonly driftTotal = new Counter({ name: 'berth_drift_detected_total', help: 'Drift reports (each change of what drifted counts once)', labelNames: ['env'], registers: [this.registry] });
  readonly driftHealed = new Counter({ name: 'berth_drift_healed_total', help: 'Drift repaired by selfHeal (re-applying the applied revision)', labelNames: ['env'], registers: [this.registry] });
  readonly driftResolved = new Counter({ name: 'berth_drift_resolved_total', help: 'Drift that ended without a heal: undone by hand, or a newer revision applied over it', labelNames: ['env'], registers: [this.registry] });
  readonly pluginCalls = new Counter({ name: 'berth_plugin_calls_total', help: 'Calls into plugins, by extension point and outcome (ok, error, timeout)', labelNames: ['env', 'plugin', 'point', 'outcome'], registers: [this.registry] });
  readonly pluginCallDuration = new Histogram({ name: 'berth_plugin_call_duration_seconds', help: 'Duration of calls into plugins', labelNames: ['env', 'plugin', 'point'], buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30], registers: [this.registry] });
  readonly pluginRunning = new Gauge({ name: 'berth_plugin_running', help: '1 while a plugin is running, 0 in any other state (see GET /api/v1/plugins)', labelNames: ['env', 'plugin'], registers: [this.registry] });
  readonly scalingDecisions = new Counter({ name: 'berth_scaling_decisions_total', help: 'Replica counts changed by scaler plugins', labelNames: ['env', 'app', 'scaler'], registers: [this.registry] });
  readonly commitStatuses = new Counter({ name: 'berth_commit_statuses_total', help: 'Commit statuses handled, by forge, context kind (reconcile, drift, plan), state and outcome (delivered, failed, superseded)', labelNames: ['forge', 'kind', 'state', 'outcome'], registers: [this.registry] });
  readonly healthChanges = new Counter({ name: 'berth_health_changes_total', help: 'App health transitions, by the health entered', labelNames: ['env', 'health_status'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Metrics follow the event bus. */
  subscribe(bus: EventBus): () => void {
    const offs = [
      bus.on('reconcile.finished', (e) => {
        if (e.noop) return;
        this.reconcileDuration.observe({ env: e.env, result: e.result }, e.durationMs / 1000);
        this.reconcileTotal.inc({ env: e.env, result: e.result });
      }),
      bus.on('reconcile.started', (e) => {
        for (const [action, n] of Object.entries(e.counts)) if (n > 0) this.applyActions.inc({ env: e.env, action }, n);
      }),
      bus.on('drift.detected', (e) => void this.driftTotal.inc({ env: e.env })),
      bus.on('drift.healed', (e) => void this.driftHealed.inc({ env: e.env })),
      bus.on('drift.resolved', (e) => void this.driftResolved.inc({ env: e.env })),
      bus.on('health.changed', (e) => void this.healthChanges.inc({ env: e.env, health_status: e.health.status })),
      bus.on('status.changed', (e) => {
        this.appInfo.reset();
        for (const a of e.status.apps) this.appInfo.set({ env: e.env, app: a.app, sync_status: a.syncStatus, health_status: a.health, revision: parseRevision(a.revision).sha ?? 'worktree' }, 1);
      }),
    ];
    return () => offs.forEach((off) => off());
  }
}
