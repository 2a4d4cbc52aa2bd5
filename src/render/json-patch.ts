import { applyPatch, type Operation } from 'rfc6902';
import { MAX_DOC_NODES } from '../source/limits.js';
import { splitPointer, valueAt } from './parse.js';

const POINTER = /^(\/([^~]|~[01])*)*$/;

export type PatchResult = { ok: true; value: unknown } | { ok: false; index: number; message: string };

/** Why `pointer` cannot be resolved in `doc` (for `add`, the last segment may be new). */
function explainMissing(doc: unknown, pointer: string, forAdd: boolean): string {
  const parts = splitPointer(pointer);
  let cur = doc;
  for (const [i, part] of parts.entries()) {
    const here = '/' + parts.slice(0, i + 1).join('/');
    const last = i === parts.length - 1;
    if (Array.isArray(cur)) {
      if (part === '-' && last && forAdd) return `cannot append at ${here}`;
      if (!/^(0|[1-9][0-9]*)$/.test(part)) return `${here}: "${part}" is not a valid array index (digits without leading zeros${forAdd ? ', or "-" to append' : ''})`;
      const n = Number(part);
      if (n > cur.length || (n === cur.length && !(last && forAdd))) return `${here}: index ${n} is out of range (array has ${cur.length} items)`;
      cur = cur[n];
    } else if (cur && typeof cur === 'object') {
      if (!(part in cur)) {
        if (last && forAdd) return `cannot add at ${here}`;
        return `${here} does not exist${last ? ' (replace, remove and test need an existing value; use add to create it)' : ''}`;
      }
      cur = (cur as Record<string, unknown>)[part];
    } else return `${here}: parent is not an object or array`;
  }
  return `cannot resolve ${pointer}`;
}

/**
 * Applies an RFC 6902 JSON Patch atomically: the input is never modified, and a failing
 * operation rejects the whole patch (RFC 6902 §5), reporting which operation failed.
 */
export function applyJsonPatch(doc: unknown, ops: readonly Operation[]): PatchResult {
  for (const [index, op] of ops.entries()) {
    for (const ptr of [op.path, (op as { from?: unknown }).from]) {
      if (ptr !== undefined && (typeof ptr !== 'string' || !POINTER.test(ptr))) {
        return { ok: false, index, message: `${JSON.stringify(ptr)} is not a JSON pointer (RFC 6901): it must be empty or start with "/", and "~" must be followed by 0 or 1` };
      }
      // No app field is called that, and JavaScript would read it as the object's prototype.
      if (typeof ptr === 'string' && splitPointer(ptr).includes('__proto__')) {
        return { ok: false, index, message: `${JSON.stringify(ptr)} has a "__proto__" segment; no app field has that name` };
      }
    }
  }
  const copy = structuredClone(doc);
  // `copy` is the one operation that can grow a document beyond what its file holds (each copy
  // can double it): the result is held to the same node limit as a parsed document.
  let nodes: number | undefined;
  // A pointer into the root must be applied to a container; wrap so `""` paths work too.
  const box = { root: copy };
  const boxed = ops.map((op) => {
    const o = { ...op, path: '/root' + op.path } as Operation & { from?: string };
    if ('from' in op && typeof op.from === 'string') o.from = '/root' + op.from;
    return o as Operation;
  });
  for (let i = 0; i < boxed.length; i++) {
    const op = ops[i]!;
    // rfc6902 tolerates some malformed array indexes ("01"); RFC 6901 §4 does not.
    for (const ptr of [op.path, (op as { from?: string }).from]) {
      const bad = ptr === undefined ? undefined : malformedIndex(box.root, ptr, op.op === 'add' || op.op === 'move' || op.op === 'copy');
      if (bad) return { ok: false, index: i, message: bad };
    }
    if (op.op === 'copy') {
      nodes ??= countNodes(box.root, MAX_DOC_NODES);
      nodes += countNodes(valueAt(box.root, op.from), MAX_DOC_NODES - nodes);
      if (nodes > MAX_DOC_NODES) return { ok: false, index: i, message: `the copy would grow the app past ${MAX_DOC_NODES.toLocaleString('en-US')} nodes (keys, values and list items), berth's limit for one document` };
    }
    let err: unknown;
    try {
      [err] = applyPatch(box, [boxed[i]!]);
    } catch (e) {
      err = e;
    }
    if (err) {
      const name = err instanceof Error ? err.name : 'Error';
      let message = err instanceof Error ? err.message : String(err);
      if (name === 'TestError') message = `test failed: the value at ${op.path} is ${JSON.stringify(valueAt(box.root, op.path))}, expected ${JSON.stringify((op as { value?: unknown }).value)}`;
      else if (name === 'MissingError') {
        const from = (op as { from?: string }).from;
        message = from !== undefined && valueAt(box.root, from) === undefined ? `from: ${explainMissing(box.root, from, false)}` : explainMissing(box.root, op.path, op.op === 'add' || op.op === 'move' || op.op === 'copy');
      }
      return { ok: false, index: i, message };
    }
  }
  return { ok: true, value: box.root };
}

/**
 * RFC 7396 JSON Merge Patch: objects merge recursively, `null` deletes, anything else replaces.
 * Keys are defined as own properties, so a `__proto__` key is a field like any other (the schema
 * refuses it) and never the result's prototype.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else {
      const own = Object.prototype.hasOwnProperty.call(out, key) ? out[key] : undefined;
      Object.defineProperty(out, key, { value: applyMergePatch(own, value), enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/** Nodes of a value (every object, array and scalar counts one), counting stops past `budget`. */
function countNodes(value: unknown, budget: number): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length && count <= budget) {
    const v = stack.pop();
    count++;
    if (v && typeof v === 'object') for (const child of Object.values(v)) stack.push(child);
  }
  return count;
}

/** An array segment along `pointer` that is not a canonical index (digits, no leading zero; "-" last, for add). */
function malformedIndex(doc: unknown, pointer: string, forAdd: boolean): string | undefined {
  const parts = splitPointer(pointer);
  let cur = doc;
  for (const [i, part] of parts.entries()) {
    if (Array.isArray(cur)) {
      const last = i === parts.length - 1;
      if (part === '-' && last && forAdd) return undefined;
      if (!/^(0|[1-9][0-9]*)$/.test(part)) return explainMissing(doc, pointer, forAdd);
      cur = cur[Number(part)];
    } else if (cur && typeof cur === 'object') cur = (cur as Record<string, unknown>)[part];
    else return undefined;
  }
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
