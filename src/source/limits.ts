// How much a config repo may hold. A repo is input from whoever can push to it: these caps keep one
// commit from taking the controller down (memory, or minutes of parsing), and each is far above what
// a real repo needs (an app file is a few KB; an environment of 250 apps is about 1 MB of YAML).
// Every refusal is a problem with file:line that names the limit and the size found.

import type { UnreadFile } from './types.js';

const MiB = 1024 * 1024;

/** Largest config file berth reads. Checked before the file is read (directory) or parsed (Git). */
export const MAX_FILE_BYTES = 1 * MiB;

/** Largest total of the config files of one revision (berth.yaml, apps/, overlays/, plugins/). */
export const MAX_REPO_BYTES = 8 * MiB;

/**
 * Most YAML nodes (keys, values and list items) in one document, an alias counting as all the nodes
 * it stands for: bounds a document's memory and the work of every later stage.
 */
export const MAX_DOC_NODES = 100_000;

/** Deepest nesting of mappings and lists in one document (parsers recurse once per level). */
export const MAX_DOC_DEPTH = 64;

/**
 * `yaml`'s own alias guard (its `maxAliasCount`): uses of an anchor times the aliases inside it.
 * MAX_DOC_NODES bounds what aliases expand to; this stops a bomb before it is expanded.
 */
export const MAX_ALIAS_COUNT = 100;

/**
 * Which config files of one revision are read, decided file by file in reading order (berth.yaml
 * first): each must be at most MAX_FILE_BYTES, and together at most MAX_REPO_BYTES; once that is
 * reached, no later file is read. A file not read is a problem wherever render needs it, never absent.
 */
export class ReadBudget {
  #total = 0;
  #full = false;

  /** undefined: read it (its bytes now count); else why it stays unread. */
  admit(bytes: number): UnreadFile | undefined {
    if (bytes > MAX_FILE_BYTES) return { limit: 'file', bytes };
    this.#total += bytes;
    if (this.#full || this.#total > MAX_REPO_BYTES) {
      this.#full = true;
      return { limit: 'repo', bytes, total: this.#total };
    }
    return undefined;
  }
}

/** Reading order: the repository file first, then by path (the order of a Revision's files). */
export function readingOrder(a: string, b: string): number {
  const ra = a.includes('/') ? 1 : 0;
  const rb = b.includes('/') ? 1 : 0;
  if (ra !== rb) return ra - rb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `52428800` → `50 MiB`, `50000000` → `47.7 MiB`, `2500` → `2.4 KiB`: sizes in problem messages. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 * MiB], ['MiB', MiB], ['KiB', 1024]] as const) {
    if (bytes >= size) return `${Number.isInteger(bytes / size) ? bytes / size : (bytes / size).toFixed(1)} ${unit}`;
  }
  return `${bytes} bytes`;
}
