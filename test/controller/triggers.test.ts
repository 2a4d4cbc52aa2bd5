import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it } from 'node:test';
import { MAX_BODY_BYTES, serve } from '../../src/api/server.js';
import type { Controller } from '../../src/controller/controller.js';
import { scheduleResync } from '../../src/controller/triggers.js';
import { freePort } from '../support/nginx.js';

describe('triggers and limits', () => {
  it('cron resync fires the controller and rejects a bad expression with a hint', async () => {
    const fired: string[] = [];
    const fake = { trigger: (t: string) => (fired.push(t), { coalesced: false }) } as unknown as Controller;
    assert.throws(() => scheduleResync(fake, 'every day'), /invalid cron expression "every day" \(5 or 6 fields/);
    const stop = scheduleResync(fake, '* * * * * *', 'UTC');
    await new Promise((r) => setTimeout(r, 2100));
    await stop();
    assert.ok(fired.length >= 1 && fired.every((f) => f === 'cron'), `fired ${fired.length}`);
  });

  it('the HTTP server answers 413 to a body over the cap without passing it on', async () => {
    let called = 0;
    const port = await freePort();
    const server = await serve(async () => (called++, new Response('ok')), `127.0.0.1:${port}`);
    try {
      const status = await new Promise<number>((resolve) => {
        // /api/v1/sync keeps the 1 MiB cap (webhooks take up to 25 MiB: test/api/limits.test.ts).
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/sync' }, (res) => resolve(res.statusCode ?? 0));
        req.on('error', () => resolve(-1));
        req.end(Buffer.alloc(MAX_BODY_BYTES + 10, 'a'));
      });
      assert.equal(status, 413);
      assert.equal(called, 0);
    } finally {
      server.close();
    }
  });
});
