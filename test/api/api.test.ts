import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createApi, type ApiOptions } from '../../src/api/server.js';
import { Controller } from '../../src/controller/controller.js';
import type { PreviewRequest } from '../../src/controller/preview.js';
import { EventBus } from '../../src/events/bus.js';
import type { RemoteForgeName } from '../../src/forge/types.js';
import { HistoryStore } from '../../src/report/history.js';
import { Metrics } from '../../src/report/metrics.js';
import { envSecretSource } from '../../src/render/secrets.js';
import type { ConfigSource } from '../../src/source/open.js';
import { fakeClock } from '../support/fakes.js';
import { delivery, payload } from '../forge/deliveries.js';

describe('API handler (in memory, as production calls it)', () => {
  const source: ConfigSource = { location: 'mem', kind: 'directory', fetch: async () => {}, read: async () => { throw new Error('unused'); } };
  const make = (over: Partial<ApiOptions> = {}) => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-api-'));
    const controller = new Controller({ env: 'prod', source, runtime: {} as never, proxy: {} as never, history: new HistoryStore(stateDir, 'prod'), metrics: new Metrics(), log: pino({ level: 'silent' }), clock: fakeClock(), secrets: envSecretSource({}), bus: new EventBus(), health: { update: () => {}, checkAll: async () => {}, healthOf: () => ({ status: 'Unknown' }) } });
    const triggers: string[] = [];
    controller.trigger = (t) => (triggers.push(t), { coalesced: false });
    const api = createApi(controller, { apiToken: 'tok', webhookSecret: 's3cret', branch: async () => 'main', ...over });
    const call = (method: string, p: string, headers: Record<string, string> | Headers = {}, b: Buffer = Buffer.alloc(0)) => api(new Request(`http://x${p}`, { method, headers }), b);
    /** Delivers fixture `name` to POST /api/v1/webhooks/<forge>; answers the status and the JSON body. */
    const hook = async (forge: RemoteForgeName, name: string, options: Parameters<typeof delivery>[2] = {}) => {
      const d = delivery(forge, name, options);
      const res = await call('POST', `/api/v1/webhooks/${forge}`, d.headers, d.body);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    return { controller, triggers, call, hook };
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
    const { triggers, call, hook } = make();
    const bad = delivery('github', 'push');
    bad.headers.set('x-hub-signature-256', 'sha256=00');
    assert.equal((await call('POST', '/api/v1/webhooks/github', bad.headers, bad.body)).status, 401);
    assert.deepEqual(triggers, []);
    const ignored = await hook('github', 'push-feature');
    assert.equal(ignored.status, 202);
    assert.deepEqual(ignored.body, { ignored: true, reason: 'push to feature/web-1.4.3; environment prod follows main' });
    assert.deepEqual(triggers, []);
    assert.deepEqual(await hook('github', 'push'), { status: 202, body: { accepted: true, coalesced: false, branch: 'main' } });
    assert.deepEqual(triggers, ['webhook']);
  });

  it('webhooks: form-encoded pushes trigger (GitHub signed over the body, Gitea over the JSON)', async () => {
    const { triggers, hook } = make();
    assert.equal((await hook('github', 'push', { form: true })).status, 202);
    assert.equal((await hook('gitea', 'push', { form: true })).status, 202);
    assert.equal((await hook('gitea', 'push')).status, 202);
    assert.equal((await hook('gitlab', 'push')).status, 202);
    assert.deepEqual(triggers, ['webhook', 'webhook', 'webhook', 'webhook']);
  });

  it('webhooks: a push that deletes a branch never triggers, not even the environment\'s own', async () => {
    const previews: PreviewRequest[] = [];
    const { triggers, hook } = make({ preview: (e) => (previews.push(e), { accepted: true, reason: 'planned' }) });
    const deleteMain = (forge: 'github' | 'gitlab') => Buffer.from(payload(forge, 'push-delete').toString().replace('refs/heads/feature/web-1.4.3', 'refs/heads/main'));
    for (const forge of ['github', 'gitlab'] as const) {
      assert.deepEqual(await hook(forge, 'push-delete'), { status: 202, body: { ignored: true, reason: 'push deleted branch feature/web-1.4.3' } });
      assert.deepEqual(await hook(forge, 'push-delete', { json: deleteMain(forge) }), { status: 202, body: { ignored: true, reason: 'push deleted branch main' } });
    }
    assert.match(String((await hook('gitea', 'delete')).body.reason), /event delete does not trigger/);
    assert.deepEqual([triggers, previews], [[], []]);
  });

  it('webhooks: a push to another branch is offered for a preview plan', async () => {
    const previews: PreviewRequest[] = [];
    let accept = true;
    const { triggers, hook } = make({ preview: (e) => (previews.push(e), accept ? { accepted: true, reason: 'plan of feature/web-1.4.3 for prod' } : { accepted: false, reason: 'no open pull request' }) });
    assert.deepEqual(await hook('github', 'push-feature'), { status: 202, body: { accepted: true, preview: true, reason: 'plan of feature/web-1.4.3 for prod' } });
    accept = false;
    assert.deepEqual(await hook('github', 'push-feature'), { status: 202, body: { ignored: true, reason: 'no open pull request' } });
    assert.deepEqual(previews, Array(2).fill({ kind: 'push', forge: 'github', branch: 'feature/web-1.4.3', sha: '4f2a9e1b7c3d5e6f8a0b1c2d3e4f5a6b7c8d9e0f' }));
    assert.deepEqual(triggers, []);
  });

  it('webhooks: when the branch cannot be read, a push triggers anyway and says so', async () => {
    for (const branch of [async () => undefined, async () => Promise.reject(new Error('repo unreadable'))]) {
      const { triggers, hook } = make({ branch });
      const res = await hook('gitlab', 'push');
      assert.equal(res.status, 202);
      assert.equal(res.body.accepted, true);
      assert.match(String(res.body.reason), /could not be read from berth\.yaml; reconciling anyway/);
      assert.deepEqual(triggers, ['webhook']);
    }
  });

  it('webhooks: pull requests get a preview plan unless closed; without a forge they are ignored', async () => {
    const previews: PreviewRequest[] = [];
    const { triggers, hook } = make({ preview: (e) => (previews.push(e), { accepted: true, reason: `plan for #${e.number}` }) });
    assert.deepEqual(await hook('github', 'pull_request-opened'), { status: 202, body: { accepted: true, preview: true, reason: 'plan for #42' } });
    assert.deepEqual(await hook('gitea', 'pull_request-synchronized'), { status: 202, body: { accepted: true, preview: true, reason: 'plan for #7' } });
    assert.deepEqual(await hook('gitlab', 'merge_request-update'), { status: 202, body: { accepted: true, preview: true, reason: 'plan for #9' } });
    assert.deepEqual(await hook('github', 'pull_request-closed'), { status: 202, body: { ignored: true, reason: 'pull request #42 closed: nothing to plan' } });
    assert.deepEqual(await hook('gitlab', 'merge_request-merge'), { status: 202, body: { ignored: true, reason: 'pull request #9 merge: nothing to plan' } });
    assert.deepEqual(previews, [
      { kind: 'pull-request', forge: 'github', branch: 'feature/web-1.4.3', sha: '7e3b2a1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f', number: 42, base: 'main' },
      { kind: 'pull-request', forge: 'gitea', branch: 'feature/web-1.4.3', sha: 'b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0', number: 7, base: 'main' },
      { kind: 'pull-request', forge: 'gitlab', branch: 'feature/web-1.4.3', sha: 'b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0', number: 9, base: 'main' },
    ]);
    assert.deepEqual(triggers, []);
    const without = make();
    assert.deepEqual(await without.hook('github', 'pull_request-opened'), { status: 202, body: { ignored: true, reason: 'pull request plans need a forge (see --forge)' } });
  });

  it('webhooks: ping answers pong; every answer is counted by forge and code', async () => {
    const { controller, hook, call } = make();
    assert.deepEqual(await hook('github', 'ping'), { status: 200, body: { pong: true } });
    await hook('gitlab', 'push', { secret: 'wrong' });
    const metrics = await controller.deps.metrics.registry.getSingleMetricAsString('berth_webhook_requests_total');
    assert.match(metrics, /berth_webhook_requests_total\{forge="github",code="200"\} 1/);
    assert.match(metrics, /berth_webhook_requests_total\{forge="gitlab",code="401"\} 1/);
    assert.equal((await call('POST', '/api/v1/webhooks/bitbucket', {}, Buffer.from('{}'))).status, 404);
  });
});
