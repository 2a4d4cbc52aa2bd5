import { formatPlan } from '../../plan/format.js';
import { plan } from '../../plan/plan.js';
import { serializePlan } from '../../plan/saved.js';
import { pruneFor } from '../../render/retire.js';
import { observe } from '../../runtime/observe.js';
import { desiredStateFor, type GlobalOptions } from '../context.js';
import { createDrivers, type DriverOptions } from '../drivers.js';
import { paint, type Out } from '../output.js';

/** What retiring an environment does beyond the plan's removals. */
export function retirementNote(env: string): string {
  return `Retiring environment ${env}: every container and route of it is removed, then its proxy config (nginx: berth-${env}.conf, tested and reloaded).`;
}

/** `berth plan --env ENV`: exit 0 no changes, 2 changes, 1 error. `--output json` is the plan `berth apply --plan` takes. */
export async function planCommand(opts: GlobalOptions & DriverOptions, out: Out): Promise<number> {
  const state = await desiredStateFor(opts);
  const { runtime, proxy } = createDrivers(opts);
  const live = await observe(state.environment, runtime, proxy);
  const prune = pruneFor(state, opts.prune);
  const result = plan(state, live, { ...(prune !== undefined && { prune }) });
  if (opts.output === 'json') out.print(serializePlan(result));
  else {
    if (state.settings.retired) out.info(paint(out, 'yellow', retirementNote(state.environment)));
    out.print(formatPlan(result, (style, text) => paint(out, style, text)));
  }
  return result.empty ? 0 : 2;
}
