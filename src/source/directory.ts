import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { SourceError } from '../errors.js';
import type { RepoFile, Revision } from './types.js';

/** The folders of a config repo that berth reads; everything else is ignored. */
const CONFIG_DIRS = ['apps', 'overlays', 'plugins'] as const;
const YAML_EXT = /\.ya?ml$/;

/** Git blob id of `content`, so a directory read and a Git read share cache keys. */
export function blobId(content: Buffer | string): string {
  const body = typeof content === 'string' ? Buffer.from(content) : content;
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
}

async function walk(root: string, rel: string, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(path.join(root, rel), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const entry of entries) {
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) await walk(root, child, out);
    else if (entry.isFile() && YAML_EXT.test(entry.name)) out.push(child);
  }
}

/** Reads a config repo from a plain directory (no Git): `berth.yaml`, `apps/`, `overlays/`, `plugins/`. */
export async function readDirectoryRevision(dir: string): Promise<Revision> {
  const root = path.resolve(dir);
  try {
    if (!(await stat(root)).isDirectory()) throw new SourceError(`${root} is not a directory`, { file: root });
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw new SourceError(`cannot read config repo at ${root}`, { file: root }, err);
  }
  const paths: string[] = [];
  for (const name of ['berth.yaml', 'berth.yml']) {
    try {
      if ((await stat(path.join(root, name))).isFile()) paths.push(name);
    } catch {
      // absent: render reports a missing berth.yaml with a fix
    }
  }
  for (const sub of CONFIG_DIRS) await walk(root, sub, paths);
  paths.sort();
  const files = new Map<string, RepoFile>();
  await Promise.all(
    paths.map(async (p) => {
      const buf = await readFile(path.join(root, p));
      files.set(p, { path: p, id: blobId(buf), content: buf.toString('utf8') });
    }),
  );
  return { ref: {}, files: new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
}
