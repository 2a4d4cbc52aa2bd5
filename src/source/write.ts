// Writing to the config repo: rollback is a revert commit, promotion is a merge. The controller
// follows the environment's branch, so berth only has to put the right commit there; it then
// converges to it as to any other commit.
//
// Every operation is computed first (objects written to the object store, where unreachable ones
// are harmless), and only then is one branch moved: by a push for a remote (compare-and-swap on the
// branch's old value), by a locked ref update for a local repository. An error at any point before
// that leaves the branch, the remote and the work tree as they were.

import fs from 'node:fs';
import { appendFile, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import git, { type CommitObject } from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { BerthError, UsageError, type ErrorContext } from '../errors.js';
import { authCallback, commitRef, ConfigTreeReader, initClone, isGitRepo, isRemote, localGitdir, remoteAccess, repoStateDir, resolveCommit, wrapGitError, type GitAuth, type ReadCommit } from './git.js';
import { mergeTrees, type MergeConflict, type MergeObjects } from './merge.js';
import type { Revision } from './types.js';

/**
 * Why a write to the repo changed nothing: a merge or revert conflict, a push the remote kept
 * rejecting, a work tree berth will not touch, a branch or commit that is not there.
 */
type RepoWriteCode = 'E_CONFLICT' | 'E_PUSH_REJECTED' | 'E_WORKTREE' | 'E_REF';

/** What the context of a RepoWriteError can tell beyond the branch and commit. */
interface RepoWriteContext extends ErrorContext {
  /** E_CONFLICT: every conflicting path with why. */
  conflicts?: readonly MergeConflict[];
  /** E_REF: both branches are there, but they have no commit in common (unrelated histories). */
  unrelated?: true;
}

export class RepoWriteError extends BerthError {
  declare readonly code: RepoWriteCode;
  declare readonly context: RepoWriteContext;

  constructor(code: RepoWriteCode, message: string, context: RepoWriteContext = {}, cause?: unknown) {
    super(code, message, context, cause);
  }
}

export interface RepoWriterOptions {
  /** Where the remote's write clone lives: `<stateDir>/repos/<hash>/write`. */
  stateDir: string;
  auth?: GitAuth;
  /** Author and committer of the commits berth makes: `Name <email>`; default `berth <berth@localhost>`. */
  author?: string;
  /** The environment a rollback is for, named in the revert commits' trailer. */
  env?: string;
}

type RevertSpec = { branch: string; last: true } | { branch: string; to: string };

/** One commit reverted (`sha` the revert commit) or skipped because reverting it changes nothing. */
interface RevertedCommit {
  /** The commit reverted. */
  reverts: string;
  subject: string;
  /** The revert commit made; absent when skipped. */
  sha?: string;
  /** Why it was skipped. */
  skipped?: string;
}

export interface RevertResult {
  branch: string;
  /** The branch's head before and after. */
  before: string;
  after: string;
  /** Newest first, in the order the reverts were made. */
  commits: RevertedCommit[];
  /** Set when there was nothing to revert (`to` is the head). */
  nothingToDo?: string;
  /** A remote was pushed to (false for a local repository, whose branch moved in place, or when nothing changed). */
  pushed: boolean;
  /** The local branch was checked out: its work tree and index now show the new head. */
  workTreeUpdated: boolean;
}

interface MergeSpec {
  /** Branch merged (promoted) … */
  from: string;
  /** … into this one. */
  into: string;
  /** The merge commit's message; a function gets both heads (they can change when a push race makes berth redo the merge). */
  message?: string | ((heads: { from: BranchHead; into: BranchHead }) => string);
  /** Merge only this commit of `from`: when `from`'s head is another one (it moved since it was checked), nothing is merged (E_REF). */
  fromSha?: string;
}

interface BranchHead {
  branch: string;
  sha: string;
}

/**
 * The repository at one fetch (a remote) or one look (a local repository), for a command to check
 * before it writes: handed to revert or merge, the operation works on it instead of fetching again.
 */
interface RepoSnapshot {
  /** HEAD (a remote's default branch), read as GitSource reads a commit: its berth.yaml names the environments' branches. */
  readonly head: Revision;
  /** Every branch → its newest commit. */
  readonly branches: ReadonlyMap<string, string>;
}

export interface MergeResult {
  kind: 'fast-forward' | 'merge' | 'up-to-date';
  from: BranchHead;
  /** `into` before the merge. */
  into: BranchHead;
  /** `into`'s head after: `from`'s head (fast-forward), the merge commit, or unchanged. */
  after: string;
  pushed: boolean;
  workTreeUpdated: boolean;
}

/** A branch to move from one commit to another; `what` goes to the reflog of a local repository. */
interface RefUpdate {
  branch: string;
  from: string;
  to: string;
  what: string;
}

/** One branch moved by an operation, and what the operation reports. */
interface Planned<R> {
  update?: RefUpdate;
  result: R;
}

/** A branch's head, with its commit when that has been read already. */
interface Tip extends BranchHead {
  commit?: CommitObject;
}

/** What merging a branch into another comes to, before anything moves. */
type PlannedMerge = { kind: 'up-to-date' } | { kind: 'fast-forward' } | { kind: 'merge'; tree: string };

/** The branch moved while berth worked (someone pushed): the operation is redone once on the new head. */
class BranchMoved extends Error {
  constructor(readonly branch: string, readonly why: string) {
    super(why);
  }
}

const DEFAULT_AUTHOR = 'berth <berth@localhost>';

/** `Name <email>` → its parts; a usage error otherwise. */
function parseAuthor(text: string): { name: string; email: string } {
  const m = /^\s*([^<>]*?)\s*<([^<>\s]*)>\s*$/.exec(text);
  if (!m?.[1] || m[2] === undefined) throw new UsageError(`author ${JSON.stringify(text)} is not "Name <email>"`);
  return { name: m[1], email: m[2] };
}

/** The first line of a commit message, as `git revert` quotes it. */
function subjectOf(message: string): string {
  return message.replace(/^\n+/, '').split('\n')[0] ?? '';
}

/** `git revert`'s message for `commit`, plus a trailer naming berth (and the environment). */
function revertMessage(sha: string, commit: Pick<CommitObject, 'message' | 'parent'>, env?: string): string {
  const body = commit.parent.length > 1 ? `This reverts commit ${sha}, reversing\nchanges made to ${commit.parent[0]}.` : `This reverts commit ${sha}.`;
  return `Revert "${subjectOf(commit.message)}"\n\n${body}\n\nReverted-by: berth${env ? ` rollback --env ${env}` : ''}\n`;
}

/** A promotion's merge message: both environments and revisions in the subject, the full shas in the body. */
export function promotionMessage(fromEnv: string, intoEnv: string): (heads: { from: BranchHead; into: BranchHead }) => string {
  return ({ from, into }) =>
    `Promote ${fromEnv} (${from.branch}@${from.sha.slice(0, 7)}) into ${intoEnv} (${into.branch}@${into.sha.slice(0, 7)})\n\n` +
    `${fromEnv}: ${from.branch}@sha1:${from.sha}\n${intoEnv}: ${into.branch}@sha1:${into.sha}\n\nPromoted-by: berth promote ${fromEnv} ${intoEnv}\n`;
}

function defaultMergeMessage({ from, into }: { from: BranchHead; into: BranchHead }): string {
  return `Merge branch '${from.branch}' into ${into.branch}\n\n${from.branch}@sha1:${from.sha}\n${into.branch}@sha1:${into.sha}\n\nMerged-by: berth\n`;
}

function conflictList(conflicts: readonly MergeConflict[]): string {
  return conflicts.map((c) => `\n  ${c.path} (${c.kind}): ${c.message}`).join('');
}

/**
 * Makes commits on a branch of the config repo and publishes them: revert (rollback), merge
 * (promotion). A remote is worked on in a full clone of berth's own, fetched fresh before every
 * operation (or once for a snapshot and the operation handed it) and pushed with a compare-and-swap on the branch; a push rejected because the branch
 * moved is redone once on the new head. A local repository is written in place; a checked-out
 * branch's work tree and index follow, and a work tree with changes is refused.
 */
export class RepoWriter {
  readonly location: string;
  readonly remote: boolean;
  readonly #onAuth: () => { username: string; password: string } | undefined;
  readonly #gitdir: string;
  /** Local non-bare repository: its work tree. */
  readonly #workTree: string | undefined;
  readonly #cache = {};
  /** Reads merge previews; its blob cache carries over from one preview to the next. */
  readonly #files: ConfigTreeReader;
  readonly #author: { name: string; email: string };
  readonly #env: string | undefined;

  constructor(location: string, options: RepoWriterOptions) {
    this.remote = isRemote(location);
    const access = remoteAccess(location, options.auth);
    this.location = access.location;
    this.#onAuth = authCallback(access.auth);
    this.#author = parseAuthor(options.author ?? DEFAULT_AUTHOR);
    this.#env = options.env;
    if (this.remote) {
      this.#gitdir = path.join(repoStateDir(options.stateDir, this.location), 'write');
    } else {
      this.#gitdir = localGitdir(this.location);
      if (this.#gitdir !== this.location) this.#workTree = this.location;
    }
    this.#files = new ConfigTreeReader(this.#gitdir, this.#cache);
  }

  /** Fetches a remote afresh (once), then reads HEAD and the head of every branch. */
  async snapshot(): Promise<RepoSnapshot> {
    const fetched = await this.#sync('HEAD');
    const sha = fetched ?? (await git.resolveRef({ fs, gitdir: this.#gitdir, ref: 'HEAD' }).catch(() => undefined));
    if (!sha) throw new RepoWriteError('E_REF', `HEAD not found in ${this.location}: the repository has no commit yet`, { branch: 'HEAD' });
    const head = await this.#commit(sha);
    const branches = new Map<string, string>();
    for (const branch of await git.listBranches({ fs, gitdir: this.#gitdir, ...(this.remote && { remote: 'origin' }) })) {
      const at = branch === 'HEAD' ? undefined : await this.#branchHead(branch);
      if (at) branches.set(branch, at);
    }
    try {
      return { head: { ref: commitRef(sha, head), files: await this.#files.read(head.tree) }, branches };
    } catch (err) {
      throw wrapGitError(err, `reading commit ${sha}`, this.location, { sha });
    }
  }

  /**
   * Reverts the branch's newest commit (`last`), or every first-parent commit after `to`, newest
   * first: one revert commit each. With `snapshot`, works on it instead of fetching again.
   */
  async revert(spec: RevertSpec, snapshot?: RepoSnapshot): Promise<RevertResult> {
    return this.#transact([spec.branch], snapshot, async (heads) => {
      const head = heads.get(spec.branch)!;
      const top = { sha: head, commit: await this.#commit(head) };
      const { chain, base } = 'last' in spec ? { chain: [top], base: await this.#firstParent(top.commit) } : await this.#commitsAfter(spec.branch, top, spec.to);
      const result: RevertResult = { branch: spec.branch, before: head, after: head, commits: [], pushed: false, workTreeUpdated: false };
      if (!chain.length) return { result: { ...result, nothingToDo: `${spec.branch} is at ${head.slice(0, 7)} already: nothing to revert` } };
      const objects = this.#objects();
      let current = head;
      let currentTree = top.commit.tree;
      for (const [i, { sha, commit }] of chain.entries()) {
        // A merge commit is reverted against its first parent, as `git revert -m 1` does: the next one of the chain.
        const parentTree = (chain[i + 1] ?? base)?.commit.tree;
        const merged = await mergeTrees({ base: commit.tree, ours: currentTree, theirs: parentTree }, objects);
        if (!merged.ok) {
          throw new RepoWriteError('E_CONFLICT', `reverting ${sha.slice(0, 7)} "${subjectOf(commit.message)}" on ${spec.branch} conflicts with later changes; nothing was changed. Conflicting files:${conflictList(merged.conflicts)}`, { branch: spec.branch, commit: sha, conflicts: merged.conflicts });
        }
        const subject = subjectOf(commit.message);
        if (merged.tree === currentTree) {
          result.commits.push({ reverts: sha, subject, skipped: 'reverting it changes no file (already reverted?)' });
          continue;
        }
        current = await this.#writeCommit(merged.tree, [current], revertMessage(sha, commit, this.#env));
        currentTree = merged.tree;
        result.commits.push({ reverts: sha, subject, sha: current });
      }
      result.after = current;
      return current === head ? { result } : { update: { branch: spec.branch, from: head, to: current, what: `revert ${'last' in spec ? 'the last commit' : `to ${spec.to}`}` }, result };
    });
  }

  /**
   * Merges `from` into `into` (promotion): a fast-forward when it can, else a merge commit (parents
   * into, from). With `snapshot`, works on it instead of fetching again.
   */
  async merge(spec: MergeSpec, snapshot?: RepoSnapshot): Promise<MergeResult> {
    if (spec.from === spec.into) throw new UsageError(`cannot merge branch ${spec.from} into itself`);
    return this.#transact<MergeResult>([spec.into, spec.from], snapshot, async (heads) => {
      const from = { branch: spec.from, sha: heads.get(spec.from)! };
      const into = { branch: spec.into, sha: heads.get(spec.into)! };
      if (spec.fromSha !== undefined && spec.fromSha !== from.sha) {
        throw new RepoWriteError('E_REF', `${spec.from} moved to ${from.sha.slice(0, 7)} after ${spec.fromSha.slice(0, 7)} was checked; nothing was merged: check it and promote again`, { branch: spec.from, expected: spec.fromSha, actual: from.sha });
      }
      const planned = await this.#plannedMerge(into, from);
      const base = { from, into, pushed: false, workTreeUpdated: false };
      if (planned.kind === 'up-to-date') return { result: { ...base, kind: 'up-to-date', after: into.sha } };
      if (planned.kind === 'fast-forward') return { update: { branch: spec.into, from: into.sha, to: from.sha, what: `merge ${spec.from}: fast-forward` }, result: { ...base, kind: 'fast-forward', after: from.sha } };
      const message = typeof spec.message === 'function' ? spec.message({ from, into }) : (spec.message ?? defaultMergeMessage({ from, into }));
      const sha = await this.#writeCommit(planned.tree, [into.sha, from.sha], message.endsWith('\n') ? message : message + '\n');
      return { update: { branch: spec.into, from: into.sha, to: sha, what: `merge ${spec.from}` }, result: { ...base, kind: 'merge', after: sha } };
    });
  }

  /** The newest commit of `branch` in `snapshot` (E_REF when it has no such branch). */
  async head(branch: string, snapshot: RepoSnapshot): Promise<string> {
    return (await this.#prepare([branch], snapshot)).get(branch)!;
  }

  /**
   * What `into` would hold after merging `from`: the merged tree's config files, read exactly as
   * GitSource reads a commit. Nothing moves and nothing is pushed. `ref` names `from`'s head.
   */
  async previewMerge(into: string, from: string): Promise<Revision> {
    const heads = await this.#prepare([into, from]);
    const intoSha = heads.get(into)!;
    const fromSha = heads.get(from)!;
    const source = { branch: from, sha: fromSha, commit: await this.#commit(fromSha) };
    const planned = await this.#plannedMerge({ branch: into, sha: intoSha }, source);
    const tree = planned.kind === 'merge' ? planned.tree : planned.kind === 'fast-forward' ? source.commit.tree : (await this.#commit(intoSha)).tree;
    try {
      const files = await this.#files.read(tree);
      return { ref: commitRef(source.sha, source.commit, from), files };
    } catch (err) {
      throw wrapGitError(err, `reading the merge of ${from} into ${into}`, this.location, { into, from });
    }
  }

  /** What merging `from` into `into` comes to; a head given with its commit is not read again. */
  async #plannedMerge(intoHead: Tip, fromHead: Tip): Promise<PlannedMerge> {
    const { branch: into, sha: intoSha } = intoHead;
    const { branch: from, sha: fromSha } = fromHead;
    const base = { fs, gitdir: this.#gitdir, cache: this.#cache };
    if (fromSha === intoSha || (await git.isDescendent({ ...base, oid: intoSha, ancestor: fromSha, depth: -1 }))) return { kind: 'up-to-date' };
    if (await git.isDescendent({ ...base, oid: fromSha, ancestor: intoSha, depth: -1 })) return { kind: 'fast-forward' };
    const bases = (await git.findMergeBase({ ...base, oids: [intoSha, fromSha] })) as string[];
    if (bases.length === 0) throw new RepoWriteError('E_REF', `${from} and ${into} have no commit in common; berth merges only branches with a common history`, { from, into, unrelated: true });
    if (bases.length > 1) {
      throw new RepoWriteError('E_CONFLICT', `${from} and ${into} have ${bases.length} merge bases (criss-cross merges: ${bases.map((b) => b.slice(0, 7)).join(', ')}); merge them by hand once, then promote again`, { from, into });
    }
    const treeOf = async (tip: { sha: string; commit?: CommitObject }) => (tip.commit ?? (await this.#commit(tip.sha))).tree;
    const [intoTree, fromTree, baseTree] = await Promise.all([treeOf(intoHead), treeOf(fromHead), treeOf({ sha: bases[0]! })]);
    const merged = await mergeTrees({ base: baseTree, ours: intoTree, theirs: fromTree }, this.#objects());
    if (!merged.ok) {
      throw new RepoWriteError('E_CONFLICT', `merging ${from} (${fromSha.slice(0, 7)}) into ${into} (${intoSha.slice(0, 7)}) conflicts; nothing was changed. Conflicting files:${conflictList(merged.conflicts)}`, { from, into, commit: fromSha, conflicts: merged.conflicts });
    }
    return { kind: 'merge', tree: merged.tree };
  }

  /**
   * The first-parent chain from `head` down to (not including) `to`, newest first, and `to` itself
   * (the parent of the chain's last commit): each commit read once.
   */
  async #commitsAfter(branch: string, head: ReadCommit, to: string): Promise<{ chain: ReadCommit[]; base: ReadCommit }> {
    const found = await resolveCommit(this.#gitdir, this.#cache, to, [to]);
    if (!found) throw new RepoWriteError('E_REF', `commit ${to} not found in ${this.location}`, { ref: to });
    const base = { sha: found.sha, commit: found.commit };
    const chain: ReadCommit[] = [];
    for (let at = head; at.sha !== base.sha; ) {
      chain.push(at);
      const parent = at.commit.parent[0] === base.sha ? base : await this.#firstParent(at.commit);
      if (!parent) throw new RepoWriteError('E_REF', `${to} is not on the first-parent history of branch ${branch} (head ${head.sha.slice(0, 7)}); --to takes a commit the branch was at`, { branch, to });
      at = parent;
    }
    return { chain, base };
  }

  /** The first parent of `commit`, read; undefined for a root commit. */
  async #firstParent(commit: CommitObject): Promise<ReadCommit | undefined> {
    const sha = commit.parent[0];
    return sha === undefined ? undefined : { sha, commit: await this.#commit(sha) };
  }

  async #commit(sha: string): Promise<CommitObject> {
    return (await git.readCommit({ fs, gitdir: this.#gitdir, oid: sha, cache: this.#cache })).commit;
  }

  async #writeCommit(tree: string, parent: string[], message: string): Promise<string> {
    const now = new Date();
    const who = { ...this.#author, timestamp: Math.floor(now.getTime() / 1000), timezoneOffset: now.getTimezoneOffset() };
    return git.writeCommit({ fs, gitdir: this.#gitdir, commit: { tree, parent, author: who, committer: who, message } });
  }

  #objects(): MergeObjects {
    const gitdir = this.#gitdir;
    const cache = this.#cache;
    return {
      readTree: async (oid) => (await git.readTree({ fs, gitdir, oid, cache })).tree,
      readBlob: async (oid) => (await git.readBlob({ fs, gitdir, oid, cache })).blob,
      writeBlob: (blob) => git.writeBlob({ fs, gitdir, blob }),
      writeTree: (tree) => git.writeTree({ fs, gitdir, tree: [...tree] }),
    };
  }

  /**
   * Runs `op` on the current heads of `branches` and publishes the one branch it moves. When the
   * branch moved meanwhile (a push rejected, a local ref changed), the operation is redone once.
   */
  async #transact<R extends { pushed: boolean; workTreeUpdated: boolean }>(branches: string[], snapshot: RepoSnapshot | undefined, op: (heads: ReadonlyMap<string, string>) => Promise<Planned<R>>): Promise<R> {
    let moved: BranchMoved | undefined;
    for (let attempt = 1; attempt <= 2; attempt++) {
      // The first attempt works on the snapshot when there is one; a redo fetches afresh.
      const heads = await this.#prepare(branches, attempt === 1 ? snapshot : undefined);
      const { update, result } = await op(heads);
      if (!update) return result;
      try {
        if (this.remote) {
          await this.#push(update);
          return { ...result, pushed: true };
        }
        return { ...result, workTreeUpdated: await this.#moveLocal(update) };
      } catch (err) {
        if (!(err instanceof BranchMoved)) throw err;
        moved = err;
      }
    }
    throw new RepoWriteError('E_PUSH_REJECTED', `${moved!.branch} kept moving while berth wrote to it (${moved!.why}); redone once, then gave up; nothing was changed. Try again`, { branch: moved!.branch });
  }

  /** The heads of `branches`: in `snapshot` when given, else as they are now (a remote fetched afresh). */
  async #prepare(branches: readonly string[], snapshot?: RepoSnapshot): Promise<Map<string, string>> {
    if (!snapshot) await this.#sync(branches[0]!);
    const heads = new Map<string, string>();
    for (const branch of branches) {
      const sha = snapshot ? snapshot.branches.get(branch) : await this.#branchHead(branch);
      if (!sha) throw new RepoWriteError('E_REF', `branch ${branch} not found in ${this.location}`, { branch });
      heads.set(branch, sha);
    }
    return heads;
  }

  /** The newest commit of `branch` in the clone (a remote's, as of the last fetch). */
  async #branchHead(branch: string): Promise<string | undefined> {
    const ref = this.remote ? `refs/remotes/origin/${branch}` : `refs/heads/${branch}`;
    return git.resolveRef({ fs, gitdir: this.#gitdir, ref }).catch(() => undefined);
  }

  /** A remote: fetched afresh, returning where `ref` is there. A local repository: checked to be one. */
  async #sync(ref: string): Promise<string | undefined> {
    if (this.remote) return this.#fetch(ref);
    if (!(await isGitRepo(this.location))) throw new UsageError(`${this.location} is a plain directory: rollback and promotion write commits, so the config repo must be a Git repository (a local one or an HTTP(S) URL)`);
    return undefined;
  }

  /** Fetches every branch of the remote, full history; returns the commit `branch` is at there. */
  async #fetch(branch: string): Promise<string | undefined> {
    try {
      await initClone(this.#gitdir, this.location);
      const result = await git.fetch({ fs, http, gitdir: this.#gitdir, cache: this.#cache, onAuth: this.#onAuth, url: this.location, remote: 'origin', ref: branch, singleBranch: false, tags: false, prune: true });
      return result.fetchHead ?? undefined;
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFoundError' && /refs?\b|Could not find/.test(String((err as Error).message))) {
        throw new RepoWriteError('E_REF', `branch ${branch} not found in ${this.location}`, { branch }, err);
      }
      throw wrapGitError(err, 'fetching for a write', this.location, { branch });
    }
  }

  /** Pushes `to` to the remote branch only if the branch is still at `from` (else BranchMoved). */
  async #push(update: RefUpdate): Promise<void> {
    const local = `refs/heads/${update.branch}`;
    await git.writeRef({ fs, gitdir: this.#gitdir, ref: local, value: update.to, force: true });
    try {
      // onPrePush sees the branch as the server has it now: anything but the head berth worked on means it moved.
      await git.push({ fs, http, gitdir: this.#gitdir, cache: this.#cache, onAuth: this.#onAuth, url: this.location, remote: 'origin', ref: local, remoteRef: local, onPrePush: ({ remoteRef }) => remoteRef.oid === update.from });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'UserCanceledError' || code === 'PushRejectedError') throw new BranchMoved(update.branch, 'a push to it landed first');
      if (code === 'GitPushError') throw new BranchMoved(update.branch, `the server refused the update: ${(err as Error).message.replace(/\s+/g, ' ').trim()}`);
      throw wrapGitError(err, `pushing ${update.branch}`, this.location, { branch: update.branch });
    }
  }

  /**
   * Moves a local branch from `from` to `to` under Git's ref lock; when the branch is checked out,
   * first checks its work tree (changes to tracked files, untracked files in the way) and then
   * brings work tree and index to `to`. Returns whether a work tree was updated.
   */
  async #moveLocal(update: RefUpdate): Promise<boolean> {
    const checkedOut = await this.#checkedOutWorkTree(update.branch);
    if (checkedOut) await this.#checkWorkTree(checkedOut, update);
    await this.#casRef(`refs/heads/${update.branch}`, update.from, update.to);
    await this.#reflog(`refs/heads/${update.branch}`, update, checkedOut !== undefined);
    if (checkedOut) await this.#reflog('HEAD', update, true);
    if (!checkedOut) return false;
    try {
      await git.checkout({ fs, dir: checkedOut, gitdir: this.#gitdir, cache: this.#cache, ref: update.to, noUpdateHead: true });
      return true;
    } catch (err) {
      // Put the branch back: a half-updated work tree next to a moved branch is the worst of both.
      await this.#casRef(`refs/heads/${update.branch}`, update.to, update.from).catch(() => {});
      await git.checkout({ fs, dir: checkedOut, gitdir: this.#gitdir, cache: this.#cache, ref: update.from, noUpdateHead: true, force: true }).catch(() => {});
      throw new RepoWriteError('E_WORKTREE', `updating the work tree of ${checkedOut} to ${update.to.slice(0, 7)} failed; branch ${update.branch} was put back at ${update.from.slice(0, 7)}`, { branch: update.branch }, err);
    }
  }

  /** The work tree that has `branch` checked out, if any; a linked work tree (git worktree) is refused. */
  async #checkedOutWorkTree(branch: string): Promise<string | undefined> {
    const linked = path.join(this.#gitdir, 'worktrees');
    for (const name of await readdir(linked).catch(() => [] as string[])) {
      const head = await readFile(path.join(linked, name, 'HEAD'), 'utf8').catch(() => '');
      if (head.trim() === `ref: refs/heads/${branch}`) {
        throw new RepoWriteError('E_WORKTREE', `branch ${branch} is checked out in the linked work tree "${name}" of ${this.location}; berth does not update linked work trees: switch it to another branch first`, { branch });
      }
    }
    if (!this.#workTree) return undefined;
    const current = await git.currentBranch({ fs, gitdir: this.#gitdir, fullname: true }).catch(() => undefined);
    return current === `refs/heads/${branch}` ? this.#workTree : undefined;
  }

  /** Refuses a work tree with changes to tracked files, or with untracked files the new commit would overwrite. */
  async #checkWorkTree(dir: string, update: RefUpdate): Promise<void> {
    const changed: string[] = [];
    for (const [file, head, workdir, stage] of await git.statusMatrix({ fs, dir, gitdir: this.#gitdir, cache: this.#cache })) {
      if (head === 0 && stage === 0) continue; // untracked
      if (head === 1 && workdir === 1 && stage === 1) continue; // unchanged
      changed.push(`${file} (${stage === 0 ? 'removed from the index' : workdir === 0 ? 'deleted' : head === 0 ? 'added' : 'modified'})`);
    }
    if (changed.length) {
      throw new RepoWriteError('E_WORKTREE', `branch ${update.branch} is checked out in ${dir}, which has changes to tracked files: ${changed.join(', ')}; commit or discard them first (berth changed nothing)`, { branch: update.branch, files: changed });
    }
    try {
      await git.checkout({ fs, dir, gitdir: this.#gitdir, cache: this.#cache, ref: update.to, noUpdateHead: true, dryRun: true });
    } catch (err) {
      const files = (err as { data?: { filepaths?: string[] } }).data?.filepaths;
      throw new RepoWriteError('E_WORKTREE', `branch ${update.branch} is checked out in ${dir}, where files not in Git are in the way of the new commit${files?.length ? `: ${files.join(', ')}` : ''}; move them away first (berth changed nothing)`, { branch: update.branch, ...(files && { files }) }, err);
    }
  }

  /**
   * Records the move in the branch's reflog, as git does (so `git reflog` shows it and can undo it):
   * when the branch has a reflog, or for a checked-out branch (git's core.logAllRefUpdates default).
   */
  async #reflog(ref: string, update: RefUpdate, create: boolean): Promise<void> {
    const file = path.join(this.#gitdir, 'logs', ref);
    if (!create && !fs.existsSync(file)) return;
    const now = new Date();
    const offset = -now.getTimezoneOffset();
    const tz = `${offset < 0 ? '-' : '+'}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}${String(Math.abs(offset) % 60).padStart(2, '0')}`;
    const line = `${update.from} ${update.to} ${this.#author.name} <${this.#author.email}> ${Math.floor(now.getTime() / 1000)} ${tz}\tberth: ${update.what}\n`;
    // The branch has moved already; a reflog that cannot be written is not worth failing for.
    await mkdir(path.dirname(file), { recursive: true }).then(() => appendFile(file, line)).catch(() => {});
  }

  /** Git's ref update protocol: create `<ref>.lock` exclusively, check the old value, rename the lock over the ref. */
  async #casRef(ref: string, from: string, to: string): Promise<void> {
    const file = path.join(this.#gitdir, ref);
    const lock = `${file}.lock`;
    await mkdir(path.dirname(file), { recursive: true });
    let handle;
    let renamed = false;
    try {
      handle = await open(lock, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BranchMoved(ref.replace('refs/heads/', ''), `${lock} exists: another Git process is updating it`);
      throw err;
    }
    try {
      const current = await git.resolveRef({ fs, gitdir: this.#gitdir, ref }).catch(() => undefined);
      if (current !== from) throw new BranchMoved(ref.replace('refs/heads/', ''), `it is at ${current?.slice(0, 7) ?? 'nothing'} now`);
      await handle.writeFile(`${to}\n`);
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(lock, file);
      renamed = true;
    } finally {
      await handle?.close();
      // Once renamed, a lock file there is another process's.
      if (!renamed) await rm(lock, { force: true });
    }
  }
}
