import type { RepoFile } from '../source/types.js';
import { limitProblem, parseYaml, type ParsedDoc } from './parse.js';
import type { Problem } from './problems.js';
import { validateDoc, type DocKind } from './schema.js';

export interface CheckedDoc {
  doc?: ParsedDoc;
  /** YAML and schema problems of this file on its own. */
  problems: Problem[];
}

/**
 * Parse + schema results keyed by blob id and path: a new commit re-parses and re-validates
 * only the files whose content changed. Entries not used by the last revision are dropped.
 */
export class DocCache {
  #entries = new Map<string, CheckedDoc>();
  #used = new Set<string>();
  #memo = new Map<string, unknown>();
  #memoUsed = new Set<string>();
  hits = 0;
  misses = 0;

  check(file: RepoFile, kind: DocKind): CheckedDoc {
    // Left unread by the source (a limit, a refused link): a problem, never an absent or empty file.
    // Never cached: the same content may be read in one revision and left unread in the next.
    if (file.unread) return { problems: [limitProblem(file.path, file.unread)] };
    const key = `${kind}\0${file.path}\0${file.id}`;
    this.#used.add(key);
    const cached = this.#entries.get(key);
    if (cached) {
      this.hits++;
      return cached;
    }
    this.misses++;
    const parsed = parseYaml(file.path, file.content);
    const result: CheckedDoc = parsed.ok ? { doc: parsed.doc, problems: validateDoc(kind, parsed.doc) } : { problems: parsed.problems };
    // Documents are shared between renders: freeze so no stage can patch a cached value in place.
    if (result.doc) deepFreeze(result.doc.value);
    this.#entries.set(key, result);
    return result;
  }

  /** A derived result (e.g. one rendered app) whose key names every input it depends on. */
  memo<T>(key: string, compute: () => T): T {
    this.#memoUsed.add(key);
    if (this.#memo.has(key)) {
      this.hits++;
      return this.#memo.get(key) as T;
    }
    const value = compute();
    this.#memo.set(key, value);
    return value;
  }

  /** Forget entries not used since the last prune (call after each revision). */
  prune(): void {
    for (const key of this.#entries.keys()) if (!this.#used.has(key)) this.#entries.delete(key);
    for (const key of this.#memo.keys()) if (!this.#memoUsed.has(key)) this.#memo.delete(key);
    this.#used.clear();
    this.#memoUsed.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}

function deepFreeze(v: unknown): void {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
}
