import { createHash } from 'node:crypto';

/** One file of the config repo at one commit. `id` is its Git blob id (content-addressed). */
export interface RepoFile {
  readonly path: string;
  readonly id: string;
  readonly content: string;
  /** Set when the source left the file unread (a size limit of limits.ts, or a symlink it does not follow); `content` is then empty. */
  readonly unread?: UnreadFile;
}

/**
 * Why a file was not read: it is over MAX_FILE_BYTES (`file`), or the revision's config files up to
 * and including it come to `total`, over MAX_REPO_BYTES (`repo`) (limits.ts); or it is a symlink
 * berth does not follow (`symlink`: out of the repo, broken, or to a folder in Git), `reason` saying which.
 * A refused symlink to a folder is an entry at the link's own path.
 */
export type UnreadFile =
  | { readonly limit: 'file'; readonly bytes: number }
  | { readonly limit: 'repo'; readonly bytes: number; readonly total: number }
  | { readonly limit: 'symlink'; readonly reason: string };

/** Where a revision came from. A directory read in place has no sha. */
export interface RevisionRef {
  readonly branch?: string;
  readonly sha?: string;
  readonly author?: string;
  readonly message?: string;
}

/** The files of the config repo at one commit: the input of render. */
export interface Revision {
  readonly ref: RevisionRef;
  /** Repo-relative POSIX paths → files, only the paths berth reads. */
  readonly files: ReadonlyMap<string, RepoFile>;
}

/** Formats a revision the way users see it: `branch@sha1:<40 hex>`. */
export function formatRevision(ref: RevisionRef): string {
  if (!ref.sha) return ref.branch ? `${ref.branch}@worktree` : 'worktree';
  return `${ref.branch ?? 'detached'}@sha1:${ref.sha}`;
}

/** Reads a revision as `formatRevision` writes it: `main@sha1:<40 hex>` → branch and sha (either may be missing). */
export function parseRevision(text: string | undefined): { branch?: string; sha?: string } {
  const m = /^(?:(.*)@)?sha1:([0-9a-f]{40})$/.exec(text ?? '');
  if (!m) return {};
  return { ...(m[1] && m[1] !== 'detached' && { branch: m[1] }), sha: m[2]! };
}

/** Identity of a revision: its commit, or for a plain directory a digest of its files' blob ids. */
export function revisionKey(revision: Revision): string {
  if (revision.ref.sha) return revision.ref.sha;
  const hash = createHash('sha1');
  const files = [...revision.files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of files) hash.update(`${f.path}\0${f.id}\n`);
  return `tree:${hash.digest('hex')}`;
}
