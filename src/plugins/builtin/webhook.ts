/**
 * The `webhook` built-in: POSTs each selected event, as the JSON berth emits it, to a URL, signed
 * GitHub-style when a secret is set. Deliveries go out in order through a DeliveryQueue (deliver.ts).
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { BerthEvent } from '../../events/types.js';
import { VERSION } from '../../version.js';
import type { PluginContext, PluginFactory, PluginInstance, PluginManifest } from '../types.js';
import {
  configError,
  DELIVERY_DEFAULTS,
  deliveryQueue,
  eventFilter,
  eventsSchema,
  handlerEvents,
  HTTP_URL_SCHEMA,
  httpUrl,
  maxAttemptsSchema,
  secondsSchema,
  secretString,
  stringField,
  type DeliveryOptions,
} from './deliver.js';

/** Every event but app.progress (see eventFilter). */
const DEFAULT_EVENTS = ['*'];
const DEFAULT_MAX_ATTEMPTS = 5;
const DEFAULT_TIMEOUT_SECONDS = 10;

/** Matches one letter of `word` in either case (JSON Schema patterns take no flags). */
function anyCase(word: string): string {
  return [...word].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c)).join('');
}

/** Headers berth sets itself (or the HTTP client does): a config may not replace them. */
const RESERVED_HEADERS = ['host', 'content-length', 'content-type', 'transfer-encoding', 'connection'];

/** An HTTP header name (RFC 9110 token) that is not reserved and does not start with X-Berth-. */
export const HEADER_NAME_PATTERN = `^(?!${anyCase('x-berth-')}|(${RESERVED_HEADERS.map(anyCase).join('|')})$)[!#$%&'*+.^_\`|~0-9A-Za-z-]+$`;

export const manifest: PluginManifest = {
  name: 'webhook',
  version: VERSION,
  description: 'POSTs berth events as JSON to an HTTP endpoint, HMAC-signed, in order, with retries.',
  provides: ['event-handler'],
  configSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'webhook plugin config',
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: {
      url: { ...HTTP_URL_SCHEMA, description: 'Where to POST events: an http:// or https:// URL (write it as { secretRef: NAME } when it carries a token). Redirects are not followed.' },
      secret: secretString({ type: 'string', minLength: 1 }, 'HMAC-SHA256 key: each request carries X-Berth-Signature-256: sha256=<hex of the exact body>. Default: none (unsigned).'),
      events: eventsSchema(DEFAULT_EVENTS),
      headers: {
        description: 'Extra request headers, e.g. Authorization (values may be secretRefs; never logged). Content-Type, Host, Content-Length, Connection, Transfer-Encoding and X-Berth-* are berth\'s own. Default: none.',
        type: 'object',
        propertyNames: { pattern: HEADER_NAME_PATTERN },
        additionalProperties: { type: 'string', pattern: '^[^\\r\\n\\u0000]*$', description: 'A header value: one line. Write credentials as { secretRef: NAME }.' },
        examples: [{ Authorization: { secretRef: 'hook-token' } }],
      },
      maxAttempts: maxAttemptsSchema(DEFAULT_MAX_ATTEMPTS),
      timeoutSeconds: secondsSchema(DEFAULT_TIMEOUT_SECONDS, 'Limit of each attempt (deliveries run in the background, outside the limit of spec.timeoutSeconds)'),
    },
  },
};

/** Reads the `headers` map (values resolved from secrets by the host). */
export function headersField(plugin: string, config: Record<string, unknown>): Record<string, string> {
  const headers: Record<string, string> = {};
  const raw = config.headers;
  if (raw === undefined) return headers;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw configError(plugin, 'headers', 'must be a map of header names to values');
  const allowed = new RegExp(HEADER_NAME_PATTERN, 'u');
  for (const name of Object.keys(raw)) {
    if (!allowed.test(name)) throw configError(plugin, `headers.${name}`, 'is not a header name berth lets a config set');
    const value = stringField(plugin, raw as Record<string, unknown>, name, true);
    if (/[\r\n\0]/.test(value)) throw configError(plugin, `headers.${name}`, 'must be one line (a secret with a trailing newline?)');
    headers[name] = value;
  }
  return headers;
}

/** The webhook plugin's factory, with delivery timings other than the defaults (tests). */
export function webhookPlugin(options: DeliveryOptions = {}): PluginFactory {
  return (ctx: PluginContext): PluginInstance => {
    const url = httpUrl(ctx.name, 'url', stringField(ctx.name, ctx.config, 'url', true));
    const secret = stringField(ctx.name, ctx.config, 'secret');
    const headers = headersField(ctx.name, ctx.config);
    const selectors = (ctx.config.events as string[] | undefined) ?? DEFAULT_EVENTS;
    const wanted = eventFilter(selectors);
    const queue = deliveryQueue(ctx, url, [secret, ...Object.values(headers)], options, { maxAttempts: DEFAULT_MAX_ATTEMPTS, timeoutSeconds: DEFAULT_TIMEOUT_SECONDS });
    const drainMs = options.drainMs ?? DELIVERY_DEFAULTS.drainMs;

    return {
      eventHandler: {
        events: handlerEvents(selectors),
        // Queue and return: the retries of one delivery must not hold the host's event guard.
        handle(event: BerthEvent) {
          if (!wanted(event.type)) return;
          const body = JSON.stringify(event);
          const delivery = randomUUID();
          queue.push({
            fields: { event: event.type, seq: event.seq, delivery },
            request: {
              method: 'POST',
              url,
              body,
              headers: {
                ...headers,
                'content-type': 'application/json',
                'x-berth-event': event.type,
                'x-berth-delivery': delivery,
                ...(secret && { 'x-berth-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` }),
              },
            },
          });
        },
      },
      health: () => queue.health(),
      stop: () => queue.close(drainMs),
    };
  };
}

export const create: PluginFactory = webhookPlugin();
