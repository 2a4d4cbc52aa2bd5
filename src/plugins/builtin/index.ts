/**
 * The plugins berth ships, by the name a Plugin document `use`s: one line each. `entry` is the module
 * a worker thread loads for `isolation: worker` (it exports `create`).
 */
import type { BuiltinPlugin } from '../catalog.js';
import * as metricsScaler from './metrics-scaler.js';
import * as pushgateway from './pushgateway.js';
import * as redisBridge from './redis-bridge.js';
import * as schedule from './schedule.js';
import * as slack from './slack.js';
import * as webhook from './webhook.js';

export const BUILTIN_PLUGINS: Record<string, BuiltinPlugin> = {
  webhook: { manifest: webhook.manifest, create: webhook.create, entry: new URL('./webhook.js', import.meta.url) },
  slack: { manifest: slack.manifest, create: slack.create, entry: new URL('./slack.js', import.meta.url) },
  pushgateway: { manifest: pushgateway.manifest, create: pushgateway.create, entry: new URL('./pushgateway.js', import.meta.url) },
  'redis-bridge': { manifest: redisBridge.manifest, create: redisBridge.create, entry: new URL('./redis-bridge.js', import.meta.url) },
  schedule: { manifest: schedule.manifest, create: schedule.create, entry: new URL('./schedule.js', import.meta.url) },
  'metrics-scaler': { manifest: metricsScaler.manifest, create: metricsScaler.create, entry: new URL('./metrics-scaler.js', import.meta.url) },
};
