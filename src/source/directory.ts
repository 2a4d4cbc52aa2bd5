import { createHash } from 'node:crypto';
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { SourceError } from '../errors.js';
import { MAX_FILE_BYTES, ReadBudget, readingOrder } from './limits.js';
import type { RepoFile, Revision, UnreadFile } from './types.js';

/** The folders of a config repo that berth reads; everything else is ignored. */
const CONFIG_DIRS = ['apps', 'overlays', 'plugins'] as const;
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
async function insideRepo(root: string, rel: string): Promise<{ target: string } | { refused: string }> {
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
  const st = await stat(target).catch(() => undefined);
  if (st?.isFile() && (!YAML_EXT.test(target) || inside.split(path.sep).includes('.git'))) {
    return { refused: `symlink ${rel} leads to ${inside}, which is not a YAML file; berth follows links only to .yaml/.yml files` };
  }
  return { target };
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
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const link = await insideRepo(root, child);
      if ('refused' in link) {
        refused.set(child, link.refused);
        continue;
      }
      const st = await stat(link.target);
      isDir = st.isDirectory();
      isFile = st.isFile();
    }
    if (isDir) await walk(root, child, out, seen, refused);
    else if (isFile && YAML_EXT.test(entry.name)) out.push(child);
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
  for (const name of ['berth.yaml', 'berth.yml', ...CONFIG_DIRS]) {
    const entry = await lstat(path.join(root, name)).catch(() => undefined);
    if (!entry?.isSymbolicLink()) continue;
    const link = await insideRepo(root, name);
    if ('refused' in link) refused.set(name, link.refused);
  }
  for (const name of ['berth.yaml', 'berth.yml']) {
    if (refused.has(name)) continue;
    try {
      if ((await stat(path.join(root, name))).isFile()) paths.push(name);
    } catch {
      // absent: render reports a missing berth.yaml with a fix
    }
  }
  const seen = new Set<string>();
  for (const sub of CONFIG_DIRS) if (!refused.has(sub)) await walk(root, sub, paths, seen, refused);
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
