import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_LIMITS, MAX_BODY_BYTES, WEBHOOK_MAX_BODY_BYTES, createApi, requestTarget, serve } from '../../src/api/server.js';
import { Controller } from '../../src/controller/controller.js';
import { EventBus } from '../../src/events/bus.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { HistoryStore } from '../../src/report/history.js';
import { Metrics } from '../../src/report/metrics.js';
import type { ConfigSource } from '../../src/source/open.js';
import { delivery, payload } from '../forge/deliveries.js';
import { fakeClock } from '../support/fakes.js';

// Hardening (#11 items 15 and 16): client errors get 4xx with a JSON message, never 500, and slow or
// numerous clients cannot hold the API open. Raw sockets, so nothing normalises the bad requests.

/** Sends raw bytes; resolves with everything the server wrote until it closed (or `waitMs`). */
function raw(port: number, text: string, waitMs = 3000): Promise<{ data: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    const done = (): void => resolve({ data, closedAfterMs: Date.now() - t0 });
    socket.on('close', done);
    socket.on('error', () => {});
    setTimeout(() => socket.destroy(), waitMs).unref();
  });
}

async function withServer(limits: Partial<typeof DEFAULT_LIMITS>, fn: (port: number) => Promise<void>): Promise<void> {
  const handler = async (req: Request): Promise<Response> => new Response(JSON.stringify({ path: new URL(req.url).pathname }), { headers: { 'content-type': 'application/json' } });
  const server: http.Server = await serve(handler, '127.0.0.1:0', { ...DEFAULT_LIMITS, ...limits });
  try {
    await fn((server.address() as net.AddressInfo).port);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

const status = (data: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]);

describe('API: client errors are 4xx', () => {
  it('reads absolute-form targets as their path, refuses other targets with 400', async () => {
    assert.equal(requestTarget('/api/v1/status?x=1'), '/api/v1/status?x=1');
    assert.equal(requestTarget('http://evil.test/api/v1/status'), '/api/v1/status');
    assert.equal(requestTarget('*'), undefined);
    assert.equal(requestTarget('//double'), undefined);
    await withServer({}, async (port) => {
      const abs = await raw(port, 'GET http://other.test/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.equal(status(abs.data), 200, abs.data);
      assert.match(abs.data, /"path":"\/healthz"/);
      const star = await raw(port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.equal(status(star.data), 400, star.data);
      assert.match(star.data, /"error":"request target/);
    });
  });

  it('never builds the URL from the Host header (a space or userinfo in it is not a 500)', async () => {
    await withServer({}, async (port) => {
      for (const hostHeader of ['a b', 'user:pw@host', '[::1', '']) {
        const r = await raw(port, `GET /healthz HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);
        assert.ok(status(r.data) < 500, `Host ${JSON.stringify(hostHeader)}: ${r.data.split('\r\n')[0]}`);
      }
    });
  });
});

describe('API: limits', () => {
  it('closes a request whose body never finishes (408 after the request timeout)', async () => {
    await withServer({ requestTimeoutMs: 600, headersTimeoutMs: 500 }, async (port) => {
      const r = await raw(port, 'POST /api/v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"fo', 10_000);
      assert.ok(r.closedAfterMs < 3000, `open for ${r.closedAfterMs} ms`);
      assert.equal(status(r.data), 408, r.data);
    });
  });

  it('closes a client that never finishes its headers', async () => {
    await withServer({ requestTimeoutMs: 600, headersTimeoutMs: 500 }, async (port) => {
      const r = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', 10_000);
      assert.ok(r.closedAfterMs < 3000, `open for ${r.closedAfterMs} ms`);
    });
  });

  it('refuses connections beyond the cap, and serves again once they close', async () => {
    await withServer({ maxConnections: 5 }, async (port) => {
      const held = await Promise.all(Array.from({ length: 5 }, () => new Promise<net.Socket>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
      })));
      await new Promise((r) => setTimeout(r, 100));
      const extra = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 2000);
      assert.equal(extra.data, '', 'the 6th connection was served');
      held.forEach((s) => s.destroy());
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(status((await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).data), 200);
    });
  });
});

/** The real API (createApi) behind serve(), as `berth run` serves it; triggers are recorded, not run. */
async function withApi(fn: (port: number, api: { triggers: string[]; metrics: Metrics }) => Promise<void>): Promise<void> {
  const source: ConfigSource = { location: 'mem', kind: 'directory', fetch: async () => {}, read: async () => { throw new Error('unused'); } };
  const metrics = new Metrics();
  const controller = new Controller({ env: 'prod', source, runtime: {} as never, proxy: {} as never, history: new HistoryStore(mkdtempSync(path.join(os.tmpdir(), 'berth-limits-')), 'prod'), metrics, log: pino({ level: 'silent' }), clock: fakeClock(), secrets: envSecretSource({}), bus: new EventBus(), health: { update: () => {}, checkAll: async () => {}, healthOf: () => ({ status: 'Unknown' }) } });
  const triggers: string[] = [];
  controller.trigger = (t) => (triggers.push(t), { coalesced: false });
  const server = await serve(createApi(controller, { webhookSecret: 's3cret', apiToken: 'tok', branch: async () => 'main' }), '127.0.0.1:0');
  try {
    await fn((server.address() as net.AddressInfo).port, { triggers, metrics });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** POSTs `body` over HTTP (chunked: no Content-Length, 64 KiB at a time); resolves with the status. */
function post(port: number, target: string, headers: Headers | Record<string, string>, body: Buffer, options: { chunked?: boolean } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const length = options.chunked ? {} : { 'content-length': String(body.length) };
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: target, headers: { ...Object.fromEntries(headers instanceof Headers ? headers : Object.entries(headers)), ...length } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    if (!options.chunked) return void req.end(body);
    for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536));
    req.end();
  });
}

describe('API: body caps (25 MiB for webhooks, 1 MiB elsewhere)', () => {
  it('a 2 MiB signed GitHub push is accepted', async () => {
    const push = JSON.parse(payload('github', 'push').toString()) as { commits: unknown[]; head_commit: unknown };
    while (JSON.stringify(push).length < 2 * 1024 * 1024) push.commits.push({ ...(push.head_commit as object), modified: Array.from({ length: 200 }, (_, i) => `apps/app-${i}.yaml`) });
    const d = delivery('github', 'push', { json: Buffer.from(JSON.stringify(push)) });
    assert.ok(d.body.length > 2 * 1024 * 1024);
    await withApi(async (port, { triggers }) => {
      assert.equal(await post(port, '/api/v1/webhooks/github', d.headers, d.body), 202);
      assert.deepEqual(triggers, ['webhook']);
    });
  });

  it('a body over the webhook cap gets 413, unread, and is counted with its forge', async () => {
    await withApi(async (port, { triggers, metrics }) => {
      // Declared too long: refused on the headers.
      const declared = await raw(port, `POST /api/v1/webhooks/gitea HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${WEBHOOK_MAX_BODY_BYTES + 1}\r\nConnection: close\r\n\r\n`);
      assert.equal(status(declared.data), 413, declared.data);
      // Streamed without a length: refused once it passes the cap; the client still reads the answer.
      const d = delivery('github', 'push');
      assert.equal(await post(port, '/api/v1/webhooks/github', d.headers, Buffer.concat([d.body, Buffer.alloc(WEBHOOK_MAX_BODY_BYTES, ' ')]), { chunked: true }), 413);
      assert.deepEqual(triggers, []);
      const counted = await metrics.registry.getSingleMetricAsString('berth_webhook_requests_total');
      assert.match(counted, /berth_webhook_requests_total\{forge="gitea",code="413"\} 1/);
      assert.match(counted, /berth_webhook_requests_total\{forge="github",code="413"\} 1/);
    });
  });

  it('a 2 MiB body on /api/v1/sync gets 413 (other routes keep the 1 MiB cap)', async () => {
    await withApi(async (port, { triggers }) => {
      for (const chunked of [false, true]) assert.equal(await post(port, '/api/v1/sync', { authorization: 'Bearer tok', 'content-type': 'application/json' }, Buffer.alloc(2 * 1024 * 1024, ' '), { chunked }), 413);
      assert.equal(await post(port, '/api/v1/sync', { authorization: 'Bearer tok' }, Buffer.alloc(MAX_BODY_BYTES, ' ')), 202);
      assert.deepEqual(triggers, ['manual']);
    });
  });
});
