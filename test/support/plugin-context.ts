/**
 * Fakes for testing plugins on their own, without the plugin host:
 *
 *   const fake = fakePluginContext({ url: receiver.url });
 *   const plugin = await create(fake.ctx);
 *   await plugin.eventHandler!.handle(berthEvent('drift.detected', { … }));
 *   fake.logs          // [{ level: 'warn', msg: 'delivery failed: giving up on it', fields: { … } }]
 *   fake.controlCalls  // [{ control: 'sync', reason: '…' }]
 *   fake.abort();      // what the host does at stop, before calling stop()
 *
 * and a real HTTP receiver on 127.0.0.1 that records requests and answers as told (startReceiver).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BerthEvent, EventPayloads, EventType } from '../../src/events/types.js';
import type { ControllerControls, PluginContext, PluginLogger } from '../../src/plugins/types.js';
import type { EnvStatus } from '../../src/status/types.js';

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields?: Record<string, unknown>;
}

export interface ControlCall {
  control: 'sync' | 'rescale' | 'suspend' | 'resume';
  reason?: string;
}

export interface FakePluginContext {
  ctx: PluginContext;
  /** Every log line, debug included, in order. */
  logs: LogRecord[];
  /** Every log line as one JSON text: for "the secret is never logged" checks. */
  logText(): string;
  /** Log lines at `level` with message `msg`. */
  logged(level: LogRecord['level'], msg?: string): LogRecord[];
  controlCalls: ControlCall[];
  /** Aborts ctx.signal, as the host does when the plugin stops. */
  abort(): void;
}

export interface FakeContextOptions {
  name?: string;
  env?: string;
  now?: () => number;
  status?: EnvStatus;
  metricsText?: string;
  /** Makes a control throw (a controller that refuses). */
  failControl?: (control: ControlCall['control']) => Error | undefined;
}

/** A PluginContext with `config`, a recording logger, an AbortController and controls that record calls. */
export function fakePluginContext(config: Record<string, unknown>, options: FakeContextOptions = {}): FakePluginContext {
  const logs: LogRecord[] = [];
  const controlCalls: ControlCall[] = [];
  const abort = new AbortController();
  const record =
    (level: LogRecord['level']) =>
    (msg: string, fields?: Record<string, unknown>): void =>
      void logs.push({ level, msg, ...(fields && { fields }) });
  const log: PluginLogger = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
  const call = (control: ControlCall['control'], reason?: string): void => {
    const err = options.failControl?.(control);
    if (err) throw err;
    controlCalls.push({ control, ...(reason !== undefined && { reason }) });
  };
  const controls: ControllerControls = {
    sync: (reason) => call('sync', reason),
    rescale: (reason) => call('rescale', reason),
    suspend: (reason) => call('suspend', reason),
    resume: () => call('resume'),
    status: () => options.status,
  };
  return {
    ctx: {
      name: options.name ?? 'test-plugin',
      env: options.env ?? 'production',
      config,
      log,
      signal: abort.signal,
      now: options.now ?? Date.now,
      controls,
      metricsText: async () => options.metricsText ?? '',
    },
    logs,
    logText: () => JSON.stringify(logs),
    logged: (level, msg) => logs.filter((l) => l.level === level && (msg === undefined || l.msg === msg)),
    controlCalls,
    abort: () => abort.abort(),
  };
}

let seq = 0;

/** An event as the bus delivers it: type, a rising seq, time, payload. */
export function berthEvent<K extends EventType>(type: K, payload: EventPayloads[K], over: { seq?: number; time?: string } = {}): BerthEvent<K> {
  return { type, seq: over.seq ?? ++seq, time: over.time ?? new Date(0).toISOString(), ...payload } as unknown as BerthEvent<K>;
}

export interface ReceivedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** The exact bytes, as text. */
  body: string;
  /** performance.now() when the request arrived. */
  at: number;
}

/** How the receiver answers one request. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Waits this long before answering (timeouts). */
  delayMs?: number;
  /** Answers with the request's headers as the body (a server that echoes what it got). */
  echoHeaders?: boolean;
}

export interface Receiver {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Every request, in order of arrival. */
  readonly requests: ReceivedRequest[];
  /** Answers the next requests with these, in order; afterwards `fallback` (200 by default). */
  reply(...replies: Reply[]): void;
  /** What requests get once the scripted replies are used up. */
  fallback: Reply;
  /** Resolves once `n` requests have arrived (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  stop(): Promise<void>;
}

/** A real HTTP server on a free 127.0.0.1 port that records every request. */
export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const script: Reply[] = [];
  const waiters = new Set<() => void>();
  const delayed = new Set<NodeJS.Timeout>();
  const receiver: Receiver = {
    url: '',
    requests,
    fallback: { status: 200 },
    reply: (...replies) => void script.push(...replies),
    waitFor: (n, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (requests.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(requests.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${n} requests within ${timeoutMs} ms, got ${requests.length}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    stop: () =>
      new Promise((resolve) => {
        for (const timer of delayed) clearTimeout(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers, body: Buffer.concat(chunks).toString('utf8'), at: performance.now() });
      for (const w of [...waiters]) w();
      const r = script.shift() ?? receiver.fallback;
      const answer = (): void => {
        if (res.destroyed) return;
        res.writeHead(r.status, r.headers);
        res.end(r.echoHeaders ? JSON.stringify(headers) : (r.body ?? ''));
      };
      if (!r.delayMs) return answer();
      const timer = setTimeout(() => {
        delayed.delete(timer);
        answer();
      }, r.delayMs);
      delayed.add(timer);
      // A client that gives up (a timeout) closes the socket: no answer is due any more.
      res.on('close', () => {
        clearTimeout(timer);
        delayed.delete(timer);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (receiver as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** A 127.0.0.1 port nothing listens on (bound, then closed): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
