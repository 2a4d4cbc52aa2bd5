/**
 * The `slack` built-in: one readable line per event that matters to people (a reconcile's outcome,
 * drift, an app turning Degraded, an error), posted to a Slack incoming webhook as `{ text, blocks }`.
 * Delivery, retries and ordering are webhook's (deliver.ts).
 */
import type { BerthEvent } from '../../events/types.js';
import { plural, truncate } from '../../util/text.js';
import { VERSION } from '../../version.js';
import type { PluginContext, PluginFactory, PluginInstance, PluginManifest } from '../types.js';
import { DELIVERY_DEFAULTS, deliveryQueue, eventFilter, eventsSchema, handlerEvents, HTTP_URL_SCHEMA, httpUrl, maxAttemptsSchema, secondsSchema, secretString, stringField, type DeliveryOptions } from './deliver.js';

const DEFAULT_EVENTS = ['reconcile.finished', 'reconcile.error', 'drift.*', 'health.changed'];
const DEFAULT_MAX_ATTEMPTS = 5;
const DEFAULT_TIMEOUT_SECONDS = 10;
/** Slack's limit for a section block's text. */
const MAX_BLOCK_TEXT = 3000;
const MAX_APPS_NAMED = 5;

export const manifest: PluginManifest = {
  name: 'slack',
  version: VERSION,
  description: 'Posts one line per reconcile outcome, drift, degraded app and error to a Slack incoming webhook.',
  provides: ['event-handler'],
  configSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'slack plugin config',
    type: 'object',
    required: ['webhookUrl'],
    additionalProperties: false,
    properties: {
      webhookUrl: secretString({ ...HTTP_URL_SCHEMA, examples: ['https://hooks.slack.com/services/T000/B000/XXXX'] }, 'The Slack incoming-webhook URL (Mattermost and other Slack-compatible hooks work too).'),
      events: eventsSchema(DEFAULT_EVENTS),
      maxAttempts: maxAttemptsSchema(DEFAULT_MAX_ATTEMPTS),
      timeoutSeconds: secondsSchema(DEFAULT_TIMEOUT_SECONDS, 'Limit of each attempt (deliveries run in the background, outside the limit of spec.timeoutSeconds)'),
    },
  },
};

/** A piece of a message: plain text, or a value shown bold or as code in Slack's mrkdwn. */
type Part = string | { bold: string } | { code: string };

/** `&`, `<` and `>` are Slack's control characters, in plain text and mrkdwn alike. */
function escape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function plain(parts: Part[]): string {
  return parts.map((p) => (typeof p === 'string' ? p : 'bold' in p ? p.bold : p.code)).join('');
}

function mrkdwn(parts: Part[]): string {
  return parts.map((p) => (typeof p === 'string' ? escape(p) : 'bold' in p ? `*${escape(p.bold).replaceAll('*', '')}*` : `\`${escape(p.code).replaceAll('`', "'")}\``)).join('');
}

/** `main@sha1:<40 hex>` as `main@1a2b3c4`; anything else as it is. */
export function shortRevision(revision: string): string {
  const m = /^(.*)@sha1:([0-9a-f]{40})$/.exec(revision);
  if (m) return `${m[1]}@${m[2]!.slice(0, 7)}`;
  return /^[0-9a-f]{40}$/.test(revision) ? revision.slice(0, 7) : revision;
}

/** `850ms`, `12.3s`, `4m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function named(apps: readonly string[]): string {
  const shown = apps.slice(0, MAX_APPS_NAMED).join(', ');
  return apps.length > MAX_APPS_NAMED ? `${shown} and ${apps.length - MAX_APPS_NAMED} more` : shown;
}

/** The message for one event, or undefined when it says nothing worth a line. */
export function messageParts(event: BerthEvent): Part[] | undefined {
  const env: Part = { bold: event.env };
  switch (event.type) {
    case 'reconcile.finished': {
      // A poll that found everything in sync is not news.
      if (event.noop && event.result === 'Succeeded') return undefined;
      const changed = event.apps.filter((a) => a.result !== 'Unchanged');
      const parts: Part[] = [env, ': reconcile ', { bold: event.result }, ' at ', { code: shortRevision(event.revision) }, ` in ${formatDuration(event.durationMs)} (${event.trigger}): `];
      parts.push(changed.length ? `${plural(changed.length, 'app')} changed (${named(changed.map((a) => a.app))})` : 'no app changed');
      for (const a of changed.filter((x) => x.result === 'Failed' || x.result === 'RolledBack').slice(0, MAX_APPS_NAMED)) {
        parts.push('; ', { bold: a.app }, ` ${a.result === 'Failed' ? 'failed' : 'rolled back'}${a.reason ? ` (${a.reason})` : ''}${a.error ? `: ${a.error}` : ''}`);
      }
      if (event.reason && !changed.some((a) => a.reason === event.reason)) parts.push(`; reason ${event.reason}`);
      if (event.error) parts.push(`; ${event.error}`);
      return parts;
    }
    case 'reconcile.error':
      return [env, ': reconcile error', ...(event.revision ? [' at ', { code: shortRevision(event.revision) } satisfies Part] : []), ` (${event.reason}, ${event.trigger}): ${event.message}`];
    case 'drift.detected': {
      const action = event.selfHeal ? 'healing it' : event.reason === 'HealLimitReached' ? 'not healing it: healed too often (HealLimitReached)' : 'reported only (selfHeal is off)';
      return [env, ': drift detected at ', { code: shortRevision(event.revision) }, ` in ${named(event.apps) || 'the proxy'}: ${event.description}; ${action}`];
    }
    case 'drift.healed':
      return [env, ': drift healed at ', { code: shortRevision(event.revision) }, ` in ${named(event.apps) || 'the proxy'}: ${event.description}`];
    case 'drift.resolved':
      return [env, `: drift resolved: ${event.description}`];
    case 'health.changed': {
      const was = event.previous?.status;
      const why = event.health.message ? `: ${event.health.message}` : '';
      if (event.health.status === 'Degraded' && was !== 'Degraded') return [env, ': ', { bold: event.app }, ' is ', { bold: 'Degraded' }, `${was ? ` (was ${was})` : ''}${why}`];
      if (was === 'Degraded' && event.health.status !== 'Degraded') return [env, ': ', { bold: event.app }, ' is ', { bold: event.health.status }, ` again (was Degraded)${why}`];
      return undefined;
    }
    default:
      return undefined;
  }
}

/** The Slack payload for one event: plain `text` (notifications, fallbacks) and the same line as a mrkdwn block. */
export function slackMessage(event: BerthEvent): { text: string; blocks: unknown[] } | undefined {
  const parts = messageParts(event);
  if (!parts) return undefined;
  return {
    text: truncate(escape(plain(parts)), MAX_BLOCK_TEXT),
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: truncate(mrkdwn(parts), MAX_BLOCK_TEXT) } }],
  };
}

/** The slack plugin's factory, with delivery timings other than the defaults (tests). */
export function slackPlugin(options: DeliveryOptions = {}): PluginFactory {
  return (ctx: PluginContext): PluginInstance => {
    const url = httpUrl(ctx.name, 'webhookUrl', stringField(ctx.name, ctx.config, 'webhookUrl', true));
    const selectors = (ctx.config.events as string[] | undefined) ?? DEFAULT_EVENTS;
    const wanted = eventFilter(selectors);
    // The hook URL is the credential: logs name its origin only, and answers are redacted of it.
    const queue = deliveryQueue(ctx, url, [], options, { maxAttempts: DEFAULT_MAX_ATTEMPTS, timeoutSeconds: DEFAULT_TIMEOUT_SECONDS });
    const drainMs = options.drainMs ?? DELIVERY_DEFAULTS.drainMs;

    return {
      eventHandler: {
        events: handlerEvents(selectors),
        handle(event: BerthEvent) {
          if (!wanted(event.type)) return;
          const message = slackMessage(event);
          if (!message) return;
          queue.push({ fields: { event: event.type, seq: event.seq }, request: { method: 'POST', url, body: JSON.stringify(message), headers: { 'content-type': 'application/json' } } });
        },
      },
      health: () => queue.health(),
      stop: () => queue.close(drainMs),
    };
  };
}

export const create: PluginFactory = slackPlugin();
