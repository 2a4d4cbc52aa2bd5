import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import git, { type CommitObject } from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { BerthError } from '../errors.js';
import { ReadBudget, readingOrder } from './limits.js';
import type { RepoFile, Revision } from './types.js';

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

function isRemote(location: string): boolean {
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
  readonly #auth: GitAuth;
  readonly #cache = {};
  #blobs = new Map<string, { content: string; bytes: number }>();
  #remoteHead: string | undefined;
  /** Blob reads of the last revision: a one-file commit reads one. */
  lastBlobReads = 0;

  constructor(location: string, options: { stateDir: string; auth?: GitAuth; gitdir?: string }) {
    this.#remote = isRemote(location);
    this.#auth = { ...options.auth };
    const u = this.#remote ? new URL(location) : undefined;
    if (u && (u.username || u.password)) {
      this.#auth = { username: decodeURIComponent(u.username) || this.#auth.username, token: decodeURIComponent(u.password) || this.#auth.token };
    }
    this.location = this.#remote ? redactUrl(location) : path.resolve(location);
    if (this.#remote) {
      const base = path.join(options.stateDir, 'repos', createHash('sha1').update(this.location).digest('hex').slice(0, 16));
      this.#dir = base;
      this.#gitdir = path.join(base, 'git');
    } else {
      this.#dir = this.location;
      this.#gitdir = options.gitdir ?? (fs.existsSync(path.join(this.location, '.git')) ? path.join(this.location, '.git') : this.location);
    }
  }

  get remote(): boolean {
    return this.#remote;
  }

  #onAuth = () => (this.#auth.token ? { username: this.#auth.username ?? 'x-access-token', password: this.#auth.token } : undefined);

  #wrap(err: unknown, action: string, context: Record<string, unknown>): GitError {
    const e = err as { code?: string; message?: string; data?: { statusCode?: number } };
    const status = e.data?.statusCode;
    const msg = (e.message ?? String(err)).replaceAll(/\/\/[^@/\s]*@/g, '//');
    if (status === 401 || status === 403) return new GitError(`${action}: authentication failed (HTTP ${status}) for ${this.location}; check --git-token`, context);
    if (e.code === 'NotFoundError') return new GitError(`${action}: ${msg}`, context);
    const transient = status === undefined || status >= 500 || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|socket hang up/.test(msg);
    return new GitError(`${action} (${this.location}): ${msg}`, context, undefined, transient);
  }

  /** For a remote: clone once, then fetch `branch` (shallow). For a local repo: nothing to do. */
  async fetch(branch: string): Promise<void> {
    if (!this.#remote) return;
    const base = { fs, http, dir: this.#dir, gitdir: this.#gitdir, cache: this.#cache, onAuth: this.#onAuth };
    try {
      await mkdir(this.#dir, { recursive: true });
      const exists = fs.existsSync(path.join(this.#gitdir, 'config'));
      // location is the redacted URL: credentials reach the server only through onAuth.
      if (!exists) {
        await git.init({ fs, dir: this.#dir, gitdir: this.#gitdir });
        await git.addRemote({ fs, dir: this.#dir, gitdir: this.#gitdir, remote: 'origin', url: this.location });
      }
      // HEAD: the remote's default branch; remembered because a fresh clone has no local HEAD to resolve.
      const result = await git.fetch({ ...base, url: this.location, remote: 'origin', ...(branch !== 'HEAD' && { ref: branch }), singleBranch: true, depth: 1, tags: false, prune: false });
      if (branch === 'HEAD' && result.fetchHead) this.#remoteHead = result.fetchHead;
    } catch (err) {
      throw this.#wrap(err, `fetching branch ${branch}`, { branch });
    }
  }

  /** Resolves a branch, tag (annotated ones peeled) or (abbreviated) sha to its commit, read once. */
  async #resolveCommit(ref: string): Promise<{ sha: string; branch?: string; commit: CommitObject }> {
    const readCommit = async (oid: string) => (await git.readCommit({ fs, gitdir: this.#gitdir, oid, cache: this.#cache })).commit;
    if (this.#remote && ref === 'HEAD' && this.#remoteHead) return { sha: this.#remoteHead, commit: await readCommit(this.#remoteHead) };
    const candidates = this.#remote ? [`refs/remotes/origin/${ref}`, `refs/tags/${ref}`, ref] : [`refs/heads/${ref}`, `refs/tags/${ref}`, `refs/remotes/origin/${ref}`, ref];
    for (const candidate of candidates) {
      try {
        const oid = await git.resolveRef({ fs, gitdir: this.#gitdir, ref: candidate });
        const commit = await readCommit(oid).catch(() => undefined);
        if (!commit) {
          const sha = (await git.readTag({ fs, gitdir: this.#gitdir, oid })).tag.object;
          return { sha, commit: await readCommit(sha) };
        }
        return { sha: oid, commit, ...(candidate.includes('heads/') || candidate.includes('remotes/') ? { branch: ref } : {}) };
      } catch {
        // try the next form
      }
    }
    if (/^[0-9a-f]{4,40}$/.test(ref)) {
      try {
        const sha = await git.expandOid({ fs, gitdir: this.#gitdir, oid: ref, cache: this.#cache });
        return { sha, commit: await readCommit(sha) };
      } catch {
        // fall through
      }
    }
    throw new GitError(`ref "${ref}" not found in ${this.location} (tried branch, tag and commit id)`, { ref });
  }

  /** The config files of commit `ref` (branch, tag or sha), read from Git objects. */
  async read(ref: string): Promise<Revision> {
    const { sha, branch, commit } = await this.#resolveCommit(ref);
    try {
      const entries: { path: string; oid: string; refused?: string }[] = [];
      const walkTree = async (oid: string, prefix: string): Promise<void> => {
        const { tree } = await git.readTree({ fs, gitdir: this.#gitdir, oid, cache: this.#cache });
        for (const e of tree) {
          const p = prefix + e.path;
          const config = CONFIG_PREFIXES.some((c) => (p + '/').startsWith(c) || c.startsWith(p + '/'));
          if (e.type === 'tree') {
            if (config) await walkTree(e.oid, p + '/');
          } else if (e.type === 'blob' && e.mode === SYMLINK_MODE && (prefix || config || CONFIG_ROOT_FILES.has(e.path))) {
            entries.push({ path: p, ...(await this.#followLink(commit.tree, p, e.oid)) });
          } else if (e.type === 'blob' && (prefix ? /\.ya?ml$/.test(e.path) : CONFIG_ROOT_FILES.has(e.path))) {
            entries.push({ path: p, oid: e.oid });
          }
        }
      };
      await walkTree(commit.tree, '');
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
      const files = new Map([...read].sort(([a], [b]) => (a < b ? -1 : 1)));
      return {
        ref: { sha, ...(branch && { branch }), author: `${commit.author.name} <${commit.author.email}>`, message: commit.message.trim().split('\n')[0] ?? '' },
        files,
      };
    } catch (err) {
      if (err instanceof GitError) throw err;
      throw this.#wrap(err, `reading commit ${sha}`, { ref, sha });
    }
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
