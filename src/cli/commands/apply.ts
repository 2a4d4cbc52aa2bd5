import { readFile } from 'node:fs/promises';
import type { ApplyReport } from '../../apply/types.js';
import { BerthError, UsageError } from '../../errors.js';
import type { BerthEvent } from '../../events/types.js';
import { createLogger } from '../../log.js';
import { formatPlan } from '../../plan/format.js';
import { parseSavedPlan } from '../../plan/saved.js';
import type { Plan } from '../../plan/types.js';
import { ValidationError } from '../../render/problems.js';
import { acquireLock } from '../../reconcile/lock.js';
import { loadMemory } from '../../reconcile/memory.js';
import { scaledOf } from '../../reconcile/plugins.js';
import { reconcile, type ReconcileOutcome } from '../../reconcile/reconcile.js';
import { StatusBoard, initialStatus } from '../../status/board.js';
import { systemClock } from '../../util/clock.js';
import { checkPruneEnvironment, cliRevision, openCliSource, requireEnv, secretSourceFor, type GlobalOptions } from '../context.js';
import { manifestsOf, pluginCatalog, pluginWarnings } from '../plugins.js';
import type { DriverOptions } from '../drivers.js';
import { paint, type Out } from '../output.js';
import { statusOptionsFor } from '../forge.js';
import type { ForgeCliOptions } from '../forge-options.js';
import { buildPipeline } from '../pipeline.js';
import { retirementNote } from './plan.js';

const PHASE_STYLE: Partial<Record<BerthEvent<'app.progress'>['phase'], 'green' | 'red' | 'yellow' | 'cyan'>> = { done: 'green', failed: 'red', 'rolled-back': 'red', skipped: 'yellow', switch: 'cyan' };

/** How long `berth apply` waits for its commit statuses to be delivered before it exits. */
const STATUS_FLUSH_MS = 15_000;

export interface ApplyOptions extends GlobalOptions, DriverOptions, Partial<ForgeCliOptions> {
  /** A plan saved with `berth plan --output json`. */
  plan?: string;
  /** Confirms a removal without a saved plan (`--prune-environment`). */
  yes?: boolean;
}

/** `berth apply --env ENV [--plan FILE]`: one reconcile with live progress. Exit 0 Succeeded, 1 Failed, 3 RolledBack. */
export async function applyCommand(opts: ApplyOptions, out: Out): Promise<number> {
  const env = requireEnv(opts);
  if (opts.pruneEnvironment && !opts.plan && !opts.yes) {
    throw new UsageError(`--prune-environment removes every container and route of environment "${env}": see them first with \`berth plan --env ${env} --prune-environment\`, then apply that plan (\`--output json > plan.json\`, \`--plan plan.json\`) or confirm with --yes`, { env });
  }
  const secrets = secretSourceFor(opts);
  const savedPlan = opts.plan ? await readSavedPlan(opts.plan, secrets) : undefined;
  const lock = await acquireLock(opts.stateDir, env, { force: opts.force === true });
  const log = createLogger(opts.logLevel === 'info' ? 'warn' : opts.logLevel);
  try {
    const source = await openCliSource(opts);
    // The flag retires only an environment berth.yaml no longer defines: read the revision once to check.
    const revision = opts.pruneEnvironment ? await cliRevision(opts, env).then((r) => checkPruneEnvironment(r, env)) : undefined;
    const status = statusOptionsFor(opts, env, source);
    log.debug({ env, forge: status.forge?.name, note: status.note }, 'commit statuses');
    const p = buildPipeline(env, opts, log, undefined, status);
    const board = new StatusBoard(p.bus, (await p.history.readStatus()) ?? initialStatus(env, new Date()));
    const t0 = Date.now();
    if (opts.output !== 'json') p.bus.on('app.progress', (e) => printProgress(out, e, t0));
    const memory = await loadMemory(p.history);
    const outcome = await reconcile(
      {
        env,
        readRevision: async () => revision ?? cliRevision(opts, env),
        secrets,
        runtime: p.runtime,
        proxy: p.proxy,
        clock: systemClock,
        bus: p.bus,
        history: p.history,
        memory,
        board,
        health: p.health,
        ...(opts.prune !== undefined && { prune: opts.prune }),
        ...(opts.parallelism !== undefined && { parallelism: opts.parallelism }),
        ...(opts.pruneEnvironment && { pruneEnvironment: true }),
        // Plugin documents are checked; plugins run only under `berth run`.
        // Replicas a scaler of `berth run` set (kept in the state dir) are what the environment wants.
        plugins: { manifests: manifestsOf(await pluginCatalog(opts)), scaled: () => scaledOf(memory) },
      },
      { trigger: 'cli', force: true, ...(savedPlan && { savedPlan }), onPlan: (plan, desired) => {
          for (const warning of pluginWarnings(desired)) out.info(paint(out, 'yellow', `warning: ${warning}`));
          printPlan(out, opts, plan, desired.settings.retired === true);
        } },
    );
    await p.bus.flush();
    // Statuses go out before the command ends; a forge that is down is given a few seconds, then left.
    if (!(await p.closeStatuses(STATUS_FLUSH_MS))) out.info(paint(out, 'yellow', `warning: commit statuses not delivered to ${p.statuses?.name} within ${STATUS_FLUSH_MS / 1000}s (see --log-level debug)`));
    p.close();
    return reportOutcome(outcome, env, opts, out);
  } finally {
    await lock.release();
  }
}

function printPlan(out: Out, opts: ApplyOptions, plan: Plan, retired: boolean): void {
  if (opts.output === 'json') return;
  if (retired) out.info(paint(out, 'yellow', retirementNote(plan.env)));
  if (!plan.empty) out.info(formatPlan(plan, (style, text) => paint(out, style, text)) + '\n');
}

async function readSavedPlan(file: string, secrets: ReturnType<typeof secretSourceFor>): Promise<Plan> {
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read the saved plan ${file}: ${err.message}`, { file });
  });
  return parseSavedPlan(text, secrets, file);
}

function printProgress(out: Out, e: BerthEvent<'app.progress'>, t0: number): void {
  const elapsed = `[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
  const style = PHASE_STYLE[e.phase];
  const line = `${elapsed} ${e.app.padEnd(16)} ${e.phase.padEnd(11)} ${e.message}`;
  out.info(style ? paint(out, style, line) : line);
}

/** Prints the outcome and turns it into the exit code. */
export function reportOutcome(outcome: ReconcileOutcome, env: string, opts: ApplyOptions, out: Out): number {
  if (outcome.kind === 'source-failed' || outcome.kind === 'observe-failed') throw outcome.error instanceof BerthError ? outcome.error : new BerthError(outcome.kind === 'source-failed' ? 'E_SOURCE' : 'E_DOCKER', outcome.error.message, { env }, outcome.error);
  if (outcome.kind === 'render-failed') throw new ValidationError(outcome.problems, env);
  if (outcome.kind === 'crashed') {
    // Recorded like any failed reconcile (history, commit status); exit 1 like one. The stack is for bug reports.
    if (opts.output === 'json') out.print(JSON.stringify({ env, result: 'Failed', reason: 'InternalError', stage: outcome.stage, error: outcome.message }));
    else out.info(paint(out, 'red', `✖ Failed: ${outcome.message}`));
    const stack = outcome.error.stack;
    if (stack && (opts.logLevel === 'debug' || opts.logLevel === 'trace')) out.info(stack);
    return 1;
  }
  if (outcome.kind !== 'applied') {
    if (opts.output === 'json') out.print(JSON.stringify({ env, result: 'Succeeded', apps: [], changed: false }));
    else out.info(paint(out, 'green', 'desired' in outcome && outcome.desired.settings.retired ? `✔ ${env} is retired: nothing of it is left` : `✔ ${env} is in sync; nothing to apply`));
    return 0;
  }
  const r: ApplyReport = outcome.report;
  if (opts.output === 'json') out.print(JSON.stringify(r, null, 2));
  else {
    const changed = r.apps.filter((a) => a.result !== 'Unchanged');
    const tally = ['Succeeded', 'RolledBack', 'Failed', 'Skipped'].map((x) => [x, changed.filter((a) => a.result === x).length] as const).filter(([, n]) => n);
    const color = r.result === 'Succeeded' ? 'green' : 'red';
    out.info(paint(out, color, `${r.result === 'Succeeded' ? '✔' : '✖'} ${r.result}: ${tally.map(([x, n]) => `${n} ${x.toLowerCase()}`).join(', ')} in ${(r.durationMs / 1000).toFixed(1)}s, ${r.reloads} nginx reload${r.reloads === 1 ? '' : 's'}`));
    for (const a of changed.filter((a) => a.error)) out.info(paint(out, 'red', `  ${a.app}: ${a.error}`));
  }
  return r.result === 'Succeeded' ? 0 : r.result === 'RolledBack' ? 3 : 1;
}
