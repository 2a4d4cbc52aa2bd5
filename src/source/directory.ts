import { createHash } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { SourceError } from '../errors.js';
import { MAX_FILE_BYTES, ReadBudget, readingOrder } from './limits.js';
import type { RepoFile, Revision, UnreadFile } from './types.js';

/** The folders of a config repo that berth reads; everything else is ignored. */
const CONFIG_DIRS = ['apps', 'overlays', 'plugins'] as const;
const REPO_FILES = ['berth.yaml', 'berth.yml'];
const YAML_EXT = /\.ya?ml$/;

/** Git blob id of `content`, so a directory read and a Git read share cache keys. */
export function blobId(content: Buffer | string): string {
  const body = typeof content === 'string' ? Buffer.from(content) : content;
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
}

/**
 * Where a symlink at `rel` leads, when that is inside the repo (its real path); otherwise why it is
 * refused. berth follows links only within the repo, so a repo can never pull in host files, and
 * never skips one silently (an app whose file became a link would be pruned): a refused link is a
 * problem at its own path.
 */
async function insideRepo(root: string, rel: string): Promise<{ stats: Stats } | { refused: string }> {
  const link = path.join(root, rel);
  let target: string;
  try {
    target = await realpath(link);
  } catch (err) {
    return { refused: `symlink ${rel} is broken (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); fix or remove it` };
  }
  if (target !== root && !target.startsWith(root + path.sep)) {
    return { refused: `symlink ${rel} points outside the config repo (to ${target}); berth follows symlinks only within the repo` };
  }
  // A file link must lead to a config file: never to .git/config, a .env or any other file of the checkout.
  const inside = path.relative(root, target);
  const stats = await stat(target);
  if (stats.isFile() && (!YAML_EXT.test(target) || inside.split(path.sep).includes('.git'))) {
    return { refused: `symlink ${rel} leads to ${inside}, which is not a YAML file; berth follows links only to .yaml/.yml files` };
  }
  return { stats };
}

/** What an entry is, following a symlink only inside the repo: a folder, a file, something else, or a refused link. */
async function kindOf(root: string, rel: string, entry: Dirent): Promise<'dir' | 'file' | 'other' | { refused: string }> {
  let stats: Pick<Stats, 'isDirectory' | 'isFile'> = entry;
  if (entry.isSymbolicLink()) {
    const link = await insideRepo(root, rel);
    if ('refused' in link) return link;
    stats = link.stats;
  }
  return stats.isDirectory() ? 'dir' : stats.isFile() ? 'file' : 'other';
}

async function walk(root: string, rel: string, out: string[], seen: Set<string>, refused: Map<string, string>): Promise<void> {
  const dir = path.join(root, rel);
  let entries;
  try {
    // A folder already walked (a link loop, or a second link to it) adds nothing new.
    const real = await realpath(dir);
    if (seen.has(real)) return;
    seen.add(real);
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const entry of entries) {
    const child = `${rel}/${entry.name}`;
    const kind = await kindOf(root, child, entry);
    if (typeof kind === 'object') refused.set(child, kind.refused);
    else if (kind === 'dir') await walk(root, child, out, seen, refused);
    else if (kind === 'file' && YAML_EXT.test(entry.name)) out.push(child);
  }
}

/** Reads a config repo from a plain directory (no Git): `berth.yaml`, `apps/`, `overlays/`, `plugins/`. */
export async function readDirectoryRevision(dir: string): Promise<Revision> {
  // The real path: the repo folder itself may be reached through a link; what is inside must stay inside.
  const root = await realpath(path.resolve(dir)).catch(() => path.resolve(dir));
  try {
    if (!(await stat(root)).isDirectory()) throw new SourceError(`${root} is not a directory`, { file: root });
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw new SourceError(`cannot read config repo at ${root}`, { file: root }, err);
  }
  const paths: string[] = [];
  const refused = new Map<string, string>();
  const seen = new Set<string>();
  // The repository file and the config folders, in that order; anything else at the root is not config.
  const top = new Map((await readdir(root, { withFileTypes: true })).map((e) => [e.name, e]));
  for (const name of [...REPO_FILES, ...CONFIG_DIRS]) {
    const entry = top.get(name);
    if (!entry) continue; // an absent berth.yaml: render reports it with a fix
    const kind = await kindOf(root, name, entry);
    if (typeof kind === 'object') refused.set(name, kind.refused);
    else if (kind === 'file' && REPO_FILES.includes(name)) paths.push(name);
    else if (kind === 'dir' && (CONFIG_DIRS as readonly string[]).includes(name)) await walk(root, name, paths, seen, refused);
  }
  paths.sort(readingOrder);
  // Sizes first: a file over a limit is never read into memory (limits.ts).
  const sizes = await Promise.all(paths.map(async (p) => (await stat(path.join(root, p))).size));
  const budget = new ReadBudget();
  const files = new Map<string, RepoFile>();
  await Promise.all(
    paths.map(async (p, i) => {
      const unread = budget.admit(sizes[i]!);
      const read = unread ? { unread } : await readBounded(path.join(root, p), sizes[i]!);
      if ('unread' in read) files.set(p, { path: p, id: `unread:${sizes[i]}`, content: '', unread: read.unread });
      else files.set(p, { path: p, id: blobId(read.buf), content: read.buf.toString('utf8') });
    }),
  );
  for (const [p, reason] of refused) files.set(p, { path: p, id: `refused:${blobId(reason)}`, content: '', unread: { limit: 'symlink', reason } });
  return { ref: {}, files: new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
}

/**
 * The file's bytes, never more than MAX_FILE_BYTES + 1 of them: a file that grew past the limit
 * since its stat stays unread. `size` is its size at the stat.
 */
async function readBounded(file: string, size: number): Promise<{ buf: Buffer } | { unread: UnreadFile }> {
  const handle = await open(file, 'r');
  try {
    for (;;) {
      const buf = Buffer.alloc(Math.min(size, MAX_FILE_BYTES) + 1);
      let length = 0;
      for (let n = -1; n !== 0 && length < buf.length; length += n) n = (await handle.read(buf, length, buf.length - length, length)).bytesRead;
      if (length < buf.length) return { buf: buf.subarray(0, length) };
      // Longer than at the stat: over the limit now, or read it again at its new size.
      size = Math.max((await handle.stat()).size, buf.length);
      if (size > MAX_FILE_BYTES) return { unread: { limit: 'file', bytes: size } };
    }
  } finally {
    await handle.close();
  }
}
