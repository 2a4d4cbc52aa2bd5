import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createApi } from '../../src/api/server.js';
import { verifyWebhook } from '../../src/api/webhooks.js';
import { Controller } from '../../src/controller/controller.js';
import { EventBus } from '../../src/events/bus.js';
import { HistoryStore } from '../../src/report/history.js';
import { Metrics } from '../../src/report/metrics.js';
import { envSecretSource } from '../../src/render/secrets.js';
import type { ConfigSource } from '../../src/source/open.js';
import { fakeClock } from '../support/fakes.js';

const body = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: 'a'.repeat(40) }));
const sig = (secret: string) => createHmac('sha256', secret).update(body).digest('hex');

describe('webhook verification', () => {
  const cases: [string, 'github' | 'gitea' | 'gitlab', Record<string, string>, boolean][] = [
    ['github signed', 'github', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${sig('s')}` }, true],
    ['github wrong key', 'github', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${sig('x')}` }, false],
    ['github missing', 'github', { 'x-github-event': 'push' }, false],
    ['github truncated', 'github', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${sig('s').slice(0, 10)}` }, false],
    ['gitea signed', 'gitea', { 'x-gitea-event': 'push', 'x-gitea-signature': sig('s') }, true],
    ['gitea wrong', 'gitea', { 'x-gitea-event': 'push', 'x-gitea-signature': sig('t') }, false],
    ['gitlab token', 'gitlab', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': 's' }, true],
    ['gitlab wrong token', 'gitlab', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': 'ss' }, false],
  ];
  for (const [name, forge, headers, ok] of cases) {
    it(name, () => {
      const v = verifyWebhook(forge, new Headers(headers), body, 's');
      assert.equal(v.ok, ok);
      if (v.ok && v.event === 'push') assert.equal(v.branch, 'main');
      if (!v.ok) assert.equal(v.status, 401);
    });
  }
  it('a signed body that is tampered with fails', () => {
    const v = verifyWebhook('github', new Headers({ 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${sig('s')}` }), Buffer.from(body.toString().replace('main', 'prod')), 's');
    assert.equal(v.ok, false);
  });
});

describe('API handler (in memory, as production calls it)', () => {
  const source: ConfigSource = { location: 'mem', kind: 'directory', fetch: async () => {}, read: async () => { throw new Error('unused'); } };
  const make = () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-api-'));
    const controller = new Controller({ env: 'prod', source, runtime: {} as never, proxy: {} as never, history: new HistoryStore(stateDir, 'prod'), metrics: new Metrics(), log: pino({ level: 'silent' }), clock: fakeClock(), secrets: envSecretSource({}), bus: new EventBus(), health: { update: () => {}, checkAll: async () => {}, healthOf: () => ({ status: 'Unknown' }) } });
    const triggers: string[] = [];
    controller.trigger = (t) => (triggers.push(t), { coalesced: false });
    const api = createApi(controller, { apiToken: 'tok', webhookSecret: 's', branch: () => 'main' });
    const call = (method: string, p: string, headers: Record<string, string> = {}, b = Buffer.alloc(0)) => api(new Request(`http://x${p}`, { method, headers }), b);
    return { controller, triggers, call };
  };

  it('serves health, readiness, status and metrics', async () => {
    const { controller, call } = make();
    assert.equal((await call('GET', '/healthz')).status, 200);
    assert.equal((await call('GET', '/readyz')).status, 503);
    controller.ready = true;
    assert.equal((await call('GET', '/readyz')).status, 200);
    assert.equal(((await (await call('GET', '/api/v1/status')).json()) as { env: string }).env, 'prod');
    assert.match(await (await call('GET', '/metrics')).text(), /process_cpu_user_seconds_total/);
    assert.equal((await call('GET', '/api/v1/apps/nope')).status, 404);
    assert.equal((await call('GET', '/nope')).status, 404);
  });

  it('sync needs the bearer token', async () => {
    const { triggers, call } = make();
    assert.equal((await call('POST', '/api/v1/sync')).status, 401);
    assert.equal((await call('POST', '/api/v1/sync', { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await call('POST', '/api/v1/sync', { authorization: 'Bearer tok' })).status, 202);
    assert.deepEqual(triggers, ['manual']);
  });

  it('webhooks: bad signature 401 and no trigger; other branch 202 ignored; own branch triggers', async () => {
    const { triggers, call } = make();
    assert.equal((await call('POST', '/api/v1/webhooks/github', { 'x-github-event': 'push', 'x-hub-signature-256': 'sha256=00' }, body)).status, 401);
    assert.deepEqual(triggers, []);
    const other = Buffer.from(JSON.stringify({ ref: 'refs/heads/dev' }));
    const otherSig = createHmac('sha256', 's').update(other).digest('hex');
    const ignored = await call('POST', '/api/v1/webhooks/github', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${otherSig}` }, other);
    assert.equal(ignored.status, 202);
    assert.match(await ignored.text(), /follows main/);
    assert.deepEqual(triggers, []);
    assert.equal((await call('POST', '/api/v1/webhooks/github', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${sig('s')}` }, body)).status, 202);
    assert.deepEqual(triggers, ['webhook']);
  });
});
