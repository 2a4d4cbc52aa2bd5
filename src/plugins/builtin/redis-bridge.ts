/**
 * The `redis-bridge` built-in: publishes berth's events on a Redis channel and takes commands (sync,
 * suspend, resume) from another, answering each on a third. Two connections (Redis needs one of its
 * own for SUBSCRIBE); ioredis reconnects them and re-subscribes.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { BerthError } from '../../errors.js';
import type { BerthEvent } from '../../events/types.js';
import { truncate } from '../../util/text.js';
import { VERSION } from '../../version.js';
import type { PluginContext, PluginFactory, PluginHealth, PluginInstance, PluginManifest } from '../types.js';
import { configError, eventFilter, eventsSchema, handlerEvents, redactor, secondsSchema, secretString, stringField } from './deliver.js';

export const COMMANDS = ['sync', 'suspend', 'resume'] as const;
export type BridgeCommandName = (typeof COMMANDS)[number];

/** A command as received: `"sync"`, or `{ "command": "sync", "reason": "…", "id": "…" }`. */
export interface BridgeCommand {
  command: BridgeCommandName;
  reason?: string;
  id?: string;
}

/** The answer published on the replies channel. `id` is the command's, null when it had none. */
export interface BridgeReply {
  id: string | null;
  ok: boolean;
  error?: string;
}

const DEFAULT_EVENTS = ['*'];
/** Below the Plugin's spec.timeoutSeconds (5 s by default), which bounds start(): our error says more than the guard's. */
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 4;
const MAX_COMMAND_BYTES = 16 * 1024;
const MAX_REASON = 500;
const MAX_ID = 200;
const CHANNEL_SCHEMA = { type: 'string', minLength: 1, maxLength: 256, pattern: '^\\S+$' };

export const manifest: PluginManifest = {
  name: 'redis-bridge',
  version: VERSION,
  description: 'Publishes berth events on a Redis channel and takes sync/suspend/resume commands from another.',
  provides: ['message-queue', 'event-handler'],
  configSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'redis-bridge plugin config',
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: {
      url: {
        description: 'The Redis server: redis://[user@]host[:port][/db], rediss:// for TLS (write it as { secretRef: NAME } when it carries a password; better, use password).',
        type: 'string',
        pattern: '^rediss?://[^/?#]+(/[0-9]{1,2})?/?$',
        examples: ['redis://127.0.0.1:6379/0'],
      },
      password: secretString({ type: 'string', minLength: 1 }, "The Redis password (AUTH); overrides one in url. Default: none, or url's."),
      eventsChannel: { ...CHANNEL_SCHEMA, description: 'Channel events are published on, as JSON. Default: berth:<env>:events.' },
      commandsChannel: { ...CHANNEL_SCHEMA, description: 'Channel commands are read from. Default: berth:<env>:commands.' },
      repliesChannel: { ...CHANNEL_SCHEMA, description: 'Channel answers to commands go to: { id, ok, error? }. Default: berth:<env>:replies. The three channels must differ.' },
      events: eventsSchema(DEFAULT_EVENTS),
      commands: {
        description: `Commands accepted; others are answered ok: false. Default: ${COMMANDS.join(', ')}.`,
        type: 'array',
        uniqueItems: true,
        items: { type: 'string', enum: [...COMMANDS] },
        default: [...COMMANDS],
      },
      connectTimeoutSeconds: secondsSchema(DEFAULT_CONNECT_TIMEOUT_SECONDS, "How long start waits for Redis before the plugin fails to start; keep it below the Plugin's spec.timeoutSeconds (5 by default), which bounds start"),
    },
  },
};

type Parsed = { ok: true; command: BridgeCommand } | { ok: false; id: string | null; error: string };

const isCommand = (value: unknown): value is BridgeCommandName => typeof value === 'string' && (COMMANDS as readonly string[]).includes(value);

/** Reads one message of the commands channel. Never throws: anything else is an error to answer. */
export function parseCommand(text: string, allowed: readonly BridgeCommandName[] = COMMANDS): Parsed {
  const fail = (error: string, id: string | null = null): Parsed => ({ ok: false, id, error });
  if (Buffer.byteLength(text) > MAX_COMMAND_BYTES) return fail(`command is larger than ${MAX_COMMAND_BYTES} bytes`);
  let command: BridgeCommand;
  const word = text.trim();
  if (isCommand(word)) command = { command: word };
  else {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return fail(`expected ${COMMANDS.join(', ')} or a JSON object { "command": …, "reason"?: …, "id"?: … }`);
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) return fail('expected a JSON object { "command": …, "reason"?: …, "id"?: … }');
    const o = value as Record<string, unknown>;
    if (o.id !== undefined && (typeof o.id !== 'string' || o.id.length > MAX_ID)) return fail(`id must be a string of at most ${MAX_ID} characters`);
    const id = (o.id as string | undefined) ?? null;
    const unknown = Object.keys(o).filter((k) => !['command', 'reason', 'id'].includes(k));
    if (unknown.length) return fail(`unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')}; allowed: command, reason, id`, id);
    if (!isCommand(o.command)) return fail(`command must be one of ${COMMANDS.join(', ')}${o.command === undefined ? '' : `, not ${truncate(JSON.stringify(o.command), 40)}`}`, id);
    if (o.reason !== undefined && (typeof o.reason !== 'string' || o.reason.length > MAX_REASON)) return fail(`reason must be a string of at most ${MAX_REASON} characters`, id);
    command = { command: o.command, ...(typeof o.reason === 'string' && { reason: o.reason }), ...(id !== null && { id }) };
  }
  if (!allowed.includes(command.command)) return fail(`command ${command.command} is not allowed here (allowed: ${allowed.join(', ') || 'none'})`, command.id ?? null);
  return { ok: true, command };
}

/** Where a Redis URL points, for logs and errors: host and port, never credentials. */
function whereOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'an unparsable URL';
  }
}

/** Resolves when `client` is ready; ioredis keeps retrying in between, so a Redis still starting is waited for. */
function ready(client: Redis, signal: AbortSignal): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      signal.removeEventListener('abort', abort);
      resolve();
    };
    const abort = () => {
      client.off('ready', done);
      reject(signal.reason);
    };
    client.once('ready', done);
    signal.addEventListener('abort', abort, { once: true });
    // The first attempt's failure is reported through 'error' (logged); retries follow.
    client.connect().catch(() => undefined);
  });
}

/** The redis-bridge plugin's factory. */
export const create: PluginFactory = async (ctx: PluginContext): Promise<PluginInstance> => {
  // Loaded when a Plugin document enables the bridge, not by every berth command.
  const { Redis } = await import('ioredis');
  const url = stringField(ctx.name, ctx.config, 'url', true);
  if (!/^rediss?:\/\//.test(url)) throw configError(ctx.name, 'url', 'must be a redis:// or rediss:// URL');
  const password = stringField(ctx.name, ctx.config, 'password');
  const channels = {
    events: stringField(ctx.name, ctx.config, 'eventsChannel') ?? `berth:${ctx.env}:events`,
    commands: stringField(ctx.name, ctx.config, 'commandsChannel') ?? `berth:${ctx.env}:commands`,
    replies: stringField(ctx.name, ctx.config, 'repliesChannel') ?? `berth:${ctx.env}:replies`,
  };
  // A shared channel would feed the bridge its own output (a reply read as a command, answered, read again…).
  if (new Set(Object.values(channels)).size !== 3) throw configError(ctx.name, 'eventsChannel/commandsChannel/repliesChannel', `must be three different channels (got ${Object.values(channels).join(', ')})`);
  const selectors = (ctx.config.events as string[] | undefined) ?? DEFAULT_EVENTS;
  const wanted = eventFilter(selectors);
  const allowed = (ctx.config.commands as BridgeCommandName[] | undefined) ?? COMMANDS;
  const connectTimeoutMs = ((ctx.config.connectTimeoutSeconds as number | undefined) ?? DEFAULT_CONNECT_TIMEOUT_SECONDS) * 1000;
  const where = whereOf(url);
  const redact = redactor([url, password, ...(URL.canParse(url) ? [new URL(url).password] : [])]);

  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    // An event published while Redis is away fails at once (and is counted) instead of waiting in
    // memory: pub/sub keeps nothing for absent listeners either.
    enableOfflineQueue: false,
    ...(password !== undefined && { password }),
  };
  const publisher = new Redis(url, { ...options, connectionName: `berth-${ctx.env}-${ctx.name}-pub` });
  // The subscriber queues its SUBSCRIBE until it is connected: ioredis re-subscribes after a reconnect.
  const subscriber = new Redis(url, { ...options, enableOfflineQueue: true, connectionName: `berth-${ctx.env}-${ctx.name}-sub` });
  let stopping = false;
  let published = 0;
  let dropped = 0;
  let droppingSince: number | undefined;

  for (const [role, client] of [
    ['publisher', publisher],
    ['subscriber', subscriber],
  ] as const) {
    let wasReady = false;
    let lost = false;
    let errorLogged = false;
    client.on('ready', () => {
      if (wasReady && lost) ctx.log.info('redis connection restored', { redis: where, connection: role });
      wasReady = true;
      lost = false;
      errorLogged = false;
    });
    client.on('close', () => {
      if (stopping || !wasReady || lost) return;
      lost = true;
      ctx.log.warn('redis connection lost: reconnecting', { redis: where, connection: role });
    });
    client.on('reconnecting', (delayMs: number) => ctx.log.debug('redis reconnecting', { redis: where, connection: role, delayMs }));
    client.on('error', (err: Error) => {
      // Once per outage: ioredis reports every failed reconnect.
      if (stopping || errorLogged) return;
      errorLogged = true;
      ctx.log.warn('redis connection error', { redis: where, connection: role, error: redact(err.message) });
    });
  }

  const reply = async (answer: BridgeReply): Promise<void> => {
    try {
      await publisher.publish(channels.replies, JSON.stringify(answer));
    } catch (err) {
      ctx.log.warn('command reply not published', { redis: where, channel: channels.replies, id: answer.id, error: redact((err as Error).message) });
    }
  };

  const onCommand = async (text: string): Promise<void> => {
    const parsed = parseCommand(text, allowed);
    if (!parsed.ok) {
      ctx.log.warn('invalid command', { channel: channels.commands, id: parsed.id, error: parsed.error, bytes: Buffer.byteLength(text) });
      return reply({ id: parsed.id, ok: false, error: parsed.error });
    }
    const { command, reason, id } = parsed.command;
    const why = reason ?? `${command} requested on Redis channel ${channels.commands}`;
    ctx.log.info('command received', { channel: channels.commands, command, id: id ?? null, reason: why });
    try {
      if (command === 'sync') ctx.controls.sync(why);
      else if (command === 'suspend') ctx.controls.suspend(why);
      else ctx.controls.resume();
    } catch (err) {
      const error = (err as Error)?.message ?? String(err);
      ctx.log.warn('command failed', { command, id: id ?? null, error });
      return reply({ id: id ?? null, ok: false, error });
    }
    return reply({ id: id ?? null, ok: true });
  };

  subscriber.on('message', (channel: string, message: string) => {
    if (channel === channels.commands) void onCommand(message);
  });

  let closing: Promise<void> | undefined;
  /** Closes both connections once; `graceful`: QUIT first, so replies in flight go out (for a second at most). */
  const disconnect = (graceful: boolean): Promise<void> =>
    (closing ??= (async () => {
      stopping = true;
      if (graceful && publisher.status === 'ready' && subscriber.status === 'ready') {
        await Promise.race([Promise.allSettled([publisher.quit(), subscriber.quit()]), new Promise((r) => setTimeout(r, 1000).unref())]);
      }
      // After a QUIT the stream is closed: ioredis's disconnect would still arm a 2 s timer on it.
      for (const client of [publisher, subscriber]) if (client.status !== 'end') client.disconnect();
    })());
  // Stopping aborts the signal: nothing may keep reconnecting after that, whatever happens to stop().
  ctx.signal.addEventListener('abort', () => void disconnect(false), { once: true });

  return {
    async start() {
      const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(connectTimeoutMs)]);
      let lastError: string | undefined;
      const track = (err: Error) => void (lastError = redact(err.message));
      publisher.on('error', track);
      subscriber.on('error', track);
      try {
        await Promise.all([ready(publisher, deadline), ready(subscriber, deadline)]);
        await Promise.race([
          subscriber.subscribe(channels.commands),
          new Promise((_, reject) => deadline.addEventListener('abort', () => reject(deadline.reason), { once: true })),
        ]);
      } catch {
        await disconnect(false);
        throw new BerthError('E_PLUGIN', `redis-bridge: cannot reach Redis at ${where} within ${connectTimeoutMs / 1000}s${lastError ? ` (${lastError})` : ''}`, { plugin: ctx.name, redis: where });
      } finally {
        publisher.off('error', track);
        subscriber.off('error', track);
      }
      ctx.log.info('redis bridge connected', { redis: where, events: channels.events, commands: channels.commands, replies: channels.replies });
    },

    async stop() {
      await disconnect(true);
    },

    health(): PluginHealth {
      const ok = !stopping && publisher.status === 'ready' && subscriber.status === 'ready';
      const state = stopping ? 'stopped' : `publisher ${publisher.status}, subscriber ${subscriber.status}`;
      return { ok, message: `${state}; published ${published}, dropped ${dropped}` };
    },

    eventHandler: {
      events: handlerEvents(selectors),
      async handle(event: BerthEvent) {
        if (!wanted(event.type)) return;
        try {
          await publisher.publish(channels.events, JSON.stringify(event));
          published++;
          if (droppingSince !== undefined) ctx.log.info('publishing events again', { redis: where, dropped: dropped - droppingSince });
          droppingSince = undefined;
        } catch (err) {
          // Redis is away: the event is dropped (pub/sub would not keep it either), counted, warned about once.
          if (droppingSince === undefined) {
            droppingSince = dropped;
            ctx.log.warn('events not published: dropping them until Redis is back', { redis: where, event: event.type, seq: event.seq, error: redact((err as Error).message) });
          }
          dropped++;
        }
      },
    },
  };
};
