import { UsageError } from '../../errors.js';
import { loadRepositoryConfig } from '../../render/render.js';
import { RepoWriteError, type RepoWriter, type RevertResult } from '../../source/write.js';
import type { Revision } from '../../source/types.js';
import { cliWriter, requireEnv, type GlobalOptions } from '../context.js';
import { paint, type Out } from '../output.js';

/** Options of the commands that write to the config repo. */
export interface WriteOptions extends GlobalOptions {
  /** `Name <email>` of the commits berth makes. */
  author?: string;
}

export interface RollbackOptions extends WriteOptions {
  to?: string;
  last?: boolean;
}

/**
 * The branch of each of `envs`, from berth.yaml at HEAD (the repo's default branch): rollback and
 * promotion write to the branches the controllers follow, whatever branch the command runs from.
 */
export function branchesAtHead(head: Revision, location: string, envs: readonly string[]): string[] {
  const repo = loadRepositoryConfig(head);
  if (!repo.config) throw new UsageError(`berth.yaml at HEAD of ${location} cannot be read (${repo.problems.map((p) => p.message).join('; ')}); run \`berth validate\``);
  const environments = repo.config.environments;
  const defined = Object.keys(environments).sort();
  return envs.map((env) => {
    const branch = environments[env]?.branch;
    if (!branch) throw new UsageError(`environment "${env}" is not defined in berth.yaml at HEAD of ${location} (defined: ${defined.join(', ') || 'none'})`, { env });
    return branch;
  });
}

/** How a branch moved, for people: pushed to the remote, or moved in place (and the work tree with it). */
export function movedHow(writer: RepoWriter, branch: string, result: { pushed: boolean; workTreeUpdated: boolean }): string {
  if (result.pushed) return `pushed ${branch} to ${writer.location}`;
  return `moved ${branch} in ${writer.location}${result.workTreeUpdated ? ' (its checked-out work tree updated too)' : ''}`;
}

/**
 * `berth rollback --env ENV [--to SHA | --last]`: revert commits on the environment's branch and
 * publish them; the controller then converges to the revert as to any other commit.
 */
export async function rollbackCommand(opts: RollbackOptions, out: Out): Promise<number> {
  const env = requireEnv(opts);
  if (opts.to !== undefined && opts.last) throw new UsageError('--to SHA and --last are exclusive: --last reverts the newest commit, --to every commit after SHA');
  if (opts.to !== undefined && !opts.to.trim()) throw new UsageError('--to needs a commit id');
  const writer = cliWriter(opts, env);
  // One fetch of a remote: berth.yaml at HEAD names the branch, and the revert works on the same fetch.
  const snapshot = await writer.snapshot();
  const [branch] = branchesAtHead(snapshot.head, writer.location, [env]);
  let result: RevertResult;
  try {
    result = await writer.revert(opts.to !== undefined ? { branch: branch!, to: opts.to } : { branch: branch!, last: true }, snapshot);
  } catch (err) {
    // --to naming a commit that is not there (or not on the branch) is wrong input, not a failure.
    if (err instanceof RepoWriteError && err.code === 'E_REF' && ('to' in err.context || 'ref' in err.context)) throw new UsageError(`--to ${opts.to}: ${err.message}`, err.context);
    throw err;
  }
  const made = result.commits.filter((c) => c.sha);
  if (opts.output === 'json') {
    out.print(JSON.stringify({ env, repo: writer.location, ...result }, null, 2));
    return 0;
  }
  if (result.nothingToDo) {
    out.print(`${env}: ${result.nothingToDo}`);
    return 0;
  }
  for (const c of result.commits) {
    if (c.sha) out.print(`${paint(out, 'green', c.sha.slice(0, 7))} Revert "${c.subject}"  (reverts ${c.reverts.slice(0, 7)})`);
    else out.print(`${paint(out, 'yellow', 'skipped')} ${c.reverts.slice(0, 7)} "${c.subject}": ${c.skipped ?? ''}`);
  }
  if (!made.length) {
    out.print(`${env}: nothing to revert on ${branch}: every revert would change no file`);
    return 0;
  }
  out.print(`${made.length} revert commit${made.length === 1 ? '' : 's'} on ${branch}, ${movedHow(writer, branch!, result)} (${result.before.slice(0, 7)}..${result.after.slice(0, 7)})`);
  out.print(`berth converges to it as to any commit; follow it with \`berth status --env ${env}\``);
  return 0;
}
