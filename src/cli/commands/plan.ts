import { postPlan } from '../../forge/post-plan.js';
import { formatPlan } from '../../plan/format.js';
import { plan } from '../../plan/plan.js';
import { serializePlan } from '../../plan/saved.js';
import { ValidationError } from '../../render/problems.js';
import { desiredState, pruneFor } from '../../render/retire.js';
import { observe } from '../../runtime/observe.js';
import type { Revision } from '../../source/types.js';
import { RepoWriteError, RepoWriter } from '../../source/write.js';
import { UsageError } from '../../errors.js';
import { checkPruneEnvironment, cliRevision, openCliSource, requireEnv, secretSourceFor, type GlobalOptions } from '../context.js';
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
 * The revision to plan: with `--ref BRANCH` (another branch than the environment's), the merge of
 * that branch into the environment's, made in memory (nothing is written or pushed), so the plan
 * shows what merging it would change; with a tag or commit, that revision as it is.
 */
async function revisionToPlan(opts: PlanOptions, env: string): Promise<{ revision: Revision; into?: string }> {
  if (!opts.ref) return { revision: await cliRevision(opts, env) };
  const source = await openCliSource(opts);
  if (source.kind !== 'git') return { revision: await cliRevision(opts, env) };
  const current = await cliRevision({ ...opts, ref: undefined }, env);
  const into = current.ref.branch;
  if (!into || into === opts.ref) return { revision: current };
  const writer = new RepoWriter(opts.repo, { stateDir: opts.stateDir, auth: { ...(opts.gitToken && { token: opts.gitToken }), ...(opts.gitUsername && { username: opts.gitUsername }) }, env });
  try {
    return { revision: await writer.previewMerge(into, opts.ref), into };
  } catch (err) {
    // Not a branch (a tag, a commit): plan that revision as it is.
    if (err instanceof RepoWriteError && err.writeCode === 'E_REF' && !/no commit in common/.test(err.message)) return { revision: await cliRevision(opts, env) };
    throw err;
  }
}

/** `berth plan --env ENV`: exit 0 no changes, 2 changes, 1 error. `--output json` is the plan `berth apply --plan` takes. */
export async function planCommand(opts: PlanOptions, out: Out): Promise<number> {
  const env = requireEnv(opts);
  const status = opts.post ? statusOptionsFor(opts, env, await openCliSource(opts)) : undefined;
  if (status && !status.forge) throw new UsageError(`--post needs a forge to post to: ${status.note}`);
  const { revision, into } = await revisionToPlan(opts, env);
  if (opts.pruneEnvironment) checkPruneEnvironment(revision, env);
  const rendered = desiredState(revision, env, { secrets: secretSourceFor(opts), ...(opts.pruneEnvironment && { pruneEnvironment: true }) });
  const target = { env, context: status?.context ?? `berth/${env}`, branch: opts.ref ?? revision.ref.branch ?? 'HEAD', sha: revision.ref.sha ?? '', ...(into && { into }), ...(status?.externalUrl && { externalUrl: status.externalUrl }) };
  if (!rendered.ok) {
    if (status?.forge && target.sha) await postPlan(status.forge, { ...target, problems: rendered.problems });
    throw new ValidationError(rendered.problems, env);
  }
  const state = rendered.state;
  const { runtime, proxy } = createDrivers(opts);
  const live = await observe(state.environment, runtime, proxy);
  const prune = pruneFor(state, opts.prune);
  const result = plan(state, live, { ...(prune !== undefined && { prune }) });
  if (opts.output === 'json') out.print(serializePlan(result));
  else {
    if (state.settings.retired) out.info(paint(out, 'yellow', retirementNote(state.environment)));
    if (into) out.info(paint(out, 'dim', `Planning the merge of ${opts.ref} (${target.sha.slice(0, 12)}) into ${into}, as a pull request would merge it.`));
    out.print(formatPlan(result, (style, text) => paint(out, style, text)));
  }
  if (status?.forge) {
    if (!target.sha) throw new UsageError(`--post needs a Git revision: ${opts.repo} is a plain directory`);
    const posted = await postPlan(status.forge, { ...target, plan: result });
    out.info(paint(out, 'green', `posted ${posted.status.context} = ${posted.status.state} (${posted.status.description}) on ${target.sha.slice(0, 12)} to ${status.forge.name}`));
    for (const c of posted.comments) out.info(`  pull request #${c.number}: comment ${c.sync.created ? 'created' : c.sync.updated ? 'updated' : 'unchanged'}${c.sync.deleted ? `, ${c.sync.deleted} old part(s) deleted` : ''}`);
    if (!posted.comments.length) out.info(`  no open pull request of ${target.branch}: no comment`);
  }
  return result.empty ? 0 : 2;
}
