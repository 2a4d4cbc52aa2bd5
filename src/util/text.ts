/** `1 replica`, `3 replicas`: a count with its noun (English plural by `s`). */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Cuts `text` to at most `max` characters, ending in `…` when cut. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Joins parts into at most `max` characters, ending with `(+N more)` when some do not fit. */
export function joinWithin(parts: readonly string[], max: number, separator = '; '): string {
  const full = parts.join(separator);
  if (full.length <= max) return full;
  for (let keep = parts.length - 1; keep >= 1; keep--) {
    const text = `${parts.slice(0, keep).join(separator)}${separator}(+${parts.length - keep} more)`;
    if (text.length <= max) return text;
  }
  return truncate(full, max);
}
