import { ValidationError } from '../../render/problems.js';
import { renderEnvironment } from '../../render/render.js';
import { cliRevision, requireEnv, secretSourceFor, type GlobalOptions } from '../context.js';
import { formatData, paint, type Out } from '../output.js';
import { secretEnvName } from '../../render/secrets.js';

/** `berth render --env ENV`: print the desired state (secrets masked). */
export async function renderCommand(opts: GlobalOptions, out: Out): Promise<number> {
  const env = requireEnv(opts);
  const revision = await cliRevision(opts, env);
  const result = renderEnvironment(revision, env, { secrets: secretSourceFor(opts), unresolvedSecrets: 'allow' });
  if (!result.ok) throw new ValidationError(result.problems, env);
  for (const name of result.state.unresolvedSecrets) {
    out.info(paint(out, 'yellow', `warning: secret "${name}" has no value (set ${secretEnvName(name)} or --secrets-file); plan and apply will refuse until it does`));
  }
  out.print(formatData(result.state, opts.output === 'json' ? 'json' : 'yaml'));
  return 0;
}
