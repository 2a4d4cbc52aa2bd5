import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import type http from 'node:http';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS, requestTarget, serve } from '../../src/api/server.js';
import { verifyWebhook } from '../../src/api/webhooks.js';

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

  it('a signed webhook whose body is JSON but not an object is 400', () => {
    for (const text of ['null', '[]', '"x"', '3']) {
      const body = Buffer.from(text);
      const sig = createHmac('sha256', 's').update(body).digest('hex');
      const v = verifyWebhook('github', new Headers({ 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${sig}` }), body, 's');
      assert.deepEqual(v, { ok: false, status: 400, message: 'push payload is not a JSON object' });
    }
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
