import { observe } from '../../runtime/observe.js';
import { formatPlan, planToJson } from '../../plan/format.js';
import { plan } from '../../plan/plan.js';
import { desiredStateFor, type GlobalOptions } from '../context.js';
import { createDrivers, type DriverOptions } from '../drivers.js';
import { paint, type Out } from '../output.js';

/** `berth plan --env ENV`: exit 0 no changes, 2 changes, 1 error. */
export async function planCommand(opts: GlobalOptions & DriverOptions, out: Out): Promise<number> {
  const state = await desiredStateFor(opts);
  const env = state.environment;
  const { runtime, proxy } = createDrivers(opts);
  const live = await observe(env, runtime, proxy);
  const result = plan(state, live, { prune: opts.prune });
  if (opts.output === 'json') out.print(JSON.stringify(planToJson(result), null, 2));
  else out.print(formatPlan(result, (style, text) => paint(out, style, text)));
  return result.empty ? 0 : 2;
}
