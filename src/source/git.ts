import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import git, { type CommitObject } from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { BerthError } from '../errors.js';
import { ReadBudget, readingOrder } from './limits.js';
import type { RepoFile, Revision, RevisionRef } from './types.js';

export class GitError extends BerthError {
  /** Network or server trouble worth retrying, as opposed to a wrong ref or bad credentials. */
  readonly transient: boolean;

  constructor(message: string, context: Record<string, unknown>, cause?: unknown, transient = false) {
    super('E_GIT', message, context, cause);
    this.transient = transient;
  }
}

export interface GitAuth {
  username?: string;
  token?: string;
}

const CONFIG_PREFIXES = ['apps/', 'overlays/', 'plugins/'];
const CONFIG_ROOT_FILES = new Set(['berth.yaml', 'berth.yml']);
/** Git's mode of a symbolic link: its blob holds the target path. */
const SYMLINK_MODE = '120000';

/** `https://user:secret@host/x.git` → `https://host/x.git`: URLs are logged and reported only like this. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/** True for an HTTP(S) URL: a remote berth clones; anything else is a local path. */
export function isRemote(location: string): boolean {
  return /^https?:\/\//.test(location);
}

/** True when `dir` is a Git work tree root or a bare repository. */
export async function isGitRepo(dir: string): Promise<boolean> {
  for (const p of [path.join(dir, '.git'), path.join(dir, 'HEAD')]) {
    try {
      await stat(p);
      if (p.endsWith('HEAD')) await stat(path.join(dir, 'objects'));
      return true;
    } catch {
      // not this layout
    }
  }
  return false;
}

/** Credentials for a remote: `--git-token`/`--git-username`, or those written in the URL (which is then redacted). */
export function remoteAccess(location: string, auth: GitAuth = {}): { location: string; auth: GitAuth } {
  if (!isRemote(location)) return { location: path.resolve(location), auth: { ...auth } };
  const u = new URL(location);
  const fromUrl = u.username || u.password ? { username: decodeURIComponent(u.username) || auth.username, token: decodeURIComponent(u.password) || auth.token } : auth;
  return { location: redactUrl(location), auth: { ...(fromUrl.username && { username: fromUrl.username }), ...(fromUrl.token && { token: fromUrl.token }) } };
}

/** isomorphic-git's onAuth for `auth`: the token as a password, never part of a URL or a message. */
export function authCallback(auth: GitAuth): () => { username: string; password: string } | undefined {
  return () => (auth.token ? { username: auth.username ?? 'x-access-token', password: auth.token } : undefined);
}

/** Where berth keeps its clones of a remote: `<stateDir>/repos/<hash of the redacted URL>`. */
export function repoStateDir(stateDir: string, location: string): string {
  return path.join(stateDir, 'repos', createHash('sha1').update(location).digest('hex').slice(0, 16));
}

/** The gitdir of a local repository: `<dir>/.git` for a work tree, else `dir` itself (bare). */
export function localGitdir(dir: string): string {
  return fs.existsSync(path.join(dir, '.git')) ? path.join(dir, '.git') : dir;
}

/**
 * Makes `gitdir` a repository whose `origin` is `url`, unless it is one already: the clone berth
 * fetches a remote into. `url` is the redacted URL: credentials reach the server only through onAuth.
 * Bare when `dir` is `gitdir` itself.
 */
export async function initClone(gitdir: string, url: string, dir = gitdir): Promise<void> {
  if (fs.existsSync(path.join(gitdir, 'config'))) return;
  await mkdir(dir, { recursive: true });
  await git.init({ fs, dir, gitdir, bare: dir === gitdir });
  await git.addRemote({ fs, dir, gitdir, remote: 'origin', url });
}

/** A commit and its id, read once and passed on. */
export interface ReadCommit {
  sha: string;
  commit: CommitObject;
}

/**
 * Resolves `ref` to a commit, read once: the first of `refs` that exists (an annotated tag peeled),
 * else `ref` as an (abbreviated) commit id; undefined when none is a commit. `via` is the ref matched.
 */
export async function resolveCommit(gitdir: string, cache: object, ref: string, refs: readonly string[]): Promise<(ReadCommit & { via?: string }) | undefined> {
  const readCommit = async (oid: string) => (await git.readCommit({ fs, gitdir, oid, cache })).commit;
  for (const candidate of refs) {
    try {
      const oid = await git.resolveRef({ fs, gitdir, ref: candidate });
      const commit = await readCommit(oid).catch(() => undefined);
      if (commit) return { sha: oid, commit, via: candidate };
      const sha = (await git.readTag({ fs, gitdir, oid })).tag.object;
      return { sha, commit: await readCommit(sha), via: candidate };
    } catch {
      // try the next form
    }
  }
  if (!/^[0-9a-f]{4,40}$/i.test(ref)) return undefined;
  try {
    const sha = await git.expandOid({ fs, gitdir, oid: ref.toLowerCase(), cache });
    return { sha, commit: await readCommit(sha) };
  } catch {
    return undefined;
  }
}

/** Sorts an isomorphic-git error at the edge: authentication, a missing object or ref, or transient trouble. */
export function wrapGitError(err: unknown, action: string, location: string, context: Record<string, unknown>): GitError {
  if (err instanceof GitError) return err;
  const e = err as { code?: string; message?: string; data?: { statusCode?: number } };
  const status = e.data?.statusCode;
  const msg = (e.message ?? String(err)).replaceAll(/\/\/[^@/\s]*@/g, '//');
  if (status === 401 || status === 403) return new GitError(`${action}: authentication failed (HTTP ${status}) for ${location}; check --git-token`, context);
  if (e.code === 'NotFoundError') return new GitError(`${action}: ${msg}`, context);
  const transient = status === undefined || status >= 500 || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|socket hang up/.test(msg);
  return new GitError(`${action} (${location}): ${msg}`, context, undefined, transient);
}

/**
 * Reads the config files of a tree from the object store, the one way every revision of a Git repo
 * is read (GitSource.read, RepoWriter.snapshot, a merge preview): only berth.yaml, apps/, overlays/ and plugins/; size
 * limits (limits.ts) checked before a blob is decoded; symlinks followed only to YAML files in the
 * tree. Blobs are cached by id between reads, so a new tree reads only what changed.
 */
export class ConfigTreeReader {
  readonly #gitdir: string;
  readonly #cache: object;
  #blobs = new Map<string, { content: string; bytes: number }>();
  /** Blob reads of the last tree: a one-file commit reads one. */
  lastBlobReads = 0;

  constructor(gitdir: string, cache: object = {}) {
    this.#gitdir = gitdir;
    this.#cache = cache;
  }

  /** The config files of tree `treeOid`, by path in reading order. */
  async read(treeOid: string): Promise<Map<string, RepoFile>> {
    const entries: { path: string; oid: string; refused?: string }[] = [];
    const walkTree = async (oid: string, prefix: string): Promise<void> => {
      const { tree } = await git.readTree({ fs, gitdir: this.#gitdir, oid, cache: this.#cache });
      for (const e of tree) {
        const p = prefix + e.path;
        const config = CONFIG_PREFIXES.some((c) => (p + '/').startsWith(c) || c.startsWith(p + '/'));
        if (e.type === 'tree') {
          if (config) await walkTree(e.oid, p + '/');
        } else if (e.type === 'blob' && e.mode === SYMLINK_MODE && (prefix || config || CONFIG_ROOT_FILES.has(e.path))) {
          entries.push({ path: p, ...(await this.#followLink(treeOid, p, e.oid)) });
        } else if (e.type === 'blob' && (prefix ? /\.ya?ml$/.test(e.path) : CONFIG_ROOT_FILES.has(e.path))) {
          entries.push({ path: p, oid: e.oid });
        }
      }
    };
    await walkTree(treeOid, '');
    const next = new Map<string, { content: string; bytes: number }>();
    this.lastBlobReads = 0;
    const read = new Map<string, RepoFile>();
    // A blob over a limit (limits.ts) is never decoded or parsed; a loose one is not even inflated.
    const budget = new ReadBudget();
    for (const e of entries.sort((a, b) => readingOrder(a.path, b.path))) {
      if (e.refused !== undefined) {
        read.set(e.path, { path: e.path, id: e.oid, content: '', unread: { limit: 'symlink', reason: e.refused } });
        continue;
      }
      let known = this.#blobs.get(e.oid);
      let blob: Uint8Array | undefined;
      const bytes = known?.bytes ?? (await this.#looseBlobSize(e.oid)) ?? (blob = await this.#readBlob(e.oid)).length;
      const unread = budget.admit(bytes);
      if (unread) {
        read.set(e.path, { path: e.path, id: e.oid, content: '', unread });
        continue;
      }
      known ??= { content: Buffer.from(blob ?? (await this.#readBlob(e.oid))).toString('utf8'), bytes };
      next.set(e.oid, known);
      read.set(e.path, { path: e.path, id: e.oid, content: known.content });
    }
    this.#blobs = next;
    return new Map([...read].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  async #readBlob(oid: string): Promise<Uint8Array> {
    this.lastBlobReads++;
    return (await git.readBlob({ fs, gitdir: this.#gitdir, oid, cache: this.#cache })).blob;
  }

  /**
   * The size of a blob stored as a loose object, from the header at the start of its compressed
   * file (`blob <size>\0`), without inflating the rest; undefined when it is packed (or unreadable).
   */
  async #looseBlobSize(oid: string): Promise<number | undefined> {
    let handle;
    try {
      handle = await open(path.join(this.#gitdir, 'objects', oid.slice(0, 2), oid.slice(2)), 'r');
    } catch {
      return undefined;
    }
    try {
      // The header is the first few bytes inflated; a little of the stream is enough for it.
      for (const take of [64, 1024]) {
        const { buffer, bytesRead } = await handle.read(Buffer.alloc(take), 0, take, 0);
        let head: Buffer;
        try {
          head = inflateSync(buffer.subarray(0, bytesRead), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
        } catch {
          return undefined;
        }
        const header = /^blob (\d+)\0/.exec(head.subarray(0, 32).toString('latin1'));
        if (header) return Number(header[1]);
        if (bytesRead < take) return undefined;
      }
      return undefined;
    } finally {
      await handle.close();
    }
  }

  /**
   * The blob a symlink of the tree leads to, when it stays inside the repo and ends at a file;
   * otherwise why it is refused (berth never reads outside the repo, never skips silently: render
   * reports the link at its own path).
   */
  async #followLink(treeOid: string, link: string, oid: string): Promise<{ oid: string; refused?: string }> {
    const { blob } = await git.readBlob({ fs, gitdir: this.#gitdir, oid, cache: this.#cache });
    const target = Buffer.from(blob).toString('utf8');
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(link), target));
    if (path.posix.isAbsolute(target) || resolved === '..' || resolved.startsWith('../')) {
      return { oid, refused: `symlink ${link} points outside the config repo (to ${target}); berth follows symlinks only within the repo` };
    }
    let blobOid: string;
    try {
      blobOid = (await git.readBlob({ fs, gitdir: this.#gitdir, oid: treeOid, filepath: resolved, cache: this.#cache })).oid;
    } catch {
      return { oid, refused: `symlink ${link} leads to ${resolved}, which is not a file in this commit (links to folders are not followed in Git repos); fix or remove it` };
    }
    // Only to a config file: never to another file of the repo (a .env, a token file).
    if (!/\.ya?ml$/.test(resolved)) return { oid, refused: `symlink ${link} leads to ${resolved}, which is not a YAML file; berth follows links only to .yaml/.yml files` };
    return { oid: blobOid };
  }
}

/** A commit as a revision names it: sha, branch, author and subject. */
export function commitRef(sha: string, commit: CommitObject, branch?: string): RevisionRef {
  return { sha, ...(branch && { branch }), author: `${commit.author.name} <${commit.author.email}>`, message: commit.message.trim().split('\n')[0] ?? '' };
}

/**
 * Reads revisions from Git objects (never a work tree): a local repository in place, or a remote
 * cloned/fetched over HTTP(S) into the state dir (shallow, single branch). Blobs are cached by id,
 * so a new commit reads only what changed.
 */
export class GitSource {
  readonly location: string;
  readonly #gitdir: string;
  readonly #dir: string;
  readonly #remote: boolean;
  readonly #onAuth: () => { username: string; password: string } | undefined;
  readonly #cache = {};
  readonly #files: ConfigTreeReader;
  #remoteHead: string | undefined;

  constructor(location: string, options: { stateDir: string; auth?: GitAuth; gitdir?: string }) {
    this.#remote = isRemote(location);
    const access = remoteAccess(location, options.auth);
    this.#onAuth = authCallback(access.auth);
    this.location = access.location;
    if (this.#remote) {
      this.#dir = repoStateDir(options.stateDir, this.location);
      this.#gitdir = path.join(this.#dir, 'git');
    } else {
      this.#dir = this.location;
      this.#gitdir = options.gitdir ?? localGitdir(this.location);
    }
    this.#files = new ConfigTreeReader(this.#gitdir, this.#cache);
  }

  get remote(): boolean {
    return this.#remote;
  }

  /** Blob reads of the last revision: a one-file commit reads one. */
  get lastBlobReads(): number {
    return this.#files.lastBlobReads;
  }

  #wrap(err: unknown, action: string, context: Record<string, unknown>): GitError {
    return wrapGitError(err, action, this.location, context);
  }

  /** For a remote: clone once, then fetch `branch` (shallow). For a local repo: nothing to do. */
  async fetch(branch: string): Promise<void> {
    if (!this.#remote) return;
    const base = { fs, http, dir: this.#dir, gitdir: this.#gitdir, cache: this.#cache, onAuth: this.#onAuth };
    try {
      await initClone(this.#gitdir, this.location, this.#dir);
      // HEAD: the remote's default branch; remembered because a fresh clone has no local HEAD to resolve.
      const result = await git.fetch({ ...base, url: this.location, remote: 'origin', ...(branch !== 'HEAD' && { ref: branch }), singleBranch: true, depth: 1, tags: false, prune: false });
      if (branch === 'HEAD' && result.fetchHead) this.#remoteHead = result.fetchHead;
    } catch (err) {
      throw this.#wrap(err, `fetching branch ${branch}`, { branch });
    }
  }

  /** Resolves a branch, tag (annotated ones peeled) or (abbreviated) sha to its commit, read once. */
  async #resolveCommit(ref: string): Promise<ReadCommit & { branch?: string }> {
    if (this.#remote && ref === 'HEAD' && this.#remoteHead) {
      return { sha: this.#remoteHead, commit: (await git.readCommit({ fs, gitdir: this.#gitdir, oid: this.#remoteHead, cache: this.#cache })).commit };
    }
    const refs = this.#remote ? [`refs/remotes/origin/${ref}`, `refs/tags/${ref}`, ref] : [`refs/heads/${ref}`, `refs/tags/${ref}`, `refs/remotes/origin/${ref}`, ref];
    const found = await resolveCommit(this.#gitdir, this.#cache, ref, refs);
    if (!found) throw new GitError(`ref "${ref}" not found in ${this.location} (tried branch, tag and commit id)`, { ref });
    const { sha, commit, via } = found;
    return { sha, commit, ...(via && (via.includes('heads/') || via.includes('remotes/')) && { branch: ref }) };
  }

  /** The config files of commit `ref` (branch, tag or sha), read from Git objects. */
  async read(ref: string): Promise<Revision> {
    const { sha, branch, commit } = await this.#resolveCommit(ref);
    try {
      const files = await this.#files.read(commit.tree);
      return { ref: commitRef(sha, commit, branch), files };
    } catch (err) {
      throw this.#wrap(err, `reading commit ${sha}`, { ref, sha });
    }
  }

  /** Where refs live: watched for new commits in a local repository. */
  get gitdir(): string {
    return this.#gitdir;
  }

  async readNote(sha: string): Promise<string | undefined> {
    try {
      return Buffer.from(await git.readNote({ fs, gitdir: this.#gitdir, ref: 'refs/notes/berth', oid: sha })).toString('utf8');
    } catch {
      return undefined;
    }
  }

  /** Sets the note of a commit under refs/notes/berth (the embedded commit-status reporter). */
  async writeNote(sha: string, text: string): Promise<void> {
    await git.addNote({ fs, gitdir: this.#gitdir, ref: 'refs/notes/berth', oid: sha, note: text, force: true, author: { name: 'berth', email: 'berth@localhost' } });
  }
}
