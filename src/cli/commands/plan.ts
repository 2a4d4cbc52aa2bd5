import { BerthError, UsageError } from '../../errors.js';
import { postPlan } from '../../forge/post-plan.js';
import { formatPlan } from '../../plan/format.js';
import { serializePlan } from '../../plan/saved.js';
import { ValidationError } from '../../render/problems.js';
import { envBranch } from '../../render/render.js';
import { loadMemory } from '../../reconcile/memory.js';
import { planLive } from '../../reconcile/plan-live.js';
import { scaledOf } from '../../reconcile/plugins.js';
import { HistoryStore } from '../../report/history.js';
import { readRevision, type ConfigSource } from '../../source/open.js';
import type { Revision } from '../../source/types.js';
import { checkPruneEnvironment, cliWriter, openCliSource, requireEnv, secretSourceFor, type GlobalOptions } from '../context.js';
import { manifestsOf, pluginCatalog, pluginWarnings } from '../plugins.js';
import { createDrivers, type DriverOptions } from '../drivers.js';
import { statusOptionsFor } from '../forge.js';
import type { ForgeCliOptions } from '../forge-options.js';
import { paint, type Out } from '../output.js';

export interface PlanOptions extends GlobalOptions, DriverOptions, Partial<ForgeCliOptions> {
  /** Post the plan to the forge (status `<context>/plan`, pull-request comments). */
  post?: boolean;
}

/** What retiring an environment does beyond the plan's removals. */
export function retirementNote(env: string): string {
  return `Retiring environment ${env}: every container and route of it is removed, then its proxy config (nginx: berth-${env}.conf, tested and reloaded).`;
}

/**
 * The revision to plan: with `--ref BRANCH` (another branch than the environment's, per berth.yaml
 * at HEAD), the merge of that branch into the environment's, made in memory (nothing is written or
 * pushed), so the plan shows what merging it would change; with a tag or commit, that revision as it is.
 */
async function revisionToPlan(opts: PlanOptions, env: string, source: ConfigSource): Promise<{ revision: Revision; into?: string }> {
  const asIs = () => readRevision(source, { ...(opts.ref && { ref: opts.ref }), env, branchOf: (r, e) => envBranch(r, e) });
  if (!opts.ref || source.kind !== 'git') return { revision: await asIs() };
  if (source.git?.remote) await source.fetch('HEAD');
  const into = envBranch(await source.read('HEAD'), env);
  if (!into || into === opts.ref) return { revision: await asIs() };
  try {
    return { revision: await cliWriter(opts, env).previewMerge(into, opts.ref), into };
  } catch (err) {
    // --ref is no branch (a tag, a commit): plan that revision as it is.
    if (err instanceof BerthError && err.code === 'E_REF' && err.context.branch === opts.ref) return { revision: await asIs() };
    throw err;
  }
}

/** `berth plan --env ENV`: exit 0 no changes, 2 changes, 1 error. `--output json` is the plan `berth apply --plan` takes. */
export async function planCommand(opts: PlanOptions, out: Out): Promise<number> {
  const env = requireEnv(opts);
  const source = await openCliSource(opts);
  const status = opts.post ? statusOptionsFor(opts, env, source) : undefined;
  if (status && !status.forge) throw new UsageError(`--post needs a forge to post to: ${status.note}`);
  if (status && source.kind !== 'git') throw new UsageError(`--post needs a Git revision: ${opts.repo} is a plain directory`);
  const { revision, into } = await revisionToPlan(opts, env, source);
  if (opts.pruneEnvironment) checkPruneEnvironment(revision, env);
  const { runtime, proxy } = createDrivers(opts);
  const scaled = scaledOf(await loadMemory(new HistoryStore(opts.stateDir, env)));
  const planned = await planLive(revision, env, { secrets: secretSourceFor(opts), runtime, proxy, plugins: manifestsOf(await pluginCatalog(opts)), scaled, ...(opts.prune !== undefined && { prune: opts.prune }), ...(opts.pruneEnvironment && { pruneEnvironment: true }) });
  const target = { env, context: status?.context ?? `berth/${env}`, branch: opts.ref ?? revision.ref.branch ?? 'HEAD', sha: revision.ref.sha ?? '', ...(into && { into }), ...(status?.externalUrl && { externalUrl: status.externalUrl }) };
  if (!planned.ok) {
    if (status?.forge) await postPlan(status.forge, { ...target, problems: planned.problems });
    throw new ValidationError(planned.problems, env);
  }
  const result = planned.plan;
  for (const warning of pluginWarnings(planned.desired)) out.info(paint(out, 'yellow', `warning: ${warning}`));
  if (opts.output === 'json') out.print(serializePlan(result));
  else {
    if (planned.desired.settings.retired) out.info(paint(out, 'yellow', retirementNote(env)));
    if (into) out.info(paint(out, 'dim', `Planning the merge of ${opts.ref} (${target.sha.slice(0, 12)}) into ${into}, as a pull request would merge it.`));
    out.print(formatPlan(result, (style, text) => paint(out, style, text)));
  }
  if (status?.forge) {
    const posted = await postPlan(status.forge, { ...target, plan: result });
    out.info(paint(out, 'green', `posted ${posted.status.context} = ${posted.status.state} (${posted.status.description}) on ${target.sha.slice(0, 12)} to ${status.forge.name}`));
    for (const c of posted.comments) out.info(`  pull request #${c.number}: comment ${c.sync.created ? 'created' : c.sync.updated ? 'updated' : 'unchanged'}${c.sync.deleted ? `, ${c.sync.deleted} old part(s) deleted` : ''}`);
    if (!posted.comments.length) out.info(`  no open pull request of ${target.branch} into ${into ?? target.branch}: no comment`);
  }
  return result.empty ? 0 : 2;
}
