import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plan } from '../../src/plan/plan.js';
import { formatPlan } from '../../src/plan/format.js';
import { serializePlan } from '../../src/plan/saved.js';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { desiredOf, syncedLive } from '../support/desired.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

const desired = (apps: Record<string, string>) => desiredOf(apps);
const synced = syncedLive;

const kinds = (p: ReturnType<typeof plan>) => p.apps.flatMap((a) => a.actions.map((x) => `${x.kind}:${a.app}`));

describe('plan (pure)', () => {
  const base = { api: '  replicas: 2\n  route: { host: api.test }\n', web: '  replicas: 3\n  dependsOn: [api]\n  route: { host: web.test }\n  env: { PW: { secretRef: db-password } }\n' };

  it('an empty host gets create actions in dependsOn order', () => {
    const d = desired({ web: base.web, api: base.api });
    const p = plan(d, { env: 'production', containers: [], proxy: { env: 'production', routes: [] } });
    assert.deepEqual(kinds(p), ['create:api', 'route-update:api', 'create:web', 'route-update:web']);
    assert.equal(p.apps[0]!.actions[0]!.count, 2);
  });

  it('a synced environment plans nothing (Synced)', () => {
    const d = desired(base);
    const p = plan(d, synced(d));
    assert.equal(p.empty, true);
    assert.match(formatPlan(p), /No changes/);
  });

  it('a changed image is a replace with a field diff; nothing else changes', () => {
    const before = desired(base);
    const after = desired({ ...base, api: base.api + '  args: ["-v"]\n' });
    const p = plan(after, synced(before));
    assert.deepEqual(kinds(p), ['replace:api']);
    const action = p.apps[0]!.actions[0]!;
    assert.equal(action.strategy, 'rolling');
    assert.deepEqual(action.diff, ['spec.args: + ["-v"]']);
  });

  it('a rotated secret is a replace whose diff never shows the value', () => {
    const before = desired(base);
    const r = renderEnvironment(memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', base.api), 'apps/web.yaml': appYaml('web', base.web) }), 'production', { secrets: envSecretSource({ BERTH_SECRET_DB_PASSWORD: 'rotated' }) });
    assert.ok(r.ok);
    const p = plan(r.state, synced(before));
    assert.deepEqual(kinds(p), ['replace:web']);
    assert.deepEqual(p.apps.find((a) => a.app === 'web')!.actions[0]!.diff, ['spec.env.PW: (secret changed)']);
    assert.ok(!serializePlan(p).includes('rotated'));
  });

  it('replicas and routes change without recreating containers', () => {
    const before = desired(base);
    const after = desired({ ...base, api: '  replicas: 4\n  route: { host: api2.test }\n' });
    assert.deepEqual(kinds(plan(after, synced(before))), ['scale-up:api', 'route-update:api']);
    const fewer = desired({ ...base, api: '  replicas: 1\n  route: { host: api.test }\n' });
    assert.deepEqual(kinds(plan(fewer, synced(before))), ['scale-down:api']);
  });

  it('a killed replica is healed; a missing one is scaled up (drift)', () => {
    const d = desired(base);
    const live = synced(d);
    live.containers[0] = { ...live.containers[0]!, state: 'exited', status: 'Exited (137)' };
    assert.deepEqual(kinds(plan(d, live)), ['heal:api']);
    const missing = synced(d);
    missing.containers = missing.containers.filter((c) => !(c.app === 'web' && c.replica === 2));
    const p = plan(d, missing);
    assert.deepEqual(kinds(p), ['scale-up:web']);
    assert.match(p.apps[1]!.actions[0]!.reason, /replicas 2 → 3 \(replica missing\)/);
  });

  it('apps gone from the repo are pruned with their route, unless prune is off', () => {
    const d = desired(base);
    const live = synced(desired({ ...base, old: '  route: { host: old.test }\n' }));
    assert.deepEqual(kinds(plan(d, live)), ['remove:old', 'route-update:old']);
    assert.deepEqual(kinds(plan(d, live, { prune: false })), ['route-update:old']);
  });

  it('an upstream pointing at stale ports is re-synced', () => {
    const d = desired(base);
    const live = synced(d);
    live.proxy.routes[0]!.servers[0]!.address = '127.0.0.1:1';
    assert.deepEqual(kinds(plan(d, live)), ['route-update:api']);
  });

  it('is deterministic (200 apps planned twice give identical JSON; speed is measured in bench/plan)', () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 200; i++) many[`app-${i}`] = `  replicas: 2\n  route: { host: a${i}.test }\n`;
    const d = desired(many);
    const live = synced(d);
    const now = new Date(0);
    assert.equal(serializePlan(plan(d, live, { now })), serializePlan(plan(d, live, { now })));
  });
});
