import { acquireLock } from '../../reconcile/lock.js';
import { applyPlan } from '../../apply/apply.js';
import type { ApplyEvent } from '../../apply/types.js';
import { systemClock } from '../../util/clock.js';
import { observe } from '../../runtime/observe.js';
import { formatPlan } from '../../plan/format.js';
import { plan } from '../../plan/plan.js';
import { desiredStateFor, type GlobalOptions } from '../context.js';
import { createDrivers, type DriverOptions } from '../drivers.js';
import { paint, type Out } from '../output.js';

const PHASE_STYLE: Partial<Record<ApplyEvent['phase'], 'green' | 'red' | 'yellow' | 'cyan'>> = { done: 'green', failed: 'red', 'rolled-back': 'red', skipped: 'yellow', switch: 'cyan' };

/** `berth apply --env ENV`: plan, then apply with live progress. Exit 0 Succeeded, 1 Failed, 3 RolledBack. */
export async function applyCommand(opts: GlobalOptions & DriverOptions, out: Out): Promise<number> {
  const state = await desiredStateFor(opts);
  const env = state.environment;
  const lock = await acquireLock(opts.stateDir, env);
  try {
    const { runtime, proxy } = createDrivers(opts);
    const live = await observe(env, runtime, proxy);
    const planned = plan(state, live, { prune: opts.prune });
    if (planned.empty) {
      if (opts.output === 'json') out.print(JSON.stringify({ env, result: 'Succeeded', apps: [], changed: false }));
      else out.info(paint(out, 'green', `✔ ${env} is in sync; nothing to apply`));
      return 0;
    }
    if (opts.output !== 'json') out.info(formatPlan(planned, (style, text) => paint(out, style, text)) + '\n');
    const t0 = Date.now();
    const report = await applyPlan(planned, state, live, {
      runtime,
      proxy,
      clock: systemClock,
      onEvent: (e) => {
        if (opts.output === 'json') return;
        const elapsed = `[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
        const style = PHASE_STYLE[e.phase];
        const line = `${elapsed} ${e.app.padEnd(16)} ${e.phase.padEnd(11)} ${e.message}`;
        out.info(style ? paint(out, style, line) : line);
      },
    });
    if (opts.output === 'json') out.print(JSON.stringify(report, null, 2));
    else {
      const changed = report.apps.filter((a) => a.result !== 'Unchanged');
      const tally = ['Succeeded', 'RolledBack', 'Failed', 'Skipped'].map((r) => [r, changed.filter((a) => a.result === r).length] as const).filter(([, n]) => n);
      const color = report.result === 'Succeeded' ? 'green' : 'red';
      out.info(paint(out, color, `${report.result === 'Succeeded' ? '✔' : '✖'} ${report.result}: ${tally.map(([r, n]) => `${n} ${r.toLowerCase()}`).join(', ')} in ${(report.durationMs / 1000).toFixed(1)}s, ${report.reloads} nginx reload${report.reloads === 1 ? '' : 's'}`));
      for (const a of changed.filter((a) => a.error)) out.info(paint(out, 'red', `  ${a.app}: ${a.error}`));
    }
    return report.result === 'Succeeded' ? 0 : report.result === 'RolledBack' ? 3 : 1;
  } finally {
    await lock.release();
  }
}
