import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { serve } from '../../src/api/server.js';
import { EventLog, eventStream } from '../../src/api/sse.js';
import { EventBus } from '../../src/events/bus.js';
import type { EventType } from '../../src/events/types.js';
import { freePort } from '../support/nginx.js';

/** One SSE message block: its fields, or the comment it carries. */
interface Frame {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  comment?: string;
}

function parseFrame(block: string): Frame {
  const frame: Frame = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) frame.comment = line.slice(1).trim();
    const m = /^(id|event|data|retry): (.*)$/.exec(line);
    if (m) frame[m[1] as 'id' | 'event' | 'data' | 'retry'] = m[2]!;
  }
  return frame;
}

/** A streaming client: collects frames as they arrive and waits for them. */
interface Client {
  status: number;
  headers: http.IncomingHttpHeaders;
  raw: () => string;
  frames: Frame[];
  /** The first `n` frames that match, once they have arrived. */
  waitFor: (n: number, match?: (f: Frame) => boolean) => Promise<Frame[]>;
  ended: Promise<void>;
  close: () => void;
}

function connect(port: number, path: string, headers: Record<string, string> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    // Fails rather than hangs when a server buffers the stream and never sends its headers.
    const noHeaders = setTimeout(() => (req.destroy(), reject(new Error(`no response headers for ${path}`))), 3000);
    const req = http.get({ host: '127.0.0.1', port, path, headers }, (res) => {
      clearTimeout(noHeaders);
      let raw = '';
      let pending = '';
      const frames: Frame[] = [];
      const waiters = new Set<() => void>();
      const ended = within(new Promise<void>((r) => res.on('close', r)), 'the response to end');
      res.setEncoding('utf8').on('data', (chunk: string) => {
        raw += chunk;
        pending += chunk;
        for (let i = pending.indexOf('\n\n'); i >= 0; i = pending.indexOf('\n\n')) {
          frames.push(parseFrame(pending.slice(0, i)));
          pending = pending.slice(i + 2);
        }
        for (const w of waiters) w();
      });
      const waitFor = (n: number, match: (f: Frame) => boolean = () => true): Promise<Frame[]> =>
        new Promise((ok, fail) => {
          const timer = setTimeout(() => fail(new Error(`waited for ${n} frames, got ${JSON.stringify(frames)}`)), 3000);
          const check = (): void => {
            const got = frames.filter(match);
            if (got.length < n) return;
            clearTimeout(timer);
            waiters.delete(check);
            ok(got.slice(0, n));
          };
          waiters.add(check);
          check();
        });
      resolve({ status: res.statusCode ?? 0, headers: res.headers, raw: () => raw, frames, waitFor, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

const isEvent = (f: Frame): boolean => f.id !== undefined;

/** `promise`, or a failure after 3 s: a leak shows up as a failing test, not a hung run. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 3000);
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 3000; !condition(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A real bus and EventLog behind a real serve(), with the events route as createApi wires it. */
async function start(options: { size?: number; maxStreams?: number; heartbeatMs?: number } = {}) {
  const bus = new EventBus();
  const log = new EventLog(bus, options);
  const signals: AbortSignal[] = [];
  const cancelled: unknown[] = [];
  const port = await freePort();
  const server = await serve(async (req, body) => {
    const url = new URL(req.url);
    if (url.pathname === '/api/v1/events') {
      signals.push(req.signal);
      const types = url.searchParams.get('types');
      const lastEventId = req.headers.get('last-event-id') ?? url.searchParams.get('lastEventId');
      return eventStream(log, { lastEventId, ...(types && { types: types.split(',') }), ...(options.heartbeatMs && { heartbeatMs: options.heartbeatMs }), signal: req.signal });
    }
    if (url.pathname === '/api/v1/echo') return Response.json({ method: req.method, body: body.toString('utf8') });
    if (url.pathname === '/api/v1/deaf') return new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('tick\n')), cancel: (reason) => void cancelled.push(reason ?? 'cancelled') }));
    if (url.pathname === '/api/v1/broken') return new Response(new ReadableStream({ pull: (c) => (c.enqueue(new TextEncoder().encode('partial')), c.error(new Error('disk gone'))) }));
    return Response.json({ error: 'no route' }, { status: 404 });
  }, `127.0.0.1:${port}`);
  const stop = (): void => {
    log.close();
    server.closeAllConnections();
    server.close();
  };
  const progress = (app: string) => bus.emit('app.progress', { env: 'prod', app, phase: 'pull', message: `pulling ${app}` });
  return { bus, log, port, server, signals, cancelled, stop, progress };
}

describe('GET /api/v1/events (Server-Sent Events through serve())', () => {
  const stops: (() => void)[] = [];
  after(() => stops.forEach((s) => s()));
  const setup = async (options: Parameters<typeof start>[0] = {}) => {
    const s = await start(options);
    stops.push(s.stop);
    return s;
  };

  it('streams events emitted after connecting, in order, as id/event/data frames', async () => {
    const { port, progress, bus } = await setup();
    const client = await connect(port, '/api/v1/events');
    assert.equal(client.status, 200);
    assert.equal(client.headers['content-type'], 'text/event-stream');
    assert.equal(client.headers['cache-control'], 'no-cache');
    assert.equal(client.headers['x-accel-buffering'], 'no');

    const emitted = [progress('web'), bus.emit('drift.healed', { env: 'prod', revision: 'abc', apps: ['web'], description: 'healed: web' }), progress('api')];
    const frames = await client.waitFor(3, isEvent);

    assert.ok(client.raw().startsWith('retry: 2000\n'), client.raw());
    assert.deepEqual(frames.map((f) => [f.id, f.event]), emitted.map((e) => [String(e.seq), e.type]));
    assert.deepEqual(frames.map((f) => JSON.parse(f.data!)), emitted);
    assert.match(client.raw(), new RegExp(`id: ${emitted[0]!.seq}\nevent: app.progress\ndata: \\{[^\n]*\\}\n\n`));
    client.close();
  });

  it('replays what a client missed after its Last-Event-ID (header or query), then goes live', async () => {
    const { port, progress, bus } = await setup();
    const before = [1, 2, 3, 4, 5].map((i) => progress(`app${i}`));
    await bus.flush();

    const byHeader = await connect(port, '/api/v1/events', { 'last-event-id': String(before[1]!.seq) });
    const byQuery = await connect(port, `/api/v1/events?lastEventId=${before[3]!.seq}`);
    const fresh = await connect(port, '/api/v1/events');
    const live = progress('live');

    assert.deepEqual((await byHeader.waitFor(4, isEvent)).map((f) => Number(f.id)), [...before.slice(2), live].map((e) => e.seq));
    assert.deepEqual((await byQuery.waitFor(2, isEvent)).map((f) => Number(f.id)), [before[4]!.seq, live.seq]);
    assert.deepEqual((await fresh.waitFor(1, isEvent)).map((f) => Number(f.id)), [live.seq], 'no Last-Event-ID: live events only');
    for (const c of [byHeader, byQuery, fresh]) c.close();
  });

  it('filters by type, with `app.` as a prefix', async () => {
    const { port, progress, bus } = await setup();
    const client = await connect(port, '/api/v1/events?types=reconcile.finished,app.');
    bus.emit('reconcile.started', { env: 'prod', revision: 'abc', trigger: 'manual', apps: 1, counts: {} });
    progress('web');
    bus.emit('drift.detected', { env: 'prod', revision: 'abc', apps: ['web'], selfHeal: false, description: 'web stopped' });
    bus.emit('app.result', { env: 'prod', revision: 'abc', app: 'web', result: 'Succeeded', actions: [] });
    bus.emit('reconcile.finished', { env: 'prod', revision: 'abc', trigger: 'manual', result: 'Succeeded', noop: false, startedAt: '', finishedAt: '', durationMs: 1, apps: [], reloads: 0 });
    progress('last');

    const frames = await client.waitFor(4, isEvent);
    assert.deepEqual(frames.map((f) => f.event), ['app.progress', 'app.result', 'reconcile.finished', 'app.progress'] satisfies EventType[]);
    client.close();
  });

  it('sends a heartbeat comment so proxies keep the connection open', async () => {
    const { port } = await setup({ heartbeatMs: 20 });
    const client = await connect(port, '/api/v1/events');
    await client.waitFor(2, (f) => f.comment === 'heartbeat');
    assert.match(client.raw(), /\n: heartbeat\n\n/);
    client.close();
  });

  it('unsubscribes and aborts the request signal when the client goes away', async () => {
    const { port, log, signals } = await setup();
    const client = await connect(port, '/api/v1/events');
    assert.equal(log.listeners, 1);
    client.close();
    await until(() => log.listeners === 0, 'the stream to unsubscribe');
    await until(() => signals[0]!.aborted, 'req.signal to abort');
  });

  it('cancels a streaming body that ignores req.signal when the client goes away', async () => {
    const { port, cancelled } = await setup();
    const client = await connect(port, '/api/v1/deaf');
    await until(() => client.raw() === 'tick\n', 'the first chunk');
    client.close();
    await until(() => cancelled.length === 1, 'serve() to cancel the body');
  });

  it('answers 503 beyond the stream cap, and frees a slot when a client leaves', async () => {
    const { port, log } = await setup({ maxStreams: 2 });
    const open = [await connect(port, '/api/v1/events'), await connect(port, '/api/v1/events')];
    const refused = await connect(port, '/api/v1/events');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['content-type'], 'application/json');
    await refused.ended;
    assert.match((JSON.parse(refused.raw()) as { error: string }).error, /too many open event streams \(2\)/);

    open[0]!.close();
    await until(() => log.listeners === 1, 'a slot to free');
    const next = await connect(port, '/api/v1/events');
    assert.equal(next.status, 200);
    for (const c of [...open, next]) c.close();
  });

  it('ends open streams when the log closes (shutdown)', async () => {
    const { port, log } = await setup();
    const client = await connect(port, '/api/v1/events');
    log.close();
    await client.ended;
    assert.equal(log.listeners, 0);
  });

  it('still serves ordinary JSON routes, with their request body', async () => {
    const { port } = await setup();
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/echo`, { method: 'POST', body: '{"force":true}' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(await res.json(), { method: 'POST', body: '{"force":true}' });
    assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
  });

  it('cuts the connection when a body fails midway, so it cannot pass for complete', async () => {
    const { port } = await setup();
    await assert.rejects(async () => (await fetch(`http://127.0.0.1:${port}/api/v1/broken`)).text());
  });
});

describe('EventLog and eventStream (in memory)', () => {
  const read = async (reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> => new TextDecoder().decode((await reader.read()).value);

  it('keeps only the last `size` events; an id from before a restart replays all it holds', async () => {
    const bus = new EventBus();
    const log = new EventLog(bus, { size: 3 });
    for (const app of ['a', 'b', 'c', 'd', 'e']) bus.emit('app.progress', { env: 'prod', app, phase: 'pull', message: '' });
    await bus.flush();
    assert.deepEqual(log.since(0).map((e) => e.seq), [3, 4, 5]);
    assert.deepEqual(log.since(4).map((e) => e.seq), [5]);
    assert.deepEqual(log.since(5), []);
    assert.deepEqual(log.since(900).map((e) => e.seq), [3, 4, 5]);
    assert.throws(() => new EventLog(bus, { size: 0 }), RangeError);
    log.close();
  });

  it('on abort, unsubscribes, clears its heartbeat timer and closes the stream', async (t) => {
    const setInterval = t.mock.method(globalThis, 'setInterval');
    const clearInterval = t.mock.method(globalThis, 'clearInterval');
    const log = new EventLog(new EventBus());
    const abort = new AbortController();
    const reader = eventStream(log, { signal: abort.signal }).body!.getReader();
    assert.equal(await read(reader), 'retry: 2000\n\n');
    assert.equal(log.listeners, 1);

    abort.abort();

    assert.equal(log.listeners, 0);
    assert.equal(setInterval.mock.callCount(), 1);
    assert.ok(clearInterval.mock.calls.some((c) => c.arguments[0] === setInterval.mock.calls[0]!.result));
    assert.equal((await reader.read()).done, true);
  });

  it('on cancel by the reader, unsubscribes too', async () => {
    const log = new EventLog(new EventBus());
    const reader = eventStream(log, {}).body!.getReader();
    assert.equal(log.listeners, 1);
    await reader.cancel();
    assert.equal(log.listeners, 0);
  });

  it('does not subscribe for a client that is already gone', () => {
    const log = new EventLog(new EventBus());
    eventStream(log, { signal: AbortSignal.abort() });
    assert.equal(log.listeners, 0);
  });

  it('cuts a client that stopped reading instead of queueing without bound', async () => {
    const bus = new EventBus();
    const log = new EventLog(bus);
    const reader = eventStream(log, {}).body!.getReader();
    for (let i = 0; i < 1100; i++) bus.emit('app.progress', { env: 'prod', app: 'web', phase: 'pull', message: '' });
    await bus.flush();
    assert.equal(log.listeners, 0);
    await assert.rejects(reader.read(), /too slow; reconnect with Last-Event-ID/);
  });
});
