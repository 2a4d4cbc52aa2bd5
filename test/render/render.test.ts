import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DocCache } from '../../src/render/doc-cache.js';
import { renderEnvironment, validateRepository } from '../../src/render/render.js';
import { envSecretSource, MASK, SecretValue } from '../../src/render/secrets.js';
import { readDirectoryRevision } from '../../src/source/directory.js';
import { appYaml, EXAMPLE_REPO, memoryRevision, REPO_YAML } from '../support/repo.js';

const secrets = envSecretSource({ BERTH_SECRET_DB_PASSWORD: 's3cret-value' });

describe('render: example repo', () => {
  it('validates every environment cleanly', async () => {
    const revision = await readDirectoryRevision(EXAMPLE_REPO);
    const result = validateRepository(revision, { secrets });
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.environments, ['production', 'staging']);
  });

  it('applies the production overlay (patch, then merge) and keeps other apps as written', async () => {
    const revision = await readDirectoryRevision(EXAMPLE_REPO);
    const result = renderEnvironment(revision, 'production', { secrets });
    assert.ok(result.ok);
    const api = result.state.apps.find((a) => a.name === 'api')!;
    assert.equal(api.spec.replicas, 3);
    assert.equal(api.spec.env.LOG_LEVEL, 'warn');
    assert.deepEqual(api.sources, ['apps/api.yaml', 'overlays/production/api.yaml']);
    const staging = renderEnvironment(revision, 'staging', { secrets });
    assert.ok(staging.ok);
    assert.equal(staging.state.apps.find((a) => a.name === 'api')!.spec.replicas, 1);
    assert.notEqual(staging.state.apps.find((a) => a.name === 'api')!.specHash, api.specHash);
    assert.equal(staging.state.apps.find((a) => a.name === 'docs')!.specHash, result.state.apps.find((a) => a.name === 'docs')!.specHash);
  });

  it('masks secrets in every serialisation but keeps the value for the runtime', async () => {
    const revision = await readDirectoryRevision(EXAMPLE_REPO);
    const result = renderEnvironment(revision, 'production', { secrets });
    assert.ok(result.ok);
    const json = JSON.stringify(result.state);
    assert.ok(!json.includes('s3cret-value'));
    const pw = result.state.apps.find((a) => a.name === 'api')!.spec.env.DB_PASSWORD;
    assert.ok(pw instanceof SecretValue);
    assert.equal(String(pw), MASK);
    assert.equal(pw.reveal(), 's3cret-value');
  });

  it('is deterministic: same input, byte-identical output, regardless of file order', async () => {
    const revision = await readDirectoryRevision(EXAMPLE_REPO);
    const a = renderEnvironment(revision, 'production', { secrets });
    const reversed = { ...revision, files: new Map([...revision.files].reverse()) };
    const b = renderEnvironment(reversed, 'production', { secrets });
    assert.ok(a.ok && b.ok);
    assert.equal(JSON.stringify(a.state), JSON.stringify(b.state));
  });

  it('changes the hash when a secret value rotates, without exposing it', async () => {
    const revision = await readDirectoryRevision(EXAMPLE_REPO);
    const a = renderEnvironment(revision, 'production', { secrets });
    const b = renderEnvironment(revision, 'production', { secrets: envSecretSource({ BERTH_SECRET_DB_PASSWORD: 'rotated' }) });
    assert.ok(a.ok && b.ok);
    assert.notEqual(a.state.apps[0]!.specHash, b.state.apps[0]!.specHash);
  });
});

describe('render: rules', () => {
  const cases: { name: string; files: Record<string, string>; env?: string; code: string; file: string; line: number; message: RegExp }[] = [
    {
      name: 'secret declared but without a value is an error when plan/apply need it',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  env:\n    DB: { secretRef: db-password }\n') },
      code: 'secret-missing', file: 'apps/api.yaml', line: 8, message: /secret "db-password" \(env DB\) has no value; set BERTH_SECRET_DB_PASSWORD or add "db-password" to a --secrets-file/,
    },
    {
      name: 'unknown environment suggests the closest name',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api') },
      env: 'prodution', code: 'unknown-environment', file: 'berth.yaml', line: 3, message: /did you mean "production"\?/,
    },
    {
      name: 'route.port must be a declared container port',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  route: { host: a.test, port: 9000 }\n') },
      code: 'invalid-reference', file: 'apps/api.yaml', line: 7, message: /route\.port 9000 is not one of the app's containerPorts \(8080\)/,
    },
    {
      name: 'health check port must be published',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  healthCheck: { http: { port: 9000 } }\n') },
      code: 'invalid-reference', file: 'apps/api.yaml', line: 7, message: /health check port 9000 is not published/,
    },
    {
      name: 'health check needs exactly one probe',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  healthCheck: { intervalSeconds: 1 }\n') },
      code: 'schema', file: 'apps/api.yaml', line: 7, message: /set exactly one of http, tcp, exec/,
    },
    {
      name: 'strategy type typo gets a suggestion',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  strategy: { type: rollin }\n') },
      code: 'schema', file: 'apps/api.yaml', line: 7, message: /"rollin" is not one of rolling, recreate, blue-green, canary; did you mean "rolling"\?/,
    },
    {
      name: 'env value of the wrong shape',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  env:\n    A: [1, 2]\n') },
      code: 'schema', file: 'apps/api.yaml', line: 8, message: /expected a string \(without a NUL character\), number, boolean or \{ secretRef: NAME \}/,
    },
    {
      name: 'an overlay must not rename its app',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api'), 'overlays/staging/api.yaml': 'apiVersion: berth/v1\nkind: Overlay\ntarget: api\nmerge: { metadata: { name: other } }\n' },
      env: 'staging', code: 'overlay-failed', file: 'overlays/staging/api.yaml', line: 1, message: /must not rename app "api"/,
    },
    {
      name: 'two documents in one file',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api') + '---\n' + appYaml('web') },
      code: 'yaml-syntax', file: 'apps/api.yaml', line: 7, message: /one document per file/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = renderEnvironment(memoryRevision(c.files), c.env ?? 'production', { secrets: envSecretSource({}) });
      assert.ok(!result.ok, 'expected render to fail');
      const p = result.problems[0]!;
      assert.equal(p.code, c.code, p.message);
      assert.equal(p.file, c.file);
      assert.equal(p.line, c.line);
      assert.match(p.message, c.message);
    });
  }

  it('collects every problem instead of stopping at the first', () => {
    const files = {
      'berth.yaml': REPO_YAML,
      'apps/a.yaml': appYaml('a', '  replcas: 2\n'),
      'apps/b.yaml': appYaml('b', '  dependsOn: [zzz]\n'),
      'apps/c.yaml': appYaml('c', '  resources: { cpu: lots }\n'),
    };
    const result = renderEnvironment(memoryRevision(files), 'production', { secrets: envSecretSource({}) });
    assert.ok(!result.ok);
    assert.deepEqual(result.problems.map((p) => p.file), ['apps/a.yaml', 'apps/b.yaml', 'apps/c.yaml']);
  });

  it('an app with errors of its own does not cascade into "unknown app" errors elsewhere', () => {
    const files = {
      'berth.yaml': REPO_YAML,
      'apps/web.yaml': appYaml('web', '  replcas: 2\n'),
      'apps/docs.yaml': appYaml('docs', '  dependsOn: [web]\n'),
      'overlays/production/web.yaml': 'apiVersion: berth/v1\nkind: Overlay\ntarget: web\nmerge: { spec: { replicas: 2 } }\n',
    };
    const result = renderEnvironment(memoryRevision(files), 'production', { secrets: envSecretSource({}) });
    assert.ok(!result.ok);
    assert.deepEqual(result.problems.map((p) => `${p.file}:${p.code}`), ['apps/web.yaml:unknown-field']);
  });

  it('an app dropped for a missing secret value does not cascade either', () => {
    const files = { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  env: { PW: { secretRef: db-password } }\n'), 'apps/web.yaml': appYaml('web', '  dependsOn: [api]\n') };
    const result = renderEnvironment(memoryRevision(files), 'production', { secrets: envSecretSource({}) });
    assert.ok(!result.ok);
    assert.deepEqual(result.problems.map((p) => p.code), ['secret-missing']);
  });

  it('fills defaults so the desired state is explicit', () => {
    const result = renderEnvironment(memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/a.yaml': appYaml('a', '  healthCheck: { http: { port: 8080 } }\n') }), 'staging', { secrets: envSecretSource({}) });
    assert.ok(result.ok);
    const spec = result.state.apps[0]!.spec;
    assert.equal(spec.replicas, 1);
    assert.deepEqual(spec.strategy, { type: 'rolling', maxSurge: 1, maxUnavailable: 0 });
    assert.equal(spec.healthCheck?.http?.path, '/');
    assert.equal(spec.healthCheck?.successThreshold, 1);
    assert.equal(spec.restartPolicy, 'unless-stopped');
  });

  it('re-parses only changed files when a cache is shared', async () => {
    const cache = new DocCache();
    const files = { 'berth.yaml': REPO_YAML, 'apps/a.yaml': appYaml('a'), 'apps/b.yaml': appYaml('b') };
    renderEnvironment(memoryRevision(files), 'staging', { secrets: envSecretSource({}), cache });
    const missesBefore = cache.misses;
    const result = renderEnvironment(memoryRevision({ ...files, 'apps/b.yaml': appYaml('b', '  replicas: 2\n') }), 'staging', { secrets: envSecretSource({}), cache });
    assert.ok(result.ok);
    assert.equal(cache.misses - missesBefore, 1);
  });
});
