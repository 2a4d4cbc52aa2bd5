import { applyPatch, type Operation } from 'rfc6902';

const POINTER = /^(\/([^~]|~[01])*)*$/;

export type PatchResult = { ok: true; value: unknown } | { ok: false; index: number; message: string };

const ERROR_TEXT: Record<string, string> = {
  MissingError: 'the path (or from) does not exist in the document, or an array index is out of range or malformed (no leading zeros, no "-" except to append)',
  TestError: 'test failed: the value at the path differs from the expected value',
  InvalidOperationError: 'invalid operation',
};

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
    }
  }
  const copy = structuredClone(doc);
  // A pointer into the root must be applied to a container; wrap so `""` paths work too.
  const box = { root: copy };
  const boxed = ops.map((op) => {
    const o = { ...op, path: '/root' + op.path } as Operation & { from?: string };
    if ('from' in op && typeof op.from === 'string') o.from = '/root' + op.from;
    return o as Operation;
  });
  for (let i = 0; i < boxed.length; i++) {
    let err: unknown;
    try {
      [err] = applyPatch(box, [boxed[i]!]);
    } catch (e) {
      err = e;
    }
    if (err) {
      const name = err instanceof Error ? err.name : 'Error';
      return { ok: false, index: i, message: ERROR_TEXT[name] ?? (err instanceof Error ? err.message : String(err)) };
    }
  }
  return { ok: true, value: box.root };
}

/** RFC 7396 JSON Merge Patch: objects merge recursively, `null` deletes, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyMergePatch(out[key], value);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
