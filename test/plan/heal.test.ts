import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fingerprint, plan } from '../../src/plan/plan.js';
import { formatPlan } from '../../src/plan/format.js';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import type { DesiredState } from '../../src/render/types.js';
import type { LiveState } from '../../src/runtime/types.js';
import { liveOf } from '../support/fakes.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

// The planner's part in healing: replicas failing their health check, a hand-edited proxy file,
// and apps held by the flapping guard.

function desired(apps: Record<string, string>): DesiredState {
  const files: Record<string, string> = { 'berth.yaml': REPO_YAML };
  for (const [name, extra] of Object.entries(apps)) files[`apps/${name}.yaml`] = appYaml(name, extra);
  const r = renderEnvironment(memoryRevision(files), 'production', { secrets: envSecretSource({}) });
  if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
  return r.state;
}

/** Live state matching `state`: every replica running and in its upstream. */
function synced(state: DesiredState): LiveState {
  const containers = state.apps.flatMap((a) => Array.from({ length: a.spec.replicas }, (_, i) => liveOf(a, i)));
  const routes = state.apps
    .filter((a) => a.spec.route)
    .map((a) => ({ app: a.name, host: a.spec.route!.host, path: a.spec.route!.path, stripPrefix: false, proxyOptions: {}, servers: containers.filter((c) => c.app === a.name).map((c) => ({ address: `127.0.0.1:${c.ports[0]!.hostPort}`, containerId: c.id })) }));
  return { env: 'production', containers, proxy: { env: 'production', routes } };
}

const kinds = (p: ReturnType<typeof plan>) => p.apps.flatMap((a) => a.actions.map((x) => `${x.kind}:${a.app}`));
const names = (refs: { name: string }[]) => refs.map((r) => r.name);

describe('plan: healing', () => {
  const base = { api: '  replicas: 2\n  route: { host: api.test }\n', web: '  replicas: 3\n  dependsOn: [api]\n  route: { host: web.test }\n  strategy: { type: blue-green }\n' };

  it('a replica failing its health check moves from keep to replace, with a heal action saying why', () => {
    const d = desired(base);
    const live = synced(d);
    const sick = live.containers.find((c) => c.app === 'web' && c.replica === 1)!;
    const p = plan(d, live, { unhealthy: new Map([[sick.id, 'failed its health check 3 times in a row: GET /health → 500']]) });

    assert.deepEqual(kinds(p), ['heal:web']);
    const web = p.apps.find((a) => a.app === 'web')!;
    assert.deepEqual(web.actions[0], { kind: 'heal', app: 'web', reason: `replica ${sick.name} failed its health check 3 times in a row: GET /health → 500`, diff: [], count: 1, strategy: 'blue-green', cause: 'unhealthy' });
    assert.equal(web.op, 'converge');
    assert.deepEqual(names(web.replicas.keep), ['env-web-0', 'env-web-2']);
    assert.deepEqual(names(web.replicas.replace), [sick.name]);
    assert.deepEqual([web.replicas.verify, web.replicas.scaleDown, web.replicas.removeStopped], [[], [], []]);
    assert.equal(p.empty, false);
    assert.match(formatPlan(p), /♻ web +heal 1 +replica env-web-1 failed its health check 3 times in a row: GET \/health → 500/);
  });

  it('unknown or other-version containers in the unhealthy set change nothing extra', () => {
    const before = desired(base);
    const after = desired({ ...base, api: base.api + '  args: ["-v"]\n' });
    const live = synced(before);
    const old = live.containers.find((c) => c.app === 'api')!;
    const p = plan(after, live, { unhealthy: new Map([[old.id, 'failed'], ['no-such-container', 'failed']]) });
    assert.deepEqual(kinds(p), ['replace:api']);
    assert.equal(p.apps[0]!.replicas.replace.length, 2);
  });

  it('a hand-edited proxy file makes the plan non-empty with a rewrite, shown and fingerprinted', () => {
    const d = desired(base);
    const live = synced(d);
    const clean = plan(d, live);
    const edited = plan(d, { ...live, proxy: { ...live.proxy, drift: 'nginx file edited: line 4 is "server 10.0.0.9:80;", berth wrote "server 127.0.0.1:30000;"' } });

    assert.equal(clean.empty, true);
    assert.equal(clean.proxy.rewrite, undefined);
    assert.equal(edited.empty, false);
    assert.deepEqual(kinds(edited), []);
    assert.match(edited.proxy.rewrite ?? '', /^nginx file edited: line 4/);
    assert.deepEqual(edited.proxy.routes, live.proxy.routes, 'apply rewrites the file from the routes berth wrote');
    assert.match(formatPlan(edited), /⇄ \(proxy\) +rewrite +nginx file edited: line 4/);
    assert.match(formatPlan(edited), /1 proxy rewrite$/);
    assert.notEqual(fingerprint({ ...live, proxy: { ...live.proxy, drift: 'x' } }).proxy, fingerprint(live).proxy);
  });

  it('an app held by the flapping guard holds no dependents; one that rolled back does', () => {
    const d = desired(base);
    const live = synced(d);
    live.containers = live.containers.filter((c) => !(c.replica === 1));
    const api = d.apps.find((a) => a.name === 'api')!;
    const limited = plan(d, live, { held: new Map([['api', { specHash: api.specHash, message: 'healed 5 times in 10 min', reason: 'HealLimitReached' as const }]]) });
    assert.deepEqual(limited.apps.map((a) => [a.app, a.held?.reason]), [['api', 'HealLimitReached'], ['web', undefined]]);
    const rolledBack = plan(d, live, { held: new Map([['api', { specHash: api.specHash, message: 'rolled back' }]]) });
    assert.deepEqual(rolledBack.apps.map((a) => [a.app, a.held?.reason]), [['api', 'RolledBack'], ['web', 'DependencyFailed']]);
  });
});
