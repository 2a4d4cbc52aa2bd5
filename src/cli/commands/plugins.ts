import type { PluginView } from '../../plugins/host.js';
import type { PluginDefinition } from '../../plugins/types.js';
import { desiredStateFor, type GlobalOptions } from '../context.js';
import { paint, type Out } from '../output.js';
import { pluginCatalog } from '../plugins.js';
import { fromServer } from './run.js';

export interface PluginsOptions extends GlobalOptions {
  server: string;
}

interface Row {
  name: string;
  version: string;
  origin: string;
  provides: string[];
  integrity?: string;
  /** Enabled for --env by these Plugin documents (metadata.name), with their state when a controller runs. */
  enabled: { name: string; file?: string; state?: string; lastError?: string }[];
}

function originOf(def: PluginDefinition): string {
  return def.origin.kind === 'builtin' ? 'builtin' : def.origin.kind === 'package' ? `npm ${def.origin.packageName} (${def.origin.path})` : def.origin.path;
}

/**
 * `berth plugins [--env ENV]`: every plugin berth can run (built-in, --plugin-dir, npm packages) with
 * the digest `spec.integrity` pins; with --env, which Plugin documents enable each, and their state
 * from the controller at --server when one answers.
 */
export async function pluginsCommand(opts: PluginsOptions, out: Out): Promise<number> {
  const catalog = await pluginCatalog(opts, (m) => out.info(paint(out, 'yellow', `warning: ${m}`)));
  // States come from the controller at --server only when it runs --env.
  const serverEnv = opts.env ? (await fromServer<{ env?: string }>(opts.server, '/api/v1/status'))?.env : undefined;
  const running = opts.env && serverEnv === opts.env ? await fromServer<PluginView[]>(opts.server, '/api/v1/plugins') : undefined;
  if (opts.env && serverEnv && serverEnv !== opts.env) out.info(paint(out, 'yellow', `the controller at ${opts.server} runs environment ${serverEnv}, not ${opts.env}: no states shown`));
  const enabled = opts.env ? (await desiredStateFor(opts, 'allow')).plugins : [];
  const rows: Row[] = [];
  for (const def of catalog.list()) {
    const integrity = await def.integrity().catch(() => undefined);
    rows.push({
      name: def.manifest.name,
      version: def.manifest.version,
      origin: originOf(def),
      provides: def.manifest.provides,
      ...(integrity && { integrity }),
      enabled: enabled
        .filter((p) => p.use === def.manifest.name)
        .map((p) => {
          const live = running?.find((r) => r.name === p.name);
          return { name: p.name, file: p.file, ...(live && { state: live.state }), ...(live?.lastError && { lastError: live.lastError.message }) };
        }),
    });
  }
  if (opts.output === 'json') {
    out.print(JSON.stringify({ plugins: rows, problems: catalog.problems, ...(opts.env && { env: opts.env, controller: running ? opts.server : null }) }, null, 2));
    return catalog.problems.length ? 1 : 0;
  }
  for (const r of rows) {
    out.print(`${paint(out, 'bold', r.name)} ${r.version}  ${r.provides.join(', ')}  (${r.origin})`);
    if (r.integrity) out.print(`  integrity: ${r.integrity}`);
    for (const e of r.enabled) {
      const state = e.state ? (e.state === 'running' ? paint(out, 'green', e.state) : paint(out, 'red', e.state)) : paint(out, 'dim', running ? 'not running' : 'no controller answers');
      out.print(`  ${opts.env}: ${e.name} (${e.file}) ${state}${e.lastError ? `: ${e.lastError}` : ''}`);
    }
  }
  if (opts.env && !enabled.length) out.info(paint(out, 'dim', `no Plugin document enables a plugin for environment ${opts.env}`));
  for (const p of catalog.problems) out.info(paint(out, 'red', `✖ ${p.path}: ${p.message}`));
  return catalog.problems.length ? 1 : 0;
}
