import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { discoverPlugins, folderIntegrity, type BuiltinPlugin, type DiscoveryProblem } from '../../src/plugins/catalog.js';
import type { PluginContext, PluginDefinition } from '../../src/plugins/types.js';
import { ROOT } from '../support/repo.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/plugin-dirs');
const AUDIT = path.join(FIXTURES, 'audit');
const SEVERAL = path.join(FIXTURES, 'several');
const MALFORMED = path.join(FIXTURES, 'malformed');

/** What integrity pins look like (the Plugin schema's pattern). */
const SHA512 = /^sha512-[A-Za-z0-9+/]{86}==$/;

const builtin = (provides: BuiltinPlugin['manifest']['provides']): BuiltinPlugin => ({
  manifest: { name: 'ignored: the key names a built-in', version: '1.0.0', provides },
  create: () => ({ health: () => ({ ok: true, message: 'built in' }) }),
});
const BUILTINS: Record<string, BuiltinPlugin> = { webhook: builtin(['event-handler']), pushgateway: builtin(['metrics-exporter']) };

/** Calls a loaded factory with a context that carries only a name, and returns its health message. */
async function healthOf(def: PluginDefinition): Promise<string | undefined> {
  const create = await def.load();
  const instance = await create({ name: 'p1' } as PluginContext);
  return (await instance.health?.())?.message;
}

function write(file: string, content: string | object): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
}

/** A package folder with a berth manifest and a module that exports create. */
function pluginPackage(dir: string, packageName: string, berth: Record<string, unknown>): void {
  write(path.join(dir, 'package.json'), { name: packageName, version: '1.0.0', type: 'module', berth: { main: './index.mjs', ...berth } });
  write(path.join(dir, 'index.mjs'), `export function create() { return { health: () => ({ ok: true, message: ${JSON.stringify(packageName)} }) }; }\n`);
}

const problemAt = (problems: DiscoveryProblem[], p: string) => problems.filter((x) => x.path === p);

let tmp: string;
before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-plugins-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('plugin discovery: built-ins and --plugin-dir', () => {
  it('lists built-ins by their key, with origin builtin, nothing to pin, and their own create', async () => {
    const catalog = await discoverPlugins({ builtins: BUILTINS });
    assert.deepEqual(catalog.problems, []);
    assert.deepEqual(catalog.list().map((d) => [d.manifest.name, d.origin.kind]), [['pushgateway', 'builtin'], ['webhook', 'builtin']]);
    const webhook = catalog.get('webhook')!;
    assert.deepEqual(webhook.manifest.provides, ['event-handler']);
    assert.equal(await webhook.integrity(), undefined);
    assert.equal(await webhook.load(), BUILTINS.webhook!.create);
  });

  it('takes a --plugin-dir that is itself a plugin folder, manifest read from package.json', async () => {
    const catalog = await discoverPlugins({ builtins: {}, dirs: [AUDIT] });
    assert.deepEqual(catalog.problems, []);
    const audit = catalog.get('audit')!;
    assert.deepEqual(audit.origin, { kind: 'directory', path: AUDIT });
    assert.deepEqual(audit.manifest, {
      name: 'audit',
      version: '1.2.0',
      description: 'Writes every berth event to an audit log',
      provides: ['event-handler'],
      configSchema: { type: 'object', required: ['path'], additionalProperties: false, properties: { path: { type: 'string' }, rotate: { type: 'boolean', default: false } } },
      dependsOn: ['notify'],
    });
    assert.equal(audit.entry.href, pathToFileURL(path.join(AUDIT, 'index.mjs')).href);
  });

  it('takes a --plugin-dir of plugin folders, and ignores folders that are no plugins, silently', async () => {
    const catalog = await discoverPlugins({ builtins: {}, dirs: [SEVERAL] });
    assert.deepEqual(catalog.problems, [], 'plain-lib (no "berth" field) and docs (no package.json) are no problems');
    assert.deepEqual(catalog.list().map((d) => d.manifest.name), ['hollow', 'notify', 'pager']);
    assert.deepEqual(catalog.get('notify')!.manifest.configSchema, { type: 'object', properties: { channel: { type: 'string' } } }, 'an inline schema object is taken as it is');
    assert.deepEqual(catalog.get('pager')!.origin, { kind: 'directory', path: path.join(SEVERAL, 'pager') });
    assert.equal(catalog.get('plain-lib'), undefined);
  });

  it('takes several --plugin-dir folders, relative ones too', async () => {
    const catalog = await discoverPlugins({ builtins: BUILTINS, dirs: [path.relative(process.cwd(), AUDIT), SEVERAL] });
    assert.deepEqual(catalog.problems, []);
    assert.deepEqual(catalog.list().map((d) => `${d.manifest.name}:${d.origin.kind}`), ['audit:directory', 'hollow:directory', 'notify:directory', 'pager:directory', 'pushgateway:builtin', 'webhook:builtin']);
  });

  it('reports a --plugin-dir that is not a folder', async () => {
    const missing = path.join(tmp, 'no-such-dir');
    const catalog = await discoverPlugins({ builtins: {}, dirs: [missing, path.join(AUDIT, 'index.mjs')] });
    assert.deepEqual(catalog.problems.map((p) => p.path), [missing, path.join(AUDIT, 'index.mjs')]);
    for (const p of catalog.problems) assert.match(p.message, /--plugin-dir is not a folder/);
  });

  it('ignores a package.json that is JSON but no object (null), without failing discovery', async () => {
    const dir = path.join(tmp, 'null-manifest');
    write(path.join(dir, 'odd/package.json'), 'null');
    pluginPackage(path.join(dir, 'fine'), 'berth-plugin-fine', { plugin: 'fine', provides: ['scaler'] });
    const catalog = await discoverPlugins({ builtins: {}, dirs: [dir] });
    assert.deepEqual(catalog.problems, []);
    assert.deepEqual(catalog.list().map((d) => d.manifest.name), ['fine']);
  });
});

describe('plugin discovery: malformed manifests', () => {
  const cases: [folder: string, message: RegExp][] = [
    ['bad-name', /"plugin" must be the plugin's name \(lowercase letters, digits and dashes\), got "Bad_Name"/],
    ['no-version', /the package has no "version"/],
    ['no-main', /"main" must be the module to load, relative to the package, got undefined/],
    ['main-outside', /"main" \(\.\.\/audit\/index\.mjs\) is outside the package/],
    ['unknown-point', /"provides" has unknown extension points "teleporter"; known: event-handler, health-check/],
    ['schema-missing', /"configSchema" \.\/nope\.schema\.json: ENOENT/],
    ['schema-bad-json', /"configSchema" \.\/config\.schema\.json: .*JSON/],
    ['schema-invalid', /"configSchema" is not a valid JSON Schema: .*type/],
    ['not-json', /cannot read package\.json: .*JSON/],
  ];

  it('reports each malformed manifest once, at its package.json, and adds none of them', async () => {
    const catalog = await discoverPlugins({ builtins: {}, dirs: [MALFORMED] });
    assert.deepEqual(catalog.list(), []);
    assert.deepEqual(catalog.problems.map((p) => path.basename(path.dirname(p.path))).sort(), cases.map(([f]) => f).sort());
    for (const [folder, message] of cases) {
      const found = problemAt(catalog.problems, path.join(MALFORMED, folder, 'package.json'));
      assert.equal(found.length, 1, folder);
      assert.match(found[0]!.message, message, folder);
      if (folder !== 'not-json') assert.match(found[0]!.message, /^package\.json "berth": /, folder);
    }
  });

  it('a broken manifest hides none of the good ones beside it', async () => {
    const catalog = await discoverPlugins({ builtins: {}, dirs: [MALFORMED, SEVERAL, AUDIT] });
    assert.equal(catalog.problems.length, cases.length);
    assert.deepEqual(catalog.list().map((d) => d.manifest.name), ['audit', 'hollow', 'notify', 'pager']);
  });
});

describe('plugin discovery: npm packages', () => {
  let root: string;
  const LOCKED = `sha512-${'Q'.repeat(86)}==`;
  before(() => {
    root = path.join(tmp, 'app');
    const nm = path.join(root, 'node_modules');
    pluginPackage(path.join(nm, 'berth-plugin-queue'), 'berth-plugin-queue', { plugin: 'queue', provides: ['message-queue'] });
    pluginPackage(path.join(nm, '@acme/berth-metrics'), '@acme/berth-metrics', { plugin: 'acme-metrics', provides: ['metrics-exporter'], dependsOn: ['queue'] });
    pluginPackage(path.join(nm, 'berth-plugin-unlocked'), 'berth-plugin-unlocked', { plugin: 'unlocked', provides: ['scaler'] });
    pluginPackage(path.join(nm, 'berth-plugin-broken'), 'berth-plugin-broken', { plugin: 'broken', provides: [] });
    write(path.join(nm, 'left-pad/package.json'), { name: 'left-pad', version: '1.3.0', main: 'index.js' });
    write(path.join(nm, '@acme/util/package.json'), { name: '@acme/util', version: '1.0.0' });
    write(path.join(nm, '.bin/queue'), '#!/bin/sh\n');
    write(path.join(nm, '.package-lock.json'), {
      name: 'app',
      lockfileVersion: 3,
      packages: {
        'node_modules/@acme/berth-metrics': { version: '1.0.0', resolved: 'https://registry.npmjs.org/@acme/berth-metrics/-/berth-metrics-1.0.0.tgz', integrity: LOCKED },
        'node_modules/berth-plugin-unlocked': { version: '1.0.0', resolved: 'file:../unlocked' },
      },
    });
  });

  it('finds plain and @scoped packages that declare themselves, and only those', async () => {
    const catalog = await discoverPlugins({ builtins: {}, packageRoots: [root] });
    assert.deepEqual(catalog.list().map((d) => d.manifest.name), ['acme-metrics', 'queue', 'unlocked']);
    const metrics = catalog.get('acme-metrics')!;
    assert.deepEqual(metrics.origin, { kind: 'package', path: path.join(root, 'node_modules/@acme/berth-metrics'), packageName: '@acme/berth-metrics' });
    assert.deepEqual(metrics.manifest.dependsOn, ['queue']);
    assert.equal(await healthOf(metrics), '@acme/berth-metrics');
    assert.equal(await healthOf(catalog.get('queue')!), 'berth-plugin-queue');
  });

  it('reports a malformed package manifest at its package.json', async () => {
    const catalog = await discoverPlugins({ builtins: {}, packageRoots: [root] });
    assert.equal(catalog.problems.length, 1);
    assert.equal(catalog.problems[0]!.path, path.join(root, 'node_modules/berth-plugin-broken/package.json'));
    assert.match(catalog.problems[0]!.message, /"provides" must list extension points/);
  });

  it('finds packages under a relative package root too', async () => {
    const catalog = await discoverPlugins({ builtins: {}, packageRoots: [path.relative(process.cwd(), root)] });
    assert.deepEqual(catalog.list().map((d) => d.manifest.name), ['acme-metrics', 'queue', 'unlocked']);
    assert.equal(catalog.problems.length, 1, catalog.problems.map((p) => p.message).join('; '));
  });

  it('a root without node_modules has no packages and no problems', async () => {
    const catalog = await discoverPlugins({ builtins: {}, packageRoots: [path.join(tmp, 'empty-root')] });
    assert.deepEqual(catalog.list(), []);
    assert.deepEqual(catalog.problems, []);
  });

  it("takes a package's integrity from npm's record when it has one, else the folder's digest", async () => {
    const catalog = await discoverPlugins({ builtins: {}, packageRoots: [root] });
    assert.equal(await catalog.get('acme-metrics')!.integrity(), LOCKED);
    const queue = await catalog.get('queue')!.integrity();
    assert.equal(queue, await folderIntegrity(path.join(root, 'node_modules/berth-plugin-queue')), 'no lock entry');
    assert.equal(await catalog.get('unlocked')!.integrity(), await folderIntegrity(path.join(root, 'node_modules/berth-plugin-unlocked')), 'a lock entry without integrity');
  });

  it("without node_modules/.package-lock.json, a package's integrity is its folder's digest", async () => {
    const other = path.join(tmp, 'no-lock');
    pluginPackage(path.join(other, 'node_modules/berth-plugin-solo'), 'berth-plugin-solo', { plugin: 'solo', provides: ['scaler'] });
    const catalog = await discoverPlugins({ builtins: {}, packageRoots: [other] });
    const integrity = await catalog.get('solo')!.integrity();
    assert.match(integrity!, SHA512);
    assert.equal(integrity, await folderIntegrity(path.join(other, 'node_modules/berth-plugin-solo')));
  });
});

describe('plugin discovery: one name, one plugin', () => {
  it('a --plugin-dir plugin cannot replace a built-in: the built-in stays, the folder is a problem', async () => {
    const catalog = await discoverPlugins({ builtins: { audit: builtin(['scaler']) }, dirs: [AUDIT] });
    assert.equal(catalog.get('audit')!.origin.kind, 'builtin');
    assert.deepEqual(catalog.get('audit')!.manifest.provides, ['scaler']);
    assert.equal(catalog.problems.length, 1);
    assert.equal(catalog.problems[0]!.path, AUDIT);
    assert.match(catalog.problems[0]!.message, /plugin "audit" is already provided by built into berth/);
  });

  it('a package with the name of a --plugin-dir plugin is a problem, and the folder (found first) wins', async () => {
    const root = path.join(tmp, 'dup');
    pluginPackage(path.join(root, 'node_modules/@acme/audit'), '@acme/audit', { plugin: 'audit', provides: ['scaler'] });
    const catalog = await discoverPlugins({ builtins: {}, dirs: [AUDIT], packageRoots: [root] });
    assert.deepEqual(catalog.get('audit')!.origin, { kind: 'directory', path: AUDIT });
    assert.equal(catalog.problems.length, 1);
    assert.equal(catalog.problems[0]!.path, path.join(root, 'node_modules/@acme/audit'));
    assert.match(catalog.problems[0]!.message, new RegExp(`plugin "audit" is already provided by ${AUDIT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it('two --plugin-dir plugins of one name: the first given wins', async () => {
    const copy = path.join(tmp, 'audit-copy');
    pluginPackage(copy, 'berth-plugin-audit-copy', { plugin: 'audit', provides: ['scaler'] });
    const catalog = await discoverPlugins({ builtins: {}, dirs: [copy, AUDIT] });
    assert.deepEqual(catalog.get('audit')!.origin, { kind: 'directory', path: copy });
    assert.deepEqual(catalog.problems.map((p) => p.path), [AUDIT]);
  });
});

describe('plugin discovery: load()', () => {
  it('imports create: a named export, a default function, a default object with create', async () => {
    const catalog = await discoverPlugins({ builtins: {}, dirs: [AUDIT, SEVERAL] });
    assert.equal(await healthOf(catalog.get('audit')!), 'audit for p1');
    assert.equal(await healthOf(catalog.get('notify')!), 'notify for p1');
    assert.equal(await healthOf(catalog.get('pager')!), 'pager for p1');
  });

  it('rejects with a clear message when the module exports no create', async () => {
    const catalog = await discoverPlugins({ builtins: {}, dirs: [SEVERAL] });
    await assert.rejects(catalog.get('hollow')!.load(), (err: Error) => {
      assert.match(err.message, /exports no create\(context\) function/);
      assert.ok(err.message.includes(path.join(SEVERAL, 'hollow', 'index.mjs')), err.message);
      return true;
    });
  });

  it('runs no plugin code during discovery', async () => {
    const dir = path.join(tmp, 'side-effect');
    const marker = path.join(tmp, 'side-effect-ran');
    write(path.join(dir, 'package.json'), { name: 'side-effect', version: '1.0.0', type: 'module', berth: { plugin: 'side-effect', main: './index.mjs', provides: ['scaler'] } });
    write(path.join(dir, 'index.mjs'), `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\nexport function create() { return {}; }\n`);
    const catalog = await discoverPlugins({ builtins: {}, dirs: [dir] });
    assert.ok(catalog.get('side-effect'));
    await assert.rejects(import('node:fs/promises').then((fs) => fs.access(marker)));
  });
});

describe('folderIntegrity', () => {
  let dir: string;
  before(() => {
    dir = path.join(tmp, 'integrity');
    write(path.join(dir, 'package.json'), '{"name":"x"}');
    write(path.join(dir, 'index.mjs'), 'export function create() {}\n');
    write(path.join(dir, 'lib/util.mjs'), 'export const a = 1;\n');
    write(path.join(dir, 'node_modules/dep/index.js'), 'module.exports = 1;\n');
    write(path.join(dir, '.git/HEAD'), 'ref: refs/heads/main\n');
  });

  it('is a sha512 pin, stable across calls', async () => {
    const a = await folderIntegrity(dir);
    assert.match(a, SHA512);
    assert.equal(await folderIntegrity(dir), a);
  });

  it('changes when a file changes, is added or is renamed, and is back when the file is', async () => {
    const original = await folderIntegrity(dir);
    write(path.join(dir, 'lib/util.mjs'), 'export const a = 2;\n');
    const changed = await folderIntegrity(dir);
    assert.notEqual(changed, original);
    write(path.join(dir, 'lib/util.mjs'), 'export const a = 1;\n');
    assert.equal(await folderIntegrity(dir), original, 'the same files give the same digest');

    write(path.join(dir, 'lib/extra.mjs'), '');
    assert.notEqual(await folderIntegrity(dir), original, 'an added (even empty) file');
    rmSync(path.join(dir, 'lib/extra.mjs'));

    rmSync(path.join(dir, 'lib/util.mjs'));
    write(path.join(dir, 'lib/util2.mjs'), 'export const a = 1;\n');
    assert.notEqual(await folderIntegrity(dir), original, 'a renamed file');
    rmSync(path.join(dir, 'lib/util2.mjs'));
    write(path.join(dir, 'lib/util.mjs'), 'export const a = 1;\n');
    assert.equal(await folderIntegrity(dir), original);
  });

  it('ignores node_modules and .git', async () => {
    const original = await folderIntegrity(dir);
    write(path.join(dir, 'node_modules/dep/index.js'), 'module.exports = 2;\n');
    write(path.join(dir, 'node_modules/other/index.js'), '');
    write(path.join(dir, '.git/HEAD'), 'ref: refs/heads/other\n');
    assert.equal(await folderIntegrity(dir), original);
  });

  it("is what a --plugin-dir plugin's integrity() gives", async () => {
    const catalog = await discoverPlugins({ builtins: {}, dirs: [AUDIT] });
    assert.equal(await catalog.get('audit')!.integrity(), await folderIntegrity(AUDIT));
  });
});
