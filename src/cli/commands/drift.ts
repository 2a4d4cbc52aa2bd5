import { UsageError } from '../../errors.js';
import { ValidationError } from '../../render/problems.js';
import { desiredState } from '../../render/retire.js';
import { checkDrift, readAppliedRevision, type DriftReport } from '../../reconcile/drift.js';
import { loadMemory } from '../../reconcile/memory.js';
import { HistoryStore } from '../../report/history.js';
import { systemClock } from '../../util/clock.js';
import { openCliSource, requireEnv, secretSourceFor, type GlobalOptions } from '../context.js';
import { manifestsOf, pluginCatalog } from '../plugins.js';
import { createDrivers, type DriverOptions } from '../drivers.js';
import { paint, type Out } from '../output.js';

/**
 * `berth drift --env ENV`: live state compared with the revision berth applied (from the state dir;
 * `--ref` compares with another), app by app, and why. Exit 0 no drift, 2 drift, 1 error. Read-only.
 */
export async function driftCommand(opts: GlobalOptions & DriverOptions, out: Out): Promise<number> {
  const env = requireEnv(opts);
  const memory = await loadMemory(new HistoryStore(opts.stateDir, env));
  const source = await openCliSource(opts);
  // --ref compares with another revision; else the one berth applied, as the state dir remembers it.
  const revision = source.kind === 'directory' ? await source.read() : opts.ref ? await source.read(opts.ref) : await readAppliedRevision(source, memory.lastAppliedRevision);
  if (!revision) {
    throw new UsageError(`no revision of environment "${env}" was applied with state dir ${opts.stateDir}: nothing to compare live state with (pass the controller's --state-dir, or --ref REVISION)`, { env });
  }
  const rendered = desiredState(revision, env, { secrets: secretSourceFor(opts), plugins: manifestsOf(await pluginCatalog(opts)), pluginProblems: 'contain' });
  if (!rendered.ok) throw new ValidationError(rendered.problems, env);
  const { runtime, proxy } = createDrivers(opts);
  const report = await checkDrift({ env, memory, clock: systemClock, runtime, proxy, ...(opts.prune !== undefined && { prune: opts.prune }) }, rendered.state);
  if (opts.output === 'json') out.print(JSON.stringify(report, null, 2));
  else out.print(formatDrift(report, (style, text) => paint(out, style, text)));
  return report.drifted ? 2 : 0;
}

type Paint = (style: 'red' | 'green' | 'yellow' | 'dim' | 'bold', text: string) => string;

/** A drift report as people read it: one line per difference, with the plan's reason. */
export function formatDrift(r: DriftReport, paint: Paint = (_, t) => t): string {
  const lines = [paint('bold', `Drift in ${r.env}: live state compared with ${r.revision}`)];
  if (!r.drifted) lines.push(paint('green', 'No drift: live state matches the applied revision.'));
  for (const a of r.apps) {
    for (const item of a.items) {
      lines.push(`${paint('yellow', `  ${a.app.padEnd(16)}`)} ${item.summary.padEnd(34)} ${paint('dim', item.reason)}`);
      for (const d of item.diff.slice(0, 10)) lines.push(paint('dim', `      ${d}`));
    }
  }
  if (r.proxy) lines.push(`${paint('yellow', `  ${'(proxy)'.padEnd(16)}`)} ${r.proxy}`);
  for (const h of r.held) lines.push(paint('dim', `  ${h.app.padEnd(16)} held at its previous version, not drift: ${h.message} [${h.reason}]`));
  for (const u of r.unhealthy) lines.push(paint('dim', `  ${u.app.padEnd(16)} replaced by berth, not drift: ${u.reason}`));
  if (r.drifted) lines.push('', paint('bold', `Summary: ${r.summary}`));
  return lines.join('\n');
}
