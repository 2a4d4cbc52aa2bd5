/**
 * Discovery: which plugins exist. Built-ins; folders given with --plugin-dir (a plugin folder, or a
 * folder of them); npm packages in node_modules that declare themselves in package.json:
 *
 *   { "name": "@acme/berth-audit", "version": "1.2.0", "type": "module",
 *     "berth": { "plugin": "audit", "main": "./index.js", "provides": ["event-handler"],
 *                "configSchema": "./config.schema.json", "dependsOn": [] } }
 *
 * Discovery reads manifests only: no plugin code runs until a Plugin document enables the plugin and
 * it starts. Problems (a bad manifest, two plugins with one name) are collected, never thrown, so one
 * broken package does not hide the others.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { compilePluginSchema } from '../render/schema.js';
import { EXTENSION_POINTS, type ExtensionPoint, type JsonSchema, type PluginDefinition, type PluginFactory, type PluginManifest } from './types.js';

export const PLUGIN_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A built-in plugin: its manifest and its code, in berth itself. */
export interface BuiltinPlugin {
  manifest: PluginManifest;
  create: PluginFactory;
  /** Its module (import.meta.url), for isolation: worker. */
  entry?: URL;
}

export interface DiscoveryProblem {
  /** The package.json or folder at fault. */
  path: string;
  message: string;
}

export interface PluginCatalog {
  get(name: string): PluginDefinition | undefined;
  list(): PluginDefinition[];
  problems: DiscoveryProblem[];
}

export interface DiscoveryOptions {
  builtins: Record<string, BuiltinPlugin>;
  /** --plugin-dir folders: each a plugin folder (with a package.json) or a folder of plugin folders. */
  dirs?: string[];
  /** Folders whose node_modules are searched for plugin packages (default: none). */
  packageRoots?: string[];
}

interface PackageJson {
  name?: unknown;
  version?: unknown;
  description?: unknown;
  berth?: { plugin?: unknown; main?: unknown; provides?: unknown; configSchema?: unknown; dependsOn?: unknown };
}

/** Reads a plugin manifest from a package folder; undefined when the folder is no berth plugin. */
async function readPackage(dir: string): Promise<{ manifest: PluginManifest; main: string; packageName: string } | { problem: string } | undefined> {
  const file = path.join(dir, 'package.json');
  let pkg: PackageJson | null;
  try {
    pkg = JSON.parse(await readFile(file, 'utf8')) as PackageJson | null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { problem: `cannot read package.json: ${(err as Error).message}` };
  }
  const b = pkg?.berth;
  if (!pkg || !b || typeof b !== 'object') return undefined;
  const fail = (message: string) => ({ problem: `package.json "berth": ${message}` });
  if (typeof b.plugin !== 'string' || !PLUGIN_NAME.test(b.plugin)) return fail(`"plugin" must be the plugin's name (lowercase letters, digits and dashes), got ${JSON.stringify(b.plugin)}`);
  if (typeof pkg.version !== 'string') return fail('the package has no "version"');
  if (typeof b.main !== 'string' || !b.main) return fail(`"main" must be the module to load, relative to the package, got ${JSON.stringify(b.main)}`);
  const main = path.resolve(dir, b.main);
  if (!main.startsWith(dir + path.sep)) return fail(`"main" (${b.main}) is outside the package`);
  if (!Array.isArray(b.provides) || !b.provides.length) return fail(`"provides" must list extension points (${EXTENSION_POINTS.join(', ')})`);
  const unknown = b.provides.filter((p) => !EXTENSION_POINTS.includes(p as ExtensionPoint));
  if (unknown.length) return fail(`"provides" has unknown extension points ${unknown.map((u) => JSON.stringify(u)).join(', ')}; known: ${EXTENSION_POINTS.join(', ')}`);
  if (b.dependsOn !== undefined && (!Array.isArray(b.dependsOn) || b.dependsOn.some((d) => typeof d !== 'string' || !PLUGIN_NAME.test(d)))) return fail('"dependsOn" must be a list of plugin names');
  let configSchema: JsonSchema | undefined;
  if (typeof b.configSchema === 'string') {
    const schemaFile = path.resolve(dir, b.configSchema);
    if (!schemaFile.startsWith(dir + path.sep)) return fail(`"configSchema" (${b.configSchema}) is outside the package`);
    try {
      configSchema = JSON.parse(await readFile(schemaFile, 'utf8')) as JsonSchema;
    } catch (err) {
      return fail(`"configSchema" ${b.configSchema}: ${(err as Error).message}`);
    }
  } else if (b.configSchema && typeof b.configSchema === 'object') configSchema = b.configSchema as JsonSchema;
  else if (b.configSchema !== undefined) return fail('"configSchema" must be a JSON Schema object or a path to one');
  if (configSchema) {
    try {
      compilePluginSchema(configSchema);
    } catch (err) {
      return fail(`"configSchema" is not a valid JSON Schema: ${(err as Error).message}`);
    }
  }
  const manifest: PluginManifest = {
    name: b.plugin,
    version: pkg.version,
    ...(typeof pkg.description === 'string' && { description: pkg.description }),
    provides: b.provides as ExtensionPoint[],
    ...(configSchema && { configSchema }),
    ...(Array.isArray(b.dependsOn) && b.dependsOn.length && { dependsOn: b.dependsOn as string[] }),
  };
  return { manifest, main, packageName: typeof pkg.name === 'string' ? pkg.name : b.plugin };
}

/**
 * sha512 over a folder's files (sorted relative paths, each path, size and content), skipping
 * node_modules and .git: the digest `spec.integrity` pins for a plugin folder. `berth plugins`
 * prints it.
 */
export async function folderIntegrity(dir: string): Promise<string> {
  const hash = createHash('sha512');
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.name === 'node_modules' || e.name === '.git') continue;
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  await walk('');
  files.sort();
  for (const f of files) {
    const content = await readFile(path.join(dir, f));
    hash.update(`${f}\0${content.length}\0`).update(content).update('\0');
  }
  return `sha512-${hash.digest('base64')}`;
}

/**
 * npm's integrity for an installed package (from node_modules/.package-lock.json, which npm writes
 * on install from the registry's record), else the folder's digest.
 */
async function packageIntegrity(root: string, dir: string): Promise<string> {
  try {
    const lock = JSON.parse(await readFile(path.join(root, 'node_modules', '.package-lock.json'), 'utf8')) as { packages?: Record<string, { integrity?: string }> };
    const key = path.relative(root, dir).split(path.sep).join('/');
    const integrity = lock.packages?.[key]?.integrity;
    if (integrity) return integrity;
  } catch {
    // no hidden lockfile: the folder's digest
  }
  return folderIntegrity(dir);
}

function loader(main: string): () => Promise<PluginFactory> {
  return async () => {
    const mod = (await import(pathToFileURL(main).href)) as { create?: unknown; default?: unknown };
    const create = mod.create ?? (mod.default && typeof mod.default === 'object' ? (mod.default as { create?: unknown }).create : mod.default);
    if (typeof create !== 'function') throw new Error(`${main} exports no create(context) function (export function create, or a default export)`);
    return create as PluginFactory;
  };
}

/** Folders under `dir` that may hold a plugin: `dir` itself when it has a package.json, else its children. */
async function candidates(dir: string): Promise<string[]> {
  if (existsSync(path.join(dir, 'package.json'))) return [dir];
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name)).sort();
}

/** Package folders in `<root>/node_modules` (scoped ones included). */
async function packageFolders(root: string): Promise<string[]> {
  const nm = path.join(root, 'node_modules');
  const out: string[] = [];
  const entries = await readdir(nm, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory() && !e.isSymbolicLink()) continue;
    if (e.name.startsWith('.')) continue;
    if (e.name.startsWith('@')) {
      const scoped = await readdir(path.join(nm, e.name), { withFileTypes: true }).catch(() => []);
      for (const s of scoped) if (s.isDirectory() || s.isSymbolicLink()) out.push(path.join(nm, e.name, s.name));
    } else out.push(path.join(nm, e.name));
  }
  return out.sort();
}

export async function discoverPlugins(options: DiscoveryOptions): Promise<PluginCatalog> {
  const found = new Map<string, PluginDefinition>();
  const problems: DiscoveryProblem[] = [];
  const where = (d: PluginDefinition) => (d.origin.kind === 'builtin' ? 'built into berth' : d.origin.path);
  const add = (def: PluginDefinition, at: string) => {
    const other = found.get(def.manifest.name);
    if (other) {
      problems.push({ path: at, message: `plugin "${def.manifest.name}" is already provided by ${where(other)}; a plugin name must be unique (built-in names cannot be replaced)` });
      return;
    }
    found.set(def.manifest.name, def);
  };

  for (const [name, b] of Object.entries(options.builtins)) {
    add({ manifest: { ...b.manifest, name }, origin: { kind: 'builtin' }, entry: b.entry ?? new URL('./builtin/index.js', import.meta.url), integrity: async () => undefined, load: async () => b.create }, 'berth');
  }
  for (const dir of options.dirs ?? []) {
    const abs = path.resolve(dir);
    if (!(await stat(abs).then((s) => s.isDirectory(), () => false))) {
      problems.push({ path: abs, message: '--plugin-dir is not a folder' });
      continue;
    }
    for (const folder of await candidates(abs)) {
      const r = await readPackage(folder);
      if (!r) continue;
      if ('problem' in r) problems.push({ path: path.join(folder, 'package.json'), message: r.problem });
      else add({ manifest: r.manifest, origin: { kind: 'directory', path: folder }, entry: pathToFileURL(r.main), integrity: () => folderIntegrity(folder), load: loader(r.main) }, folder);
    }
  }
  for (const given of options.packageRoots ?? []) {
    // Absolute, as for --plugin-dir: readPackage checks that "main" resolves inside the folder.
    const root = path.resolve(given);
    for (const folder of await packageFolders(root)) {
      const r = await readPackage(folder);
      if (!r) continue;
      if ('problem' in r) problems.push({ path: path.join(folder, 'package.json'), message: r.problem });
      else add({ manifest: r.manifest, origin: { kind: 'package', path: folder, packageName: r.packageName }, entry: pathToFileURL(r.main), integrity: () => packageIntegrity(root, folder), load: loader(r.main) }, folder);
    }
  }
  const list = [...found.values()].sort((a, b) => (a.manifest.name < b.manifest.name ? -1 : 1));
  return { get: (name) => found.get(name), list: () => list, problems };
}
