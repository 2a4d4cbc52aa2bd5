import { redactUrl } from '../../source/git.js';
import { formatProblem } from '../../render/problems.js';
import { validateRepository } from '../../render/render.js';
import { cliRevision, secretSourceFor, type GlobalOptions } from '../context.js';
import { paint, type Out } from '../output.js';
import { manifestsOf, pluginCatalog } from '../plugins.js';

/** `berth validate`: render every environment (or one); print all problems; exit 1 on any. */
export async function validateCommand(opts: GlobalOptions, out: Out): Promise<number> {
  const revision = await cliRevision(opts);
  const result = validateRepository(revision, {
    secrets: secretSourceFor(opts, 'none'),
    plugins: manifestsOf(await pluginCatalog(opts)),
    unresolvedSecrets: opts.requireSecrets ? 'error' : 'allow',
    ...(opts.env && { environments: [opts.env] }),
  });
  if (opts.output === 'json') {
    out.print(JSON.stringify({ ok: result.problems.length === 0, environments: result.environments, problems: result.problems }, null, 2));
    return result.problems.length ? 1 : 0;
  }
  for (const p of result.problems) out.print(formatProblem(p));
  if (result.problems.length) {
    const files = new Set(result.problems.map((p) => p.file)).size;
    out.info(paint(out, 'red', `✖ ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} in ${files} file${files === 1 ? '' : 's'}; nothing can be applied until they are fixed`));
    return 1;
  }
  const apps = [...revision.files.keys()].filter((f) => f.startsWith('apps/')).length;
  out.info(paint(out, 'green', `✔ ${redactUrl(opts.repo)} is valid: ${result.environments.length} environment${result.environments.length === 1 ? '' : 's'} (${result.environments.join(', ')}), ${apps} app${apps === 1 ? '' : 's'}`));
  return 0;
}
