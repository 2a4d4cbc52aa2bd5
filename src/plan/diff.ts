import { canonicalJson } from '../util/canonical.js';

/** Flattens JSON into path → canonical value text (key order never counts), for a field-level diff of two container specs. */
function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  if (value !== undefined) out.set(prefix, canonicalJson(value));
}

// `hmac`: the keyed digest; `sha256`: the unkeyed one of containers made before it (render/secrets.ts).
const SECRET = /^"secret:([^:]+):(sha256|hmac):/;

/** `field: old → new` lines between two canonical container specs; secrets print as "(secret changed)". */
export function specDiff(oldJson: string, next: Record<string, unknown>): string[] {
  let old: unknown;
  try {
    old = oldJson ? JSON.parse(oldJson) : undefined;
  } catch {
    old = undefined;
  }
  if (old === undefined) return ['(previous spec unknown: container has no berth.spec label)'];
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(old, '', a);
  flatten(JSON.parse(JSON.stringify(next)), '', b);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const lines: string[] = [];
  for (const key of keys) {
    const before = a.get(key);
    const after = b.get(key);
    if (before === after) continue;
    const label = key === 'name' || key === 'labels' ? key : `spec.${key}`;
    if ((before && SECRET.test(before)) || (after && SECRET.test(after))) {
      const rekeyed = SECRET.exec(before ?? '')?.[2] === 'sha256' && SECRET.exec(after ?? '')?.[2] === 'hmac';
      lines.push(`${label}: (secret ${before === undefined ? 'added' : after === undefined ? 'removed' : rekeyed ? 'digest now keyed; the value may be unchanged' : 'changed'})`);
    } else if (before === undefined) lines.push(`${label}: + ${after}`);
    else if (after === undefined) lines.push(`${label}: - ${before}`);
    else lines.push(`${label}: ${before} → ${after}`);
  }
  return lines;
}
