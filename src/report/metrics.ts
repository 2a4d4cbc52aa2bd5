import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
