import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PluginManifest } from '../../src/plugins/types.js';
import { startOrder, type PluginManifests } from '../../src/render/plugins.js';
import type { Problem } from '../../src/render/problems.js';
import { renderEnvironment, type RenderOptions } from '../../src/render/render.js';
import { envSecretSource, MASK, SecretValue } from '../../src/render/secrets.js';
import type { PluginConfig } from '../../src/render/types.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

const REPO = `${REPO_YAML}  hook-url: { description: where the webhook posts }
  hook-token: { description: the webhook's bearer token }
`;

const HOOK_URL = 'https://hooks.example.test/services/T0KEN-4711';
const HOOK_TOKEN = 'tok-very-secret-0815';
const SECRETS = envSecretSource({ BERTH_SECRET_HOOK_URL: HOOK_URL, BERTH_SECRET_HOOK_TOKEN: HOOK_TOKEN });

const MANIFESTS: Record<string, PluginManifest> = {
  webhook: {
    name: 'webhook',
    version: '1.0.0',
    provides: ['event-handler'],
    configSchema: {
      type: 'object',
      required: ['url'],
      additionalProperties: false,
      properties: {
        url: { type: 'string', format: 'uri' },
        retries: { type: 'integer', minimum: 0, default: 3 },
        events: { type: 'array', items: { type: 'string' }, default: ['*'] },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
        auth: {
          title: 'a bearer token or a user and password',
          oneOf: [
            { type: 'object', required: ['token'], additionalProperties: false, properties: { token: { type: 'string', pattern: '^tok-' } } },
            { type: 'object', required: ['user', 'password'], additionalProperties: false, properties: { user: { type: 'string' }, password: { type: 'string' } } },
          ],
        },
      },
    },
  },
  queue: { name: 'queue', version: '2.1.0', provides: ['message-queue'] },
  bridge: { name: 'bridge', version: '0.1.0', provides: ['message-queue', 'lifecycle-hook'], dependsOn: ['queue'] },
  metrics: { name: 'metrics', version: '1.0.0', provides: ['metrics-exporter'] },
  'loop-a': { name: 'loop-a', version: '1.0.0', provides: ['scaler'], dependsOn: ['loop-b'] },
  'loop-b': { name: 'loop-b', version: '1.0.0', provides: ['scaler'], dependsOn: ['loop-a'] },
};
const PLUGINS: PluginManifests = { get: (use) => MANIFESTS[use], names: () => Object.keys(MANIFESTS).sort() };

/**
 * A Plugin document; `spec` is the YAML under `spec:` after the `use:` line, indented by two. Lines:
 * 1 apiVersion, 2 kind, 3 metadata, 4 spec, 5 use, then `spec`'s lines from 6.
 */
function pluginYaml(name: string, use: string, spec = ''): string {
  return `apiVersion: berth/v1\nkind: Plugin\nmetadata: { name: ${name} }\nspec:\n  use: ${use}\n${spec}`;
}

function render(plugins: Record<string, string>, options: Partial<RenderOptions> = {}, env = 'production') {
  const files: Record<string, string> = { 'berth.yaml': REPO, 'apps/api.yaml': appYaml('api') };
  for (const [name, text] of Object.entries(plugins)) files[`plugins/${name}.yaml`] = text;
  return renderEnvironment(memoryRevision(files), env, { secrets: SECRETS, plugins: PLUGINS, ...options });
}

function rendered(plugins: Record<string, string>, options: Partial<RenderOptions> = {}, env = 'production'): PluginConfig[] {
  const result = render(plugins, options, env);
  assert.ok(result.ok, result.ok ? '' : result.problems.map((p) => `${p.file}:${p.line} ${p.code} ${p.message}`).join('\n'));
  return result.state.plugins;
}

function problems(plugins: Record<string, string>, options: Partial<RenderOptions> = {}, env = 'production'): Problem[] {
  const result = render(plugins, options, env);
  assert.ok(!result.ok, 'expected render to fail');
  return result.problems;
}

/** `file:line code` of each problem, for comparing lists. */
const where = (ps: Problem[]) => ps.map((p) => `${p.file}:${p.line} ${p.code}`);

describe('render plugins: use and type', () => {
  it('an unknown use is unknown-plugin at the use: line, with a suggestion and the known names', () => {
    const ps = problems({ hook: pluginYaml('hook', 'webhok') });
    assert.deepEqual(where(ps), ['plugins/hook.yaml:5 unknown-plugin']);
    assert.equal(ps[0]!.pointer, '/spec/use');
    assert.match(ps[0]!.message, /no plugin named "webhok"; did you mean "webhook"\?/);
    assert.match(ps[0]!.message, /known: bridge, loop-a, loop-b, metrics, queue, webhook/);
  });

  it('an unknown use without a near name has no suggestion', () => {
    const [p] = problems({ x: pluginYaml('x', 'completely-different') });
    assert.equal(p!.code, 'unknown-plugin');
    assert.doesNotMatch(p!.message, /did you mean/);
  });

  it('a type the plugin does not provide is a problem at the type: line', () => {
    const ps = problems({ q: pluginYaml('q', 'queue', '  type: scaler\n') });
    assert.deepEqual(where(ps), ['plugins/q.yaml:6 schema']);
    assert.equal(ps[0]!.pointer, '/spec/type');
    assert.match(ps[0]!.message, /plugin "queue" provides message-queue, not scaler/);
  });

  it('a type the plugin provides is kept, and the spec defaults are filled', () => {
    const [bridge, queue] = rendered({ q: pluginYaml('q', 'queue'), b: pluginYaml('b', 'bridge', '  type: lifecycle-hook\n  required: true\n') }).sort((a, b) => (a.name < b.name ? -1 : 1));
    assert.deepEqual(bridge, { name: 'b', type: 'lifecycle-hook', use: 'bridge', config: {}, file: 'plugins/b.yaml', priority: 100, required: true, timeoutSeconds: 5, isolation: 'inline', memoryLimitMb: 64, after: ['q'] });
    assert.equal(queue!.type, undefined);
  });
});

describe('render plugins: config against the plugin schema', () => {
  it('reports a missing required field, a wrong type and an unknown field at their lines under spec.config', () => {
    const ps = problems({ hook: pluginYaml('hook', 'webhook', '  config:\n    retries: many\n    colour: red\n') });
    assert.deepEqual(
      ps.map((p) => [p.line, p.code, p.pointer]),
      [
        [6, 'schema', '/spec/config'],
        [7, 'schema', '/spec/config/retries'],
        [8, 'unknown-field', '/spec/config/colour'],
      ],
    );
    assert.match(ps[0]!.message, /missing required field "url"/);
    assert.match(ps[1]!.message, /spec\.config\.retries: expected integer, got string/);
    assert.match(ps[2]!.message, /unknown field "colour" in spec\.config/);
    for (const p of ps) assert.equal(p.file, 'plugins/hook.yaml');
  });

  it('a plugin without config is checked too: its schema may require some', () => {
    const ps = problems({ hook: pluginYaml('hook', 'webhook') });
    assert.deepEqual(ps.map((p) => p.code), ['schema']);
    assert.match(ps[0]!.message, /missing required field "url"/);
  });

  it('a value of the wrong format is a problem at its line', () => {
    const ps = problems({ hook: pluginYaml('hook', 'webhook', '  config:\n    url: not a url\n') });
    assert.deepEqual(ps.map((p) => [p.line, p.pointer]), [[7, '/spec/config/url']]);
    assert.match(ps[0]!.message, /uri/);
  });

  it("fills the schema's defaults into the config", () => {
    const [hook] = rendered({ hook: pluginYaml('hook', 'webhook', '  config:\n    url: https://example.test/hook\n') });
    assert.deepEqual(hook!.config, { url: 'https://example.test/hook', retries: 3, events: ['*'] });
  });

  it('keeps given values over defaults', () => {
    const [hook] = rendered({ hook: pluginYaml('hook', 'webhook', '  config:\n    url: https://example.test/hook\n    retries: 0\n    events: [reconcile.*]\n') });
    assert.deepEqual(hook!.config, { url: 'https://example.test/hook', retries: 0, events: ['reconcile.*'] });
  });

  it('one broken Plugin document does not hide the problems of another', () => {
    const ps = problems({ a: pluginYaml('a', 'webhook', '  config: { url: 1 }\n'), b: pluginYaml('b', 'nope') });
    assert.deepEqual(where(ps), ['plugins/a.yaml:6 schema', 'plugins/b.yaml:5 unknown-plugin']);
  });
});

describe('render plugins: secretRef in config', () => {
  const urlFromSecret = (ref = 'hook-url') => pluginYaml('hook', 'webhook', `  config:\n    url: { secretRef: ${ref} }\n`);

  it('an undeclared secret is a problem at its secretRef, with a suggestion', () => {
    const ps = problems({ hook: urlFromSecret('hook-ur') });
    assert.deepEqual(where(ps), ['plugins/hook.yaml:7 secret-missing']);
    assert.equal(ps[0]!.pointer, '/spec/config/url/secretRef');
    assert.match(ps[0]!.message, /secretRef "hook-ur" is not declared in berth\.yaml secrets; did you mean "hook-url"\?/);
  });

  it('a declared secret without a value is a problem when render needs values', () => {
    const ps = problems({ hook: urlFromSecret() }, { secrets: envSecretSource({}) });
    assert.deepEqual(where(ps), ['plugins/hook.yaml:7 secret-missing']);
    assert.match(ps[0]!.message, /secret "hook-url" has no value; set BERTH_SECRET_HOOK_URL/);
  });

  it("a declared secret without a value is allowed for previews, even in a field whose schema the placeholder would not fit", () => {
    const result = render({ hook: urlFromSecret() }, { secrets: envSecretSource({}), unresolvedSecrets: 'allow' });
    assert.ok(result.ok, result.ok ? '' : result.problems.map((p) => p.message).join('\n'));
    const url = result.state.plugins[0]!.config.url;
    assert.ok(url instanceof SecretValue);
    assert.equal(url.ref, 'hook-url');
    assert.equal(url.resolved, false);
    assert.deepEqual(result.state.unresolvedSecrets, ['hook-url']);
  });

  it('a resolved secret is a SecretValue in the config, masked in JSON, and the schema saw its value', () => {
    const [hook] = rendered({ hook: pluginYaml('hook', 'webhook', `  config:\n    url: { secretRef: hook-url }\n    headers:\n      Authorization: { secretRef: hook-token }\n`) });
    const { url, headers, retries } = hook!.config as { url: unknown; headers: Record<string, unknown>; retries: number };
    assert.ok(url instanceof SecretValue);
    assert.equal(url.reveal(), HOOK_URL);
    assert.ok(headers.Authorization instanceof SecretValue);
    assert.equal(headers.Authorization.reveal(), HOOK_TOKEN);
    assert.equal(retries, 3, 'defaults are filled beside secrets');
    const json = JSON.stringify(hook);
    assert.ok(!json.includes(HOOK_URL) && !json.includes(HOOK_TOKEN), json);
    assert.ok(json.includes(`"url":"${MASK}"`), json);
  });

  it("a secret whose value does not fit the field's schema is a problem that never shows the value", () => {
    const bad = 'not a url: hunter2';
    const ps = problems({ hook: urlFromSecret() }, { secrets: envSecretSource({ BERTH_SECRET_HOOK_URL: bad }) });
    assert.deepEqual(where(ps), ['plugins/hook.yaml:7 schema']);
    assert.match(ps[0]!.message, /url: the secret "hook-url" does not fit this field's schema/);
    assert.ok(!JSON.stringify(ps).includes('hunter2'), ps[0]!.message);
  });

  it('a secret inside an object that fits none of its forms does not show in the message either', () => {
    const ps = problems(
      { hook: pluginYaml('hook', 'webhook', '  config:\n    url: https://example.test\n    auth: { token: { secretRef: hook-token } }\n') },
      { secrets: envSecretSource({ BERTH_SECRET_HOOK_TOKEN: 'bearer-hunter2' }) },
    );
    assert.deepEqual(ps.map((p) => [p.line, p.pointer]), [[8, '/spec/config/auth']]);
    assert.match(ps[0]!.message, /spec\.config\.auth: expected a bearer token or a user and password/);
    assert.ok(!JSON.stringify(ps).includes('hunter2'), ps[0]!.message);
  });

  it('the same object with a fitting secret passes', () => {
    const [hook] = rendered({ hook: pluginYaml('hook', 'webhook', '  config:\n    url: https://example.test\n    auth: { token: { secretRef: hook-token } }\n') });
    const auth = hook!.config.auth as { token: SecretValue };
    assert.equal(auth.token.reveal(), HOOK_TOKEN);
  });

  it('a secretRef in place of the whole config is a problem, not a crash', () => {
    for (const options of [{}, { plugins: undefined }]) {
      const ps = problems({ q: pluginYaml('q', 'queue', '  config: { secretRef: hook-token }\n') }, options);
      assert.deepEqual(where(ps), ['plugins/q.yaml:6 schema']);
      assert.equal(ps[0]!.pointer, '/spec/config');
      assert.ok(!JSON.stringify(ps).includes(HOOK_TOKEN));
    }
  });
});

describe('render plugins: which documents are enabled', () => {
  const productionOnly = pluginYaml('metrics', 'metrics', '  environments: [production]\n');

  it('a document listing environments is in those only', () => {
    assert.deepEqual(rendered({ metrics: productionOnly }, {}, 'production').map((p) => p.name), ['metrics']);
    assert.deepEqual(rendered({ metrics: productionOnly }, {}, 'staging'), []);
  });

  it('a document without environments is in every environment', () => {
    const doc = pluginYaml('metrics', 'metrics');
    assert.deepEqual(rendered({ metrics: doc }, {}, 'staging').map((p) => p.name), ['metrics']);
    assert.deepEqual(rendered({ metrics: doc }, {}, 'production').map((p) => p.name), ['metrics']);
  });

  it('a disabled document is in no environment, and its config is not checked', () => {
    assert.deepEqual(rendered({ hook: pluginYaml('hook', 'webhook', '  enabled: false\n  config: { retries: many }\n') }), []);
  });

  it("a document for another environment is not checked against this environment's plugins", () => {
    assert.deepEqual(rendered({ x: pluginYaml('x', 'not-installed', '  environments: [production]\n') }, {}, 'staging'), []);
  });
});

describe('render plugins: dependencies and start order', () => {
  it('a dependency no document enables is unknown-dependency at the use: line', () => {
    const ps = problems({ bridge: pluginYaml('bridge', 'bridge') });
    assert.deepEqual(where(ps), ['plugins/bridge.yaml:5 unknown-dependency']);
    assert.equal(ps[0]!.pointer, '/spec/use');
    assert.match(ps[0]!.message, /plugin "bridge" depends on plugin "queue", which no Plugin document enables for this environment/);
  });

  it('a dependency enabled only in another environment is missing in this one', () => {
    const files = { bridge: pluginYaml('bridge', 'bridge'), queue: pluginYaml('queue', 'queue', '  environments: [production]\n') };
    assert.deepEqual(rendered(files, {}, 'production').map((p) => p.name), ['queue', 'bridge']);
    assert.deepEqual(where(problems(files, {}, 'staging')), ['plugins/bridge.yaml:5 unknown-dependency']);
  });

  it('a cycle is dependency-cycle on each of its members, and nothing starts', () => {
    const ps = problems({ a: pluginYaml('a', 'loop-a'), b: pluginYaml('b', 'loop-b'), m: pluginYaml('m', 'metrics') });
    assert.deepEqual(where(ps), ['plugins/a.yaml:5 dependency-cycle', 'plugins/b.yaml:5 dependency-cycle']);
    for (const p of ps) assert.match(p.message, /plugin dependency cycle: a → b → a/);
  });

  it('starts dependencies first, then by priority, then by name', () => {
    const order = rendered({
      bridge: pluginYaml('bridge', 'bridge', '  priority: 1\n'),
      queue: pluginYaml('queue', 'queue', '  priority: 900\n'),
      zeta: pluginYaml('zeta', 'metrics', '  priority: 10\n'),
      beta: pluginYaml('beta', 'metrics'),
      alpha: pluginYaml('alpha', 'metrics'),
    });
    assert.deepEqual(order.map((p) => p.name), ['zeta', 'alpha', 'beta', 'queue', 'bridge']);
    assert.deepEqual(order.find((p) => p.name === 'bridge')!.after, ['queue']);
  });

  it('a plugin starts after every document that enables its dependency', () => {
    const order = rendered({ bridge: pluginYaml('bridge', 'bridge'), 'q-two': pluginYaml('q-two', 'queue'), 'q-one': pluginYaml('q-one', 'queue', '  priority: 500\n') });
    assert.deepEqual(order.map((p) => p.name), ['q-two', 'q-one', 'bridge']);
    assert.deepEqual(order.at(-1)!.after, ['q-one', 'q-two']);
  });
});

describe('render plugins: without discovery (ANY_PLUGIN)', () => {
  it('takes any use, and the config as it is', () => {
    const [p] = rendered({ x: pluginYaml('x', 'anything-at-all', '  type: scaler\n  config: { target: 70, nested: { deep: [1, 2] } }\n') }, { plugins: undefined });
    assert.equal(p!.use, 'anything-at-all');
    assert.equal(p!.type, 'scaler');
    assert.deepEqual(p!.config, { target: 70, nested: { deep: [1, 2] } });
  });

  it('still resolves secretRefs and still checks the Plugin schema', () => {
    const [p] = rendered({ x: pluginYaml('x', 'anything', '  config: { token: { secretRef: hook-token } }\n') }, { plugins: undefined });
    assert.equal((p!.config.token as SecretValue).reveal(), HOOK_TOKEN);
    const ps = problems({ x: pluginYaml('x', 'anything', '  prority: 3\n') }, { plugins: undefined });
    assert.deepEqual(where(ps), ['plugins/x.yaml:6 unknown-field']);
  });
});

describe('startOrder', () => {
  const config = (name: string, priority = 100, after: string[] = []): PluginConfig => ({ name, use: name, config: {}, file: `plugins/${name}.yaml`, priority, required: false, timeoutSeconds: 5, isolation: 'inline', memoryLimitMb: 64, after });
  const names = (r: ReturnType<typeof startOrder>) => ('sorted' in r ? r.sorted.map((c) => c.name) : { cycle: r.cycle });

  it('orders by priority, then name, when nothing depends on anything', () => {
    assert.deepEqual(names(startOrder([config('c'), config('b', 5), config('a'), config('d', 5)])), ['b', 'd', 'a', 'c']);
  });

  it('puts dependencies first, whatever their priority', () => {
    assert.deepEqual(names(startOrder([config('app', 1, ['db']), config('db', 999, ['net']), config('net', 500), config('other', 50)])), ['other', 'net', 'db', 'app']);
  });

  it('once a dependency is started, its dependents compete by priority again', () => {
    assert.deepEqual(names(startOrder([config('base', 100), config('late', 300, ['base']), config('early', 1, ['base']), config('mid', 200)])), ['base', 'early', 'mid', 'late']);
  });

  it('ignores dependencies on plugins not in the list', () => {
    assert.deepEqual(names(startOrder([config('a', 100, ['gone'])])), ['a']);
  });

  it('does not change its input order or the inputs', () => {
    const input = [config('b'), config('a', 100, ['b'])];
    startOrder(input);
    assert.deepEqual(input.map((c) => [c.name, c.after]), [['b', []], ['a', ['b']]]);
  });

  it('returns the cycle, only its members', () => {
    assert.deepEqual(names(startOrder([config('a', 100, ['b']), config('b', 100, ['c']), config('c', 100, ['b']), config('ok')])), { cycle: ['b', 'c'] });
    assert.deepEqual(names(startOrder([config('x', 100, ['y']), config('y', 100, ['x'])])), { cycle: ['x', 'y'] });
  });
});
