/**
 * The `pushgateway` built-in: PUTs berth's metrics to a Prometheus Pushgateway every interval, for
 * hosts Prometheus cannot scrape. A PUT replaces the whole group, so a missed push only leaves the
 * previous values in place a little longer: each push is one attempt, and the next interval is the retry.
 */
import os from 'node:os';
import { BerthError } from '../../errors.js';
import { VERSION } from '../../version.js';
import type { MetricsExporter, PluginContext, PluginFactory, PluginInstance, PluginManifest } from '../types.js';
import { configError, HTTP_URL_SCHEMA, httpUrl, originOf, RETRY_TIMING, redactor, secondsSchema, secretString, send, stringField, type HttpRequest, type RetryPolicy } from './deliver.js';

const DEFAULT_JOB = 'berth';
const DEFAULT_INTERVAL_SECONDS = 15;
/** Below the Plugin's spec.timeoutSeconds (5 s by default), which bounds every call into the plugin. */
const DEFAULT_TIMEOUT_SECONDS = 4;
/** Prometheus text exposition format, the one berth's /metrics serves. */
const CONTENT_TYPE = 'text/plain; version=0.0.4';
const LABEL_NAME = '^(?!(job|instance)$)(?!__)[a-zA-Z_][a-zA-Z0-9_]*$';

export const manifest: PluginManifest = {
  name: 'pushgateway',
  version: VERSION,
  description: "Pushes berth's metrics to a Prometheus Pushgateway every interval (PUT: the group is replaced).",
  provides: ['metrics-exporter'],
  configSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'pushgateway plugin config',
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: {
      url: { ...HTTP_URL_SCHEMA, pattern: '^https?://[^/?#@]+(/[^?#]*)?$', description: 'The Pushgateway, e.g. http://127.0.0.1:9091 (a path prefix is kept: https://gw.example.com/push).', examples: ['http://127.0.0.1:9091'] },
      job: { description: `The job label of the group. Default: ${DEFAULT_JOB}.`, type: 'string', minLength: 1, maxLength: 256, default: DEFAULT_JOB },
      instance: { description: "The instance label of the group. Default: the host's name. Several environments on one host push to one group unless instance or groupingLabels tell them apart.", type: 'string', minLength: 1, maxLength: 256 },
      groupingLabels: {
        description: 'More labels of the group, after job and instance, e.g. { env: production }. Default: none.',
        type: 'object',
        maxProperties: 16,
        propertyNames: { pattern: LABEL_NAME, description: 'A Prometheus label name other than job and instance, not starting with __.' },
        additionalProperties: { type: 'string', maxLength: 256 },
      },
      basicAuth: {
        description: 'HTTP basic auth for a Pushgateway behind a proxy. Default: none.',
        type: 'object',
        required: ['username', 'password'],
        additionalProperties: false,
        properties: {
          username: { type: 'string', minLength: 1, pattern: '^[^:\\r\\n]*$', description: 'No colon.' },
          password: secretString({ type: 'string', minLength: 1 }, 'The password.'),
        },
      },
      deleteOnStop: { description: "DELETE the group when the plugin stops, so Prometheus stops seeing this berth's last values. Default: false.", type: 'boolean', default: false },
      intervalSeconds: { description: `How often berth pushes, in seconds. Default: ${DEFAULT_INTERVAL_SECONDS}.`, type: 'number', minimum: 1, maximum: 86_400, default: DEFAULT_INTERVAL_SECONDS },
      timeoutSeconds: secondsSchema(DEFAULT_TIMEOUT_SECONDS, "Limit of each push (and of the DELETE at stop); keep it below intervalSeconds and the Plugin's spec.timeoutSeconds (5 by default), which bounds every call"),
    },
  },
};

/** A grouping key as Pushgateway paths spell it: a value with `/` (or empty) goes base64url-encoded. */
export function groupingPath(labels: readonly (readonly [string, string])[]): string {
  return labels
    .map(([name, value]) => (value === '' || value.includes('/') ? `${name}@base64/${Buffer.from(value).toString('base64url') || '='}` : `${name}/${encodeURIComponent(value)}`))
    .join('/');
}

function basicAuth(plugin: string, config: Record<string, unknown>): string | undefined {
  const auth = config.basicAuth;
  if (auth === undefined) return undefined;
  if (!auth || typeof auth !== 'object') throw configError(plugin, 'basicAuth', 'must be { username, password }');
  const username = stringField(plugin, auth as Record<string, unknown>, 'username', true);
  const password = stringField(plugin, auth as Record<string, unknown>, 'password', true);
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** The pushgateway plugin's factory. */
export const create: PluginFactory = (ctx: PluginContext): PluginInstance => {
  const base = httpUrl(ctx.name, 'url', stringField(ctx.name, ctx.config, 'url', true)).replace(/\/+$/, '');
  if (/[?#]/.test(base)) throw configError(ctx.name, 'url', 'must have no query or fragment: berth appends the group path');
  const labels: [string, string][] = [
    ['job', stringField(ctx.name, ctx.config, 'job') ?? DEFAULT_JOB],
    ['instance', stringField(ctx.name, ctx.config, 'instance') ?? os.hostname()],
    ...Object.entries((ctx.config.groupingLabels as Record<string, string> | undefined) ?? {}),
  ];
  const url = `${base}/metrics/${groupingPath(labels)}`;
  const group = Object.fromEntries(labels);
  const authorization = basicAuth(ctx.name, ctx.config);
  const target = originOf(base);
  const interval = (ctx.config.intervalSeconds as number | undefined) ?? DEFAULT_INTERVAL_SECONDS;
  const policy: RetryPolicy = { ...RETRY_TIMING, maxAttempts: 1, timeoutMs: Math.min((ctx.config.timeoutSeconds as number | undefined) ?? DEFAULT_TIMEOUT_SECONDS, interval) * 1000 };
  const redact = redactor([authorization, authorization?.slice('Basic '.length)]);
  const headers = { ...(authorization && { authorization }) };
  const request = (method: HttpRequest['method'], body?: string): HttpRequest => ({ method, url, headers: body === undefined ? headers : { ...headers, 'content-type': CONTENT_TYPE }, ...(body !== undefined && { body }) });

  let pushes = 0;
  let failingInARow = 0;
  let lastError: string | undefined;
  /** The push in flight: a newer one aborts it, so older metrics never land after newer ones. */
  let inflight: AbortController | undefined;

  const metricsExporter: MetricsExporter = {
    async export(metricsText: string): Promise<void> {
      inflight?.abort();
      const mine = new AbortController();
      inflight = mine;
      const result = await send(request('PUT', metricsText), policy, { signal: AbortSignal.any([ctx.signal, mine.signal]), redact, now: () => ctx.now() });
      if (inflight === mine) inflight = undefined;
      if (result.ok) {
        pushes++;
        if (failingInARow) ctx.log.info('pushes succeed again', { target, group, failedBefore: failingInARow });
        failingInARow = 0;
        lastError = undefined;
        return;
      }
      if (result.aborted) return; // superseded by a newer push, or stopping
      failingInARow++;
      lastError = result.error;
      if (failingInARow === 1) ctx.log.warn('push failed', { target, group, ...(result.status !== undefined && { status: result.status }), error: result.error });
      throw new BerthError('E_PLUGIN', `pushgateway: push to ${target} failed: ${result.error}`, { plugin: ctx.name, target, ...(result.status !== undefined && { status: result.status }) });
    },
  };

  return {
    metricsExporter,
    health: () =>
      failingInARow ? { ok: false, message: `last ${failingInARow} pushes failed (${lastError ?? 'unknown error'})` } : { ok: true, message: `pushed ${pushes} times to ${target}` },
    async stop() {
      inflight?.abort();
      if (ctx.config.deleteOnStop !== true) return;
      // Not ctx.signal: it may be aborted already, and this request is the last word.
      const result = await send(request('DELETE'), policy, { signal: new AbortController().signal, redact });
      if (result.ok) ctx.log.info('metrics group deleted', { target, group });
      else ctx.log.warn('deleting the metrics group failed', { target, group, ...(result.status !== undefined && { status: result.status }), error: result.error });
    },
  };
};
