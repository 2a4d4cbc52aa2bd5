import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { driftFindings, proxySummary } from '../../src/plan/drift.js';
import { joinWithin } from '../../src/util/text.js';
import { plan } from '../../src/plan/plan.js';
import { liveOf } from '../support/fakes.js';
import { desiredOf, syncedLive } from '../support/desired.js';

const desired = (apps: Record<string, string>) => desiredOf(apps);
const synced = syncedLive;

describe('drift findings (what differs from the applied revision, in a few words)', () => {
  const apps = { web: '  replicas: 3\n', worker: '  replicas: 1\n' };

  it('a replica removed by hand: "web: 1 of 3 replicas missing"', () => {
    const d = desired(apps);
    const live = synced(d);
    live.containers = live.containers.filter((c) => !(c.app === 'web' && c.replica === 2));
    const f = driftFindings(plan(d, live));
    assert.equal(f.summary, 'web: 1 of 3 replicas missing');
    assert.deepEqual(f.apps.map((a) => a.app), ['web']);
    assert.match(f.apps[0]!.items[0]!.reason, /replicas 2 → 3/);
  });

  it('a stopped replica and a hand-edited nginx file: both, in one line', () => {
    const d = desired(apps);
    const live = synced(d);
    live.containers = live.containers.map((c) => (c.app === 'worker' ? { ...c, state: 'exited' as const, status: 'Exited (137)' } : c));
    const p = plan(d, live);
    p.proxy.rewrite = 'nginx file edited: line 3 is "x", berth wrote "y" (/etc/nginx/conf.d/berth-production.conf)';
    const f = driftFindings(p);
    assert.equal(f.summary, 'worker: 1 of 1 replica not running; nginx file edited');
    assert.equal(f.proxy, p.proxy.rewrite);
  });

  it('a container edited by hand (another spec) and an app no longer in the repo', () => {
    const d = desired(apps);
    const live = synced(d);
    const stray = liveOf(desired({ old: '  replicas: 1\n' }).apps[0]!, 0);
    live.containers = [...live.containers.map((c) => (c.app === 'web' && c.replica === 0 ? { ...c, specHash: 'other', spec: c.spec.replace('"replicas"', '"x"') } : c)), stray];
    const f = driftFindings(plan(d, live));
    assert.deepEqual(f.apps.map((a) => a.app), ['web', 'old']);
    assert.match(f.summary, /^web: 1 replica changed by hand .*; old: not in the repo \(1 container\)$/);
  });

  it('held apps and replicas failing their health check are not drift', () => {
    const d = desired(apps);
    const live = synced(d);
    const web0 = live.containers.find((c) => c.app === 'web' && c.replica === 0)!;
    const p = plan(d, live, { unhealthy: new Map([[web0.id, 'failed its health check 3 times in a row: GET /health → 500']]) });
    assert.equal(driftFindings(p).apps.length, 0);
    assert.equal(driftFindings(p, { includeUnhealthy: true }).summary, 'web: 1 replica failing health checks');
  });

  it('`only` narrows to the apps reported; the summary stays within 140 characters', () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 30; i++) many[`app-with-a-long-name-${String(i).padStart(2, '0')}`] = '  replicas: 2\n';
    const d = desired(many);
    const f = driftFindings(plan(d, { env: 'production', containers: [], proxy: { env: 'production', routes: [] } }));
    assert.ok(f.summary.length <= 140, f.summary);
    assert.match(f.summary, /\(\+\d+ more\)$/);
    const one = driftFindings(plan(d, { env: 'production', containers: [], proxy: { env: 'production', routes: [] } }), { only: new Set(['app-with-a-long-name-03']) });
    assert.equal(one.summary, 'app-with-a-long-name-03: 2 of 2 replicas missing');
  });

  it('proxySummary and joinWithin', () => {
    assert.equal(proxySummary('nginx file edited: line 1 is "a", berth wrote "b" (/x.conf)'), 'nginx file edited');
    assert.equal(proxySummary('nginx file /x.conf has no readable berth state (edited by hand)'), 'nginx file /x.conf has no readable berth state');
    assert.equal(joinWithin(['aaaa', 'bbbb', 'cccc'], 100), 'aaaa; bbbb; cccc');
    assert.equal(joinWithin(['aaaa', 'bbbb', 'cccc'], 15), 'aaaa; (+2 more)');
  });
});
