import { observe } from '../../observe/observe.js';
import { formatPlan, planToJson } from '../../plan/format.js';
import { plan } from '../../plan/plan.js';
import { ValidationError } from '../../render/problems.js';
import { renderEnvironment } from '../../render/render.js';
import { cliRevision, requireEnv, secretSourceFor, type GlobalOptions } from '../context.js';
import { createDrivers, type DriverOptions } from '../drivers.js';
import { paint, type Out } from '../output.js';

/** `berth plan --env ENV`: exit 0 no changes, 2 changes, 1 error. */
export async function planCommand(opts: GlobalOptions & DriverOptions, out: Out): Promise<number> {
  const env = requireEnv(opts);
  const revision = await cliRevision(opts, env);
  const rendered = renderEnvironment(revision, env, { secrets: secretSourceFor(opts) });
  if (!rendered.ok) throw new ValidationError(rendered.problems, env);
  const { runtime, proxy } = createDrivers(opts);
  const live = await observe(env, runtime, proxy);
  const result = plan(rendered.state, live, { prune: opts.prune });
  if (opts.output === 'json') out.print(JSON.stringify(planToJson(result), null, 2));
  else out.print(formatPlan(result, (style, text) => paint(out, style, text)));
  return result.empty ? 0 : 2;
}
