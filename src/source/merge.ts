// A three-way merge of Git trees: what `git revert` and `git merge` do to the files, without a work
// tree or an index. isomorphic-git has no revert, and its merge works on branches; this works on
// tree ids through a narrow objects interface, so the caller hands in the object store (isomorphic-git
// in source/write.ts, a map in the unit tests).

import { diff3Merge } from 'node-diff3';

/** One entry of a Git tree, as isomorphic-git reads and writes it. */
export interface TreeEntry {
  readonly mode: string;
  readonly path: string;
  readonly oid: string;
  readonly type: 'blob' | 'tree' | 'commit';
}

/** The object store a merge reads and writes; the caller passes isomorphic-git (or a fake) in. */
export interface MergeObjects {
  readTree(oid: string): Promise<readonly TreeEntry[]>;
  readBlob(oid: string): Promise<Uint8Array>;
  writeBlob(content: Uint8Array): Promise<string>;
  writeTree(entries: readonly TreeEntry[]): Promise<string>;
}

/** Why a path could not be merged. */
type ConflictKind =
  /** Both sides changed the same lines (or lines next to each other) of a text file. */
  | 'content'
  /** Both sides added the path with different content. */
  | 'add/add'
  /** One side changed the file, the other deleted it. */
  | 'modify/delete'
  /** A file on one side, a folder on the other. */
  | 'file/folder'
  /** A binary file (it holds a NUL byte), a symlink or a submodule changed on both sides. */
  | 'binary'
  /** Both sides changed the file's mode (e.g. one made it executable, the other a symlink). */
  | 'mode';

export interface MergeConflict {
  readonly path: string;
  readonly kind: ConflictKind;
  /** A sentence a person can act on, naming the path. */
  readonly message: string;
}

type TreeMergeResult = { readonly ok: true; readonly tree: string } | { readonly ok: false; readonly conflicts: readonly MergeConflict[] };

/** The three trees of a merge; an absent one is the empty tree (the parent of a root commit, a merge with no common history). */
interface MergeTrees {
  readonly base: string | undefined;
  readonly ours: string | undefined;
  readonly theirs: string | undefined;
}

const SYMLINK = '120000';
const SUBMODULE = '160000';

/**
 * Merges `theirs` into `ours` relative to `base`, path by path: a side that left a path unchanged
 * takes the other's version; both sides' text changes are merged line by line (node-diff3); anything
 * else changed on both sides is a conflict. Returns the merged tree's id (its objects written through
 * `objects`), or every conflicting path with why.
 */
export async function mergeTrees(trees: MergeTrees, objects: MergeObjects): Promise<TreeMergeResult> {
  const conflicts: MergeConflict[] = [];
  const tree = await mergeTree(trees.base, trees.ours, trees.theirs, '', objects, conflicts);
  if (conflicts.length) return { ok: false, conflicts };
  return { ok: true, tree: tree ?? (await objects.writeTree([])) };
}

/** A tree entry minus its name: what a path holds on one side, or undefined when the side has nothing there. */
interface Side {
  readonly mode: string;
  readonly oid: string;
  readonly type: TreeEntry['type'];
}

function same(a: Side | undefined, b: Side | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.oid === b.oid && a.mode === b.mode);
}

async function entriesOf(oid: string | undefined, objects: MergeObjects): Promise<Map<string, Side>> {
  const map = new Map<string, Side>();
  if (oid === undefined) return map;
  for (const e of await objects.readTree(oid)) map.set(e.path, { mode: e.mode, oid: e.oid, type: e.type });
  return map;
}

/** The merged tree's id; undefined when it is empty (Git stores no empty folders). */
async function mergeTree(base: string | undefined, ours: string | undefined, theirs: string | undefined, prefix: string, objects: MergeObjects, conflicts: MergeConflict[]): Promise<string | undefined> {
  // Whole folders first: most of a config repo is unchanged on at least one side.
  if (ours === theirs) return ours;
  if (base === ours) return theirs;
  if (base === theirs) return ours;
  const [b, o, t] = await Promise.all([entriesOf(base, objects), entriesOf(ours, objects), entriesOf(theirs, objects)]);
  const merged: TreeEntry[] = [];
  for (const name of new Set([...b.keys(), ...o.keys(), ...t.keys()])) {
    const entry = await mergeEntry(b.get(name), o.get(name), t.get(name), prefix + name, objects, conflicts);
    if (entry) merged.push({ ...entry, path: name });
  }
  return merged.length ? objects.writeTree(merged) : undefined;
}

async function mergeEntry(b: Side | undefined, o: Side | undefined, t: Side | undefined, path: string, objects: MergeObjects, conflicts: MergeConflict[]): Promise<Side | undefined> {
  if (same(o, t)) return o;
  if (same(b, o)) return t;
  if (same(b, t)) return o;
  const conflict = (kind: ConflictKind, message: string): undefined => {
    conflicts.push({ path, kind, message });
    return undefined;
  };
  const isTree = (s: Side | undefined) => s?.type === 'tree';
  // Folders on both sides (or one side deleted a folder the other changed): merge inside it, so a
  // file changed under a deleted folder is a modify/delete of that file, and the rest goes cleanly.
  if ((isTree(o) || !o) && (isTree(t) || !t) && (isTree(b) || !b)) {
    const tree = await mergeTree(b?.oid, o?.oid, t?.oid, path + '/', objects, conflicts);
    return tree === undefined ? undefined : { mode: '040000', oid: tree, type: 'tree' };
  }
  if (isTree(o) || isTree(t)) return conflict('file/folder', `${path}: a file on one side, a folder on the other`);
  if (!o || !t) return conflict('modify/delete', `${path}: deleted on one side, changed on the other`);
  if (!b || isTree(b)) return conflict('add/add', `${path}: added on both sides with different content`);
  // A file on all three sides, changed on both: its mode and its content merge separately.
  const mode = o.mode === t.mode || b.mode === o.mode ? t.mode : b.mode === t.mode ? o.mode : undefined;
  if (mode === undefined) return conflict('mode', `${path}: mode changed on both sides (${b.mode} → ${o.mode} and ${t.mode})`);
  if (o.oid === t.oid || b.oid === t.oid) return { mode, oid: o.oid, type: o.type };
  if (b.oid === o.oid) return { mode, oid: t.oid, type: t.type };
  if ([b, o, t].some((s) => s.mode === SYMLINK || s.mode === SUBMODULE || s.type !== 'blob')) {
    return conflict('binary', `${path}: a symlink or submodule changed on both sides`);
  }
  const [bb, ob, tb] = await Promise.all([objects.readBlob(b.oid), objects.readBlob(o.oid), objects.readBlob(t.oid)]);
  if ([bb, ob, tb].some((x) => x.includes(0))) return conflict('binary', `${path}: a binary file changed on both sides`);
  const text = mergeLines(ob, bb, tb);
  if (text === undefined) return conflict('content', `${path}: both sides changed the same lines`);
  return { mode, oid: await objects.writeBlob(text), type: 'blob' };
}

/**
 * Lines of `bytes`, each with its line end (the last one may have none), as latin1 strings: one
 * character per byte, so any encoding goes through unchanged and `\n` is found only where it is.
 */
function lines(bytes: Uint8Array): string[] {
  const text = Buffer.from(bytes).toString('latin1');
  return text === '' ? [] : text.split(/(?<=\n)/);
}

/** The line merge of a text file changed on both sides; undefined when a hunk conflicts. */
export function mergeLines(ours: Uint8Array, base: Uint8Array, theirs: Uint8Array): Uint8Array | undefined {
  const out: string[] = [];
  for (const region of diff3Merge(lines(ours), lines(base), lines(theirs), { excludeFalseConflicts: true })) {
    if (region.conflict) return undefined;
    if (region.ok) out.push(...region.ok);
  }
  return Buffer.from(out.join(''), 'latin1');
}
