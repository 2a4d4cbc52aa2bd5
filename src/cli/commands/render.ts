import { desiredStateFor, type GlobalOptions } from '../context.js';
import { formatData, paint, type Out } from '../output.js';
import { secretEnvName } from '../../render/secrets.js';

/** `berth render --env ENV`: print the desired state (secrets masked). */
export async function renderCommand(opts: GlobalOptions, out: Out): Promise<number> {
  const state = await desiredStateFor(opts, 'allow');
  for (const name of state.unresolvedSecrets) {
    out.info(paint(out, 'yellow', `warning: secret "${name}" has no value (set ${secretEnvName(name)} or --secrets-file); plan and apply will refuse until it does`));
  }
  out.print(formatData(state, opts.output === 'json' ? 'json' : 'yaml'));
  return 0;
}
