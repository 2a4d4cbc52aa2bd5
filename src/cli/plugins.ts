import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option } from 'commander';
import { BUILTIN_PLUGINS } from '../plugins/builtin/index.js';
import { discoverPlugins, type PluginCatalog } from '../plugins/catalog.js';
import type { PluginManifests } from '../render/plugins.js';
import { formatProblem } from '../render/problems.js';
import type { DesiredState } from '../render/types.js';

/** berth's own package folder (dist/cli or src/cli, two levels up). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `--plugin-dir DIR` (repeatable; BERTH_PLUGIN_DIR holds several, separated by ':'). */
export function pluginDirOption(): Option {
  return new Option('--plugin-dir <dir>', 'folder of plugins (a plugin folder with a package.json, or a folder of them); repeatable')
    .env('BERTH_PLUGIN_DIR')
    .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), ...value.split(path.delimiter).filter(Boolean)]);
}

/**
 * Where npm packages that are berth plugins are looked for: node_modules of the working directory,
 * of berth's own package, and (for a global or nested install) the node_modules berth itself sits in.
 */
export function packageRoots(cwd = process.cwd()): string[] {
  const roots = [cwd, PACKAGE_ROOT];
  const parent = path.dirname(path.resolve(PACKAGE_ROOT));
  if (path.basename(parent) === 'node_modules') roots.push(path.dirname(parent));
  return [...new Set(roots.map((r) => path.resolve(r)))];
}

const catalogs = new Map<string, Promise<PluginCatalog>>();

/** The plugins that exist for these options (discovered once per process); discovery problems go to `warn`. */
export function pluginCatalog(opts: { pluginDir?: string[] }, warn: (message: string) => void = (m) => process.stderr.write(`warning: ${m}\n`)): Promise<PluginCatalog> {
  const dirs = opts.pluginDir ?? [];
  const key = dirs.join('\0');
  let found = catalogs.get(key);
  if (!found) {
    found = discoverPlugins({ builtins: BUILTIN_PLUGINS, dirs, packageRoots: packageRoots() }).then((catalog) => {
      for (const p of catalog.problems) warn(`plugin ${p.path}: ${p.message}`);
      return catalog;
    });
    catalogs.set(key, found);
  }
  return found;
}

/** What render checks Plugin documents against. */
export function manifestsOf(catalog: PluginCatalog): PluginManifests {
  return { get: (use) => catalog.get(use)?.manifest, names: () => catalog.list().map((d) => d.manifest.name) };
}

/** One line per Plugin document that cannot start (`berth validate` fails on them; plan and apply go on). */
export function pluginWarnings(desired: Pick<DesiredState, 'plugins'>): string[] {
  return desired.plugins.flatMap((p) => (p.problems ?? []).map((problem) => `plugin ${p.name} cannot start: ${formatProblem(problem)}`));
}
