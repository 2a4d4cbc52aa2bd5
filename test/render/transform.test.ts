import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { checkTransformed } from '../../src/render/transform.js';
import type { DesiredState } from '../../src/render/types.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

const SOURCE = 'plugin tweak (renderTransform)';

function state(): DesiredState {
  const r = renderEnvironment(
    memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  env: { DB: { secretRef: db-password } }\n  route: { host: web.example.test }\n'), 'apps/api.yaml': appYaml('api') }),
    'production',
    { secrets: envSecretSource({ BERTH_SECRET_DB_PASSWORD: 's3cret' }) },
  );
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  return r.state;
}

describe("a renderTransform's output is checked as the repo's apps are", () => {
  it('takes the apps unchanged (secrets and all), keeping their hashes and sources', () => {
    const s = state();
    const r = checkTransformed(s, structuredClone(s.apps).map((a, i) => ({ ...a, spec: { ...a.spec, env: s.apps[i]!.spec.env } })), SOURCE);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    assert.deepEqual(r.state.apps.map((a) => [a.name, a.specHash, a.sources]), s.apps.map((a) => [a.name, a.specHash, a.sources]));
  });

  it('hashes a changed spec again and names the plugin among its sources', () => {
    const s = state();
    const apps = s.apps.map((a) => (a.name === 'api' ? { ...a, spec: { ...a.spec, image: 'berth-demo/httpd:1.1' } } : a));
    const r = checkTransformed(s, apps, SOURCE);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    const api = r.state.apps.find((a) => a.name === 'api')!;
    assert.notEqual(api.specHash, s.apps.find((a) => a.name === 'api')!.specHash);
    assert.deepEqual(api.sources, ['apps/api.yaml', SOURCE]);
  });

  it('refuses what the App schema refuses, naming the app and the field', () => {
    const s = state();
    const r = checkTransformed(s, s.apps.map((a) => ({ ...a, spec: { ...a.spec, replicas: -1 } })), SOURCE);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.problems.map((p) => p.message).join('\n') : '', /app api: spec\.replicas/);
    assert.equal(!r.ok && r.problems[0]!.file, SOURCE);
  });

  it("refuses what the repo's policy forbids (a privileged container) and a route taken twice", () => {
    const s = state();
    const privileged = checkTransformed(s, s.apps.map((a) => (a.name === 'api' ? { ...a, spec: { ...a.spec, privileged: true } } : a)), SOURCE);
    assert.equal(privileged.ok, false);
    assert.match(!privileged.ok ? privileged.problems[0]!.message : '', /privileged/);
    const web = s.apps.find((a) => a.name === 'web')!;
    const twice = checkTransformed(s, s.apps.map((a) => (a.name === 'api' ? { ...a, spec: { ...a.spec, route: web.spec.route } } : a)), SOURCE);
    assert.equal(twice.ok, false);
  });

  it('refuses what is not a list of apps', () => {
    assert.equal(checkTransformed(state(), { apps: [] }, SOURCE).ok, false);
    assert.equal(checkTransformed(state(), [{ name: 'x' }], SOURCE).ok, false);
    const s = state();
    assert.equal(checkTransformed(s, [...s.apps, s.apps[0]], SOURCE).ok, false, 'an app returned twice');
  });
});
