import { UsageError } from '../errors.js';
import { readDirectoryRevision } from './directory.js';
import { GitSource, isGitRepo, isRemote, type GitAuth } from './git.js';
import type { Revision } from './types.js';

/** Where revisions come from: a Git repository (local or remote) or, for development, a plain directory. */
export interface ConfigSource {
  readonly location: string;
  readonly kind: 'git' | 'directory';
  /** Remote: fetch `branch` (shallow). Local: nothing. */
  fetch(branch: string): Promise<void>;
  /** The files at `ref` (branch, tag, sha); without a ref: HEAD (Git) or the directory as it is. */
  read(ref?: string): Promise<Revision>;
  /** Local Git repository only: its gitdir (refs to watch, notes to write). */
  git?: GitSource;
}

/**
 * The revision a one-shot command works on: `ref` when given; for a Git repository and an
 * environment, the tip of the environment's branch (from berth.yaml at HEAD); else HEAD or the directory.
 */
export async function readRevision(source: ConfigSource, options: { ref?: string; env?: string; branchOf: (revision: Revision, env: string) => string | undefined }): Promise<Revision> {
  if (source.kind === 'directory') return source.read(options.ref);
  if (options.ref) {
    if (source.git?.remote) await source.fetch(options.ref);
    return source.read(options.ref);
  }
  if (source.git?.remote) await source.fetch('HEAD');
  const head = await source.read('HEAD');
  const branch = options.env ? options.branchOf(head, options.env) : undefined;
  if (!branch) return head;
  if (source.git?.remote) await source.fetch(branch);
  const revision = await source.read(branch);
  return { ...revision, ref: { ...revision.ref, branch } };
}

export async function openSource(location: string, options: { stateDir: string; auth?: GitAuth }): Promise<ConfigSource> {
  if (isRemote(location) || (await isGitRepo(location))) {
    const git = new GitSource(location, options);
    return { location: git.location, kind: 'git', fetch: (b) => git.fetch(b), read: (ref) => git.read(ref ?? 'HEAD'), git };
  }
  return {
    location,
    kind: 'directory',
    fetch: async () => {},
    read: async (ref) => {
      if (ref) throw new UsageError(`--ref ${ref} needs a Git repository, but ${location} is a plain directory`);
      return readDirectoryRevision(location);
    },
  };
}
