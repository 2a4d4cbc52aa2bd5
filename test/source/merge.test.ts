import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { mergeLines, mergeTrees, type MergeObjects, type TreeEntry } from '../../src/source/merge.js';

// The three-way merge behind rollback (a revert) and promotion (a merge), on an in-memory object
// store: each case is three small trees (path → content, `mode:` prefix for a non-default mode) and
// the merged files or the conflicting paths expected.

type Files = Record<string, string>;

/** An object store in a Map, ids content-addressed like Git's. */
function memoryObjects(): MergeObjects & { writes: number } {
  const blobs = new Map<string, Uint8Array>();
  const trees = new Map<string, readonly TreeEntry[]>();
  const id = (kind: string, data: string | Uint8Array) => createHash('sha1').update(kind).update(data).digest('hex');
  const store = {
    writes: 0,
    readTree: async (oid: string) => {
      const t = trees.get(oid);
      if (!t) throw new Error(`no tree ${oid}`);
      return t;
    },
    readBlob: async (oid: string) => {
      const b = blobs.get(oid);
      if (!b) throw new Error(`no blob ${oid}`);
      return b;
    },
    writeBlob: async (blob: Uint8Array) => {
      store.writes++;
      const oid = id('blob', blob);
      blobs.set(oid, blob);
      return oid;
    },
    writeTree: async (entries: readonly TreeEntry[]) => {
      store.writes++;
      const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : 1));
      const oid = id('tree', JSON.stringify(sorted));
      trees.set(oid, sorted);
      return oid;
    },
  };
  return store;
}

/** Writes `files` as nested trees; `120000:target` is a symlink, `100755:text` an executable. */
async function build(store: MergeObjects, files: Files | undefined): Promise<string | undefined> {
  if (!files) return undefined;
  const write = async (prefix: string): Promise<string> => {
    const names = new Map<string, TreeEntry>();
    for (const [p, raw] of Object.entries(files)) {
      if (!p.startsWith(prefix)) continue;
      const [name, ...rest] = p.slice(prefix.length).split('/');
      if (rest.length) {
        if (!names.has(name!)) names.set(name!, { path: name!, mode: '040000', type: 'tree', oid: await write(prefix + name + '/') });
        continue;
      }
      const m = /^(100755|120000):([\s\S]*)$/.exec(raw);
      names.set(name!, { path: name!, mode: m?.[1] ?? '100644', type: 'blob', oid: await store.writeBlob(Buffer.from(m ? m[2]! : raw, 'latin1')) });
    }
    return store.writeTree([...names.values()]);
  };
  return write('');
}

async function flatten(store: MergeObjects, oid: string, prefix = ''): Promise<Files> {
  const out: Files = {};
  for (const e of await store.readTree(oid)) {
    if (e.type === 'tree') Object.assign(out, await flatten(store, e.oid, prefix + e.path + '/'));
    else {
      const text = Buffer.from(await store.readBlob(e.oid)).toString('latin1');
      out[prefix + e.path] = e.mode === '100644' ? text : `${e.mode}:${text}`;
    }
  }
  return out;
}

const lines = (...xs: string[]) => xs.map((x) => x + '\n').join('');
const ten = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7', 'l8', 'l9', 'l10'];
const tenWith = (i: number, v: string) => lines(...ten.map((x, j) => (j === i ? v : x)));

interface Case {
  name: string;
  base?: Files;
  ours?: Files;
  theirs?: Files;
  /** The merged files, or the conflicts as `path kind`. */
  want: Files | string[];
}

const cases: Case[] = [
  { name: 'ours unchanged: theirs taken', base: { 'a.yaml': 'x\n' }, ours: { 'a.yaml': 'x\n' }, theirs: { 'a.yaml': 'y\n', 'b.yaml': 'new\n' }, want: { 'a.yaml': 'y\n', 'b.yaml': 'new\n' } },
  { name: 'theirs unchanged: ours kept', base: { 'a.yaml': 'x\n' }, ours: { 'a.yaml': 'z\n' }, theirs: { 'a.yaml': 'x\n' }, want: { 'a.yaml': 'z\n' } },
  { name: 'the same change on both sides', base: { 'a.yaml': 'x\n' }, ours: { 'a.yaml': 'y\n' }, theirs: { 'a.yaml': 'y\n' }, want: { 'a.yaml': 'y\n' } },
  { name: 'different files changed on each side', base: { 'a': '1\n', 'd/b': '2\n' }, ours: { 'a': '1+\n', 'd/b': '2\n' }, theirs: { 'a': '1\n', 'd/b': '2+\n' }, want: { 'a': '1+\n', 'd/b': '2+\n' } },
  { name: 'line merge: far-apart lines of one file', base: { f: lines(...ten) }, ours: { f: tenWith(0, 'L1') }, theirs: { f: tenWith(9, 'L10') }, want: { f: lines('L1', ...ten.slice(1, 9), 'L10') } },
  { name: 'line merge: an insertion and a far change', base: { f: lines(...ten) }, ours: { f: lines('top', ...ten) }, theirs: { f: tenWith(6, 'L7') }, want: { f: lines('top', ...ten.slice(0, 6), 'L7', ...ten.slice(7)) } },
  { name: 'line merge: the same line changed differently', base: { f: lines(...ten) }, ours: { f: tenWith(4, 'A') }, theirs: { f: tenWith(4, 'B') }, want: ['f content'] },
  { name: 'line merge: adjacent lines conflict (as in Git)', base: { f: lines(...ten) }, ours: { f: tenWith(4, 'A') }, theirs: { f: tenWith(5, 'B') }, want: ['f content'] },
  { name: 'line merge: the same hunk changed identically, another apart', base: { f: lines(...ten) }, ours: { f: lines('A', ...ten.slice(1, 9), 'Z') }, theirs: { f: tenWith(0, 'A') }, want: { f: lines('A', ...ten.slice(1, 9), 'Z') } },
  { name: 'line merge keeps CRLF and a missing final newline', base: { f: 'a\r\nb\r\nc\r\nd\r\ne' }, ours: { f: 'A\r\nb\r\nc\r\nd\r\ne' }, theirs: { f: 'a\r\nb\r\nc\r\nd\r\nE' }, want: { f: 'A\r\nb\r\nc\r\nd\r\nE' } },
  { name: 'add/add with the same content', base: {}, ours: { n: 'same\n' }, theirs: { n: 'same\n' }, want: { n: 'same\n' } },
  { name: 'add/add with different content', base: {}, ours: { n: 'one\n' }, theirs: { n: 'two\n' }, want: ['n add/add'] },
  { name: 'deleted on one side, unchanged on the other', base: { a: '1\n', b: '2\n' }, ours: { a: '1\n', b: '2\n' }, theirs: { a: '1\n' }, want: { a: '1\n' } },
  { name: 'modify/delete', base: { a: '1\n', b: '2\n' }, ours: { a: '1\n', b: '2+\n' }, theirs: { a: '1\n' }, want: ['b modify/delete'] },
  { name: 'delete/modify', base: { a: '1\n', b: '2\n' }, ours: { a: '1\n' }, theirs: { a: '1\n', b: '2+\n' }, want: ['b modify/delete'] },
  { name: 'a deleted folder: unchanged files go, no empty folder stays', base: { 'd/x': '1\n', 'd/y': '2\n', k: 'k\n' }, ours: { 'd/x': '1\n', 'd/y': '2\n', k: 'K\n' }, theirs: { k: 'k\n' }, want: { k: 'K\n' } },
  { name: 'a deleted folder with a file changed on the other side', base: { 'd/x': '1\n', 'd/y': '2\n' }, ours: { 'd/x': '1+\n', 'd/y': '2\n' }, theirs: {}, want: ['d/x modify/delete'] },
  { name: 'both sides delete the last file of a folder', base: { 'd/x': '1\n', k: 'k\n' }, ours: { k: 'k\n' }, theirs: { k: 'K\n' }, want: { k: 'K\n' } },
  { name: 'file/folder clash', base: {}, ours: { x: 'file\n' }, theirs: { 'x/y': 'in folder\n' }, want: ['x file/folder'] },
  { name: 'file replaced by a folder on one side, changed on the other', base: { x: 'file\n' }, ours: { x: 'file+\n' }, theirs: { 'x/y': 'in folder\n' }, want: ['x file/folder'] },
  { name: 'binary changed on one side only', base: { b: 'a\0b' }, ours: { b: 'a\0b' }, theirs: { b: 'a\0c' }, want: { b: 'a\0c' } },
  { name: 'binary changed on both sides', base: { b: 'a\0b\nx\ny\nz\n' }, ours: { b: 'A\0b\nx\ny\nz\n' }, theirs: { b: 'a\0b\nx\ny\nZ\n' }, want: ['b binary'] },
  { name: 'mode: one side makes it executable, the other edits it', base: { s: lines(...ten) }, ours: { s: '100755:' + lines(...ten) }, theirs: { s: tenWith(9, 'L10') }, want: { s: '100755:' + tenWith(9, 'L10') } },
  { name: 'mode: both make it executable, edits merge by line', base: { s: lines(...ten) }, ours: { s: '100755:' + tenWith(0, 'L1') }, theirs: { s: '100755:' + tenWith(9, 'L10') }, want: { s: '100755:' + lines('L1', ...ten.slice(1, 9), 'L10') } },
  { name: 'mode changed differently on both sides', base: { s: 'x\n' }, ours: { s: '100755:x\n' }, theirs: { s: '120000:x\n' }, want: ['s mode'] },
  { name: 'a symlink kept while the other side edits elsewhere', base: { l: '120000:apps/a.yaml', f: 'f\n' }, ours: { l: '120000:apps/a.yaml', f: 'F\n' }, theirs: { l: '120000:apps/b.yaml', f: 'f\n' }, want: { l: '120000:apps/b.yaml', f: 'F\n' } },
  { name: 'a symlink retargeted on both sides', base: { l: '120000:a' }, ours: { l: '120000:b' }, theirs: { l: '120000:c' }, want: ['l binary'] },
  { name: 'no base (unrelated histories): both sides add different files', ours: { a: '1\n' }, theirs: { b: '2\n' }, want: { a: '1\n', b: '2\n' } },
  { name: 'every conflict is listed, clean paths are not', base: { a: lines(...ten), b: '1\n', c: 'c\n' }, ours: { a: tenWith(2, 'X'), b: '1+\n', c: 'c\n', n: 'one\n' }, theirs: { a: tenWith(2, 'Y'), c: 'C\n', n: 'two\n' }, want: ['a content', 'b modify/delete', 'n add/add'] },
];

describe('mergeTrees', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const store = memoryObjects();
      const [base, ours, theirs] = [await build(store, c.base), await build(store, c.ours), await build(store, c.theirs)];
      const result = await mergeTrees({ base, ours, theirs }, store);
      if (Array.isArray(c.want)) {
        assert.equal(result.ok, false, 'a conflict');
        if (result.ok) return;
        assert.deepEqual(result.conflicts.map((x) => `${x.path} ${x.kind}`).sort(), c.want);
        for (const x of result.conflicts) assert.ok(x.message.startsWith(`${x.path}: `), x.message);
      } else {
        assert.ok(result.ok, result.ok ? '' : result.conflicts.map((x) => x.message).join('; '));
        assert.deepEqual(await flatten(store, result.tree), c.want);
      }
    });
  }

  it('takes a whole unchanged folder without reading it', async () => {
    const store = memoryObjects();
    const base = await build(store, { 'big/a': '1\n', 'big/b': '2\n', x: 'x\n' });
    const ours = await build(store, { 'big/a': '1\n', 'big/b': '2\n', x: 'X\n' });
    const theirs = await build(store, { 'big/a': '1\n', 'big/b': '2\n', x: 'x\n', y: 'y\n' });
    let treeReads = 0;
    const counting: MergeObjects = { ...store, readTree: (oid) => (treeReads++, store.readTree(oid)) };
    const result = await mergeTrees({ base, ours, theirs }, counting);
    assert.ok(result.ok);
    assert.equal(treeReads, 3, 'the three roots only: big/ is the same on every side');
    assert.deepEqual(await flatten(counting, result.tree), { 'big/a': '1\n', 'big/b': '2\n', x: 'X\n', y: 'y\n' });
  });

  it('a merge of identical trees writes nothing', async () => {
    const store = memoryObjects();
    const t = await build(store, { a: '1\n' });
    const before = store.writes;
    assert.deepEqual(await mergeTrees({ base: t, ours: t, theirs: t }, store), { ok: true, tree: t });
    assert.equal(store.writes, before);
  });

  it('every side empty gives the empty tree', async () => {
    const store = memoryObjects();
    const result = await mergeTrees({ base: undefined, ours: undefined, theirs: undefined }, store);
    assert.ok(result.ok);
    assert.deepEqual(await store.readTree(result.tree), []);
  });
});

describe('mergeLines', () => {
  it('keeps bytes that are not UTF-8 exactly', () => {
    const b = Buffer.from([0xe9, 0x0a, 0x62, 0x0a, 0x63, 0x0a, 0x64, 0x0a, 0xff, 0x0a]);
    const o = Buffer.from(b);
    o[0] = 0xc9;
    const t = Buffer.from(b);
    t[8] = 0xfe;
    const merged = mergeLines(o, b, t);
    assert.ok(merged);
    assert.deepEqual([...merged], [0xc9, 0x0a, 0x62, 0x0a, 0x63, 0x0a, 0x64, 0x0a, 0xfe, 0x0a]);
  });

  it('returns undefined on a conflicting hunk', () => {
    assert.equal(mergeLines(Buffer.from('a\nX\nc\n'), Buffer.from('a\nb\nc\n'), Buffer.from('a\nY\nc\n')), undefined);
  });
});
