import { UsageError } from '../../errors.js';
import { HistoryStore } from '../../report/history.js';
import type { EnvStatus } from '../../status/types.js';
import { parseRevision } from '../../source/types.js';
import { promotionMessage, type MergeResult } from '../../source/write.js';
import { cliWriter, requireEnv } from '../context.js';
import { paint, type Out } from '../output.js';
import { branchesAtHead, movedHow, type WriteOptions } from './rollback.js';

export interface PromoteOptions extends WriteOptions {
  force?: boolean;
  /** FROM's controller API; without it, FROM's status is read from --state-dir. */
  fromServer?: string;
}

/** FROM's status: from its controller's API when --from-server is given, else from the state dir. */
async function statusOf(env: string, opts: PromoteOptions): Promise<{ status?: EnvStatus; where: string; missing?: string }> {
  if (opts.fromServer) {
    const url = new URL('/api/v1/status', opts.fromServer).toString();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) return { where: url, missing: `the controller at ${url} answered HTTP ${res.status}` };
      return { status: (await res.json()) as EnvStatus, where: url };
    } catch (err) {
      return { where: url, missing: `no controller answered at ${url} (${(err as Error).message})` };
    }
  }
  const status = await new HistoryStore(opts.stateDir, env).readStatus();
  return status ? { status, where: `${opts.stateDir}` } : { where: opts.stateDir, missing: `${opts.stateDir} has no status for ${env} (give its controller with --from-server URL)` };
}

/**
 * Every reason not to promote FROM yet: its revision must be the one its controller applied, and
 * Synced and Healthy there. An empty list: go ahead.
 */
function promotionRefusals(env: string, branch: string, head: string, found: { status?: EnvStatus; where: string; missing?: string }): string[] {
  const status = found.status;
  if (!status) return [`no status known for ${env}: ${found.missing ?? 'none found'}`];
  if (status.env !== env) return [`the status at ${found.where} is of environment "${status.env}", not "${env}"`];
  const reasons: string[] = [];
  if (status.syncStatus !== 'Synced') reasons.push(`${env} is ${status.syncStatus}, not Synced${status.message ? ` (${status.message})` : ''}`);
  if (status.health !== 'Healthy') {
    const apps = status.apps.filter((a) => a.health !== 'Healthy').map((a) => `${a.app} ${a.health}${a.healthMessage ? `: ${a.healthMessage}` : ''}`);
    reasons.push(`${env} is ${status.health}, not Healthy${apps.length ? ` (${apps.join('; ')})` : ''}`);
  }
  const applied = parseRevision(status.lastAppliedRevision).sha;
  if (!applied) reasons.push(`${env} has applied no revision yet`);
  else if (applied !== head) reasons.push(`${branch}'s head ${head.slice(0, 7)} is not the revision ${env} last applied (${status.lastAppliedRevision}): ${env} has not converged to it yet`);
  return reasons;
}

/**
 * `berth promote FROM TO`: merge FROM's branch into TO's once FROM runs its branch's head Synced and
 * Healthy; push. A conflict is an error that changes nothing.
 */
export async function promoteCommand(fromEnv: string, toEnv: string, opts: PromoteOptions, out: Out): Promise<number> {
  for (const env of [fromEnv, toEnv]) requireEnv({ env });
  if (fromEnv === toEnv) throw new UsageError(`promote ${fromEnv} ${toEnv}: FROM and TO are the same environment; promotion merges one environment's branch into another's`);
  const writer = cliWriter(opts);
  // One fetch of a remote: berth.yaml at HEAD, FROM's head that is checked, and the merge all read it.
  const snapshot = await writer.snapshot();
  const [fromBranch, toBranch] = branchesAtHead(snapshot.head, writer.location, [fromEnv, toEnv]);
  if (fromBranch === toBranch) throw new UsageError(`${fromEnv} and ${toEnv} both follow branch ${fromBranch}: promotion is a merge between branches, and there is nothing to merge`);

  const head = await writer.head(fromBranch!, snapshot);
  const found = await statusOf(fromEnv, opts);
  const reasons = promotionRefusals(fromEnv, fromBranch!, head, found);
  if (reasons.length && !opts.force) {
    if (opts.output === 'json') out.print(JSON.stringify({ promoted: false, from: { env: fromEnv, branch: fromBranch, sha: head }, to: { env: toEnv, branch: toBranch }, refused: reasons }, null, 2));
    else {
      out.info(paint(out, 'red', `✖ not promoting ${fromEnv} (${fromBranch}@${head.slice(0, 7)}) into ${toEnv}:`));
      for (const r of reasons) out.info(`  - ${r}`);
      out.info(`promote once ${fromEnv} runs its branch's head Synced and Healthy (see \`berth status --env ${fromEnv}\`), or pass --force`);
    }
    return 1;
  }
  if (reasons.length && opts.output !== 'json') {
    out.info(paint(out, 'yellow', `promoting anyway (--force), although:`));
    for (const r of reasons) out.info(`  - ${r}`);
  }

  const result: MergeResult = await writer.merge({ from: fromBranch!, into: toBranch!, message: promotionMessage(fromEnv, toEnv), ...(!opts.force && { fromSha: head }) }, snapshot);
  if (opts.output === 'json') {
    out.print(JSON.stringify({ promoted: result.kind !== 'up-to-date', kind: result.kind, from: { env: fromEnv, ...result.from }, to: { env: toEnv, branch: result.into.branch, before: result.into.sha, after: result.after }, pushed: result.pushed, workTreeUpdated: result.workTreeUpdated, ...(reasons.length && { forced: reasons }) }, null, 2));
    return 0;
  }
  const from = `${fromEnv} (${fromBranch}@${result.from.sha.slice(0, 7)})`;
  if (result.kind === 'up-to-date') {
    out.print(`${toEnv} (${toBranch}) already contains ${from}: already up to date, nothing to promote`);
    return 0;
  }
  if (result.kind === 'fast-forward') out.print(`fast-forward: ${toEnv} (${toBranch}) moved to ${from}, ${result.into.sha.slice(0, 7)}..${result.after.slice(0, 7)}`);
  else out.print(`merge commit ${paint(out, 'green', result.after.slice(0, 7))} on ${toBranch}: Promote ${from} into ${toEnv} (${toBranch}@${result.into.sha.slice(0, 7)})`);
  out.print(`${movedHow(writer, toBranch!, result)}; berth converges to it as to any commit; follow it with \`berth status --env ${toEnv}\``);
  return 0;
}
