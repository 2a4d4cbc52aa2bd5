import {
  COLLECTION_STYLE_BLOCK,
  EVENT_ALIAS,
  EVENT_DOCUMENT,
  EVENT_MAPPING,
  EVENT_POP,
  EVENT_SCALAR,
  getScalarValue,
  parseEvents,
  SCALAR_STYLE_DOUBLE_QUOTED,
  SCALAR_STYLE_FOLDED_BLOCK,
  SCALAR_STYLE_LITERAL_BLOCK,
  SCALAR_STYLE_PLAIN,
  SCALAR_STYLE_SINGLE_QUOTED,
  type Event,
} from 'js-yaml';
import { MAX_DOC_DEPTH, MAX_DOC_NODES } from '../source/limits.js';

// The fast path of parseYaml (parse.ts). js-yaml's parser turns a file into events several times
// faster than `yaml` builds its document tree; the plain value is then built here by `yaml`'s own
// rules (its YAML 1.2 core schema and its toJS()). The two parsers still differ at the edges, so
// only the common case is read here: every other file returns undefined and parseYaml reads it
// with `yaml`, exactly as before, so its problems keep today's messages and positions.
// test/render/parse-fast.test.ts holds both paths to that.

// yaml/dist/schema/core, in its order: the same tests and the same conversions.
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;
/** First characters of every non-string plain scalar above. */
const NOT_ALWAYS_STRING = /^(?:$|[~nNtTfF0-9+.-])/;

/** The value of an untagged plain scalar. */
function resolvePlain(s: string): unknown {
  if (!NOT_ALWAYS_STRING.test(s)) return s;
  if (NULL.test(s)) return null;
  if (BOOL.test(s)) return s[0] === 't' || s[0] === 'T';
  if (INT_OCT.test(s)) return parseInt(s.substring(2), 8);
  if (INT.test(s)) return parseInt(s, 10);
  if (INT_HEX.test(s)) return parseInt(s.substring(2), 16);
  if (FLOAT_NAN.test(s)) return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (FLOAT_EXP.test(s) || FLOAT.test(s)) return parseFloat(s);
  return s;
}

/** `yaml` rejects an implicit key whose `:` is more than 1024 characters after its start; js-yaml does not. */
const MAX_LINE = 1024;

/**
 * Text the two parsers read differently: a CR without LF ends a line for js-yaml (as YAML 1.2
 * says) but is content for `yaml`; around tabs `yaml` is the stricter (e.g. a tab on an empty
 * line of a block scalar); a byte order mark after the first character (`yaml` drops one that
 * starts a document after blank lines); a `...` line (`yaml` sees a document before a leading one,
 * and two documents in `...\n...`).
 */
const DIVERGENT_TEXT = /\t|\r(?!\n)|[\s\S]\ufeff|(?:^\ufeff?|\n)\.\.\.(?![^ \r\n])/;

/** `---` in column 0 after blank and comment lines: js-yaml also takes an indented `---` on the first line. */
const DOCUMENT_START = /^\ufeff?(?:[ ]*(?:#[^\n]*)?\r?\n)*---/;

/** `|2`, `>-4`, …: with only blank lines, `yaml` reads `>2\n   \n` as "", js-yaml as " \n". */
const INDENTATION_INDICATOR = /[|>][-+]?[1-9]/;

function hasLongLine(content: string): boolean {
  if (content.length <= MAX_LINE) return false;
  let start = 0;
  for (let nl = content.indexOf('\n'); nl >= 0; nl = content.indexOf('\n', start)) {
    if (nl - start > MAX_LINE) return true;
    start = nl + 1;
  }
  return content.length - start > MAX_LINE;
}

interface Frame {
  value: Record<string, unknown> | unknown[];
  mapping: boolean;
  block: boolean;
  /** The key waiting for its value, in a mapping. */
  key: string | undefined;
  keyColumn: number;
}

/**
 * The plain value of one YAML file, read the fast way, or undefined when the file is not the
 * common case (or not valid YAML): then only `yaml` may say what it holds.
 *
 * The common case: a single document whose root is a mapping; no directive (`%YAML 1.1` switches
 * `yaml` to YAML 1.1 types), none of the text above, no explicit tag
 * (`yaml` applies `!!int` and the like by rules of its own), no anchor or alias (alias limits and
 * unknown anchors are left to `yaml`), no quoted scalar over several lines (the two fold an
 * escaped line break before an empty line differently), no block scalar indentation indicator;
 * keys are strings, numbers or booleans (`yaml` turns a null key into "" and a collection key
 * into its YAML text), never equal as strings (stricter than `yaml`, which compares values: "1"
 * and 1 differ there), and in each block mapping all in one column: js-yaml reads `x:\n- [a] c: d`
 * as a key `c` of the outer mapping, where `yaml` (and YAML) see an error.
 */
export function parseFast(content: string): Record<string, unknown> | undefined {
  const read = readFast(content);
  return read && 'value' in read ? read.value : undefined;
}

/**
 * What the fast path makes of a file: its value; or, for a document over MAX_DOC_NODES, the count
 * and the offset of the first node past the limit (counted as parse.ts counts them, so both paths
 * refuse a document alike); or undefined: only `yaml` may say.
 */
export type FastRead = { value: Record<string, unknown> } | { nodes: number; at: number } | undefined;

/** parseFast, also refusing a document with too many nodes before building anything of it (limits.ts). */
export function readFast(content: string): FastRead {
  let events: Event[];
  try {
    // Deeper documents go to `yaml`, whose parser counts depth the way MAX_DOC_DEPTH is meant (parse.ts).
    events = parseEvents(content, { maxDepth: MAX_DOC_DEPTH - 1 });
  } catch {
    return undefined;
  }
  const nodes = countNodes(events);
  if (nodes.count > MAX_DOC_NODES) return { nodes: nodes.count, at: nodes.at };
  if (DIVERGENT_TEXT.test(content) || hasLongLine(content)) return undefined;
  const value = build(content, events);
  return value && { value };
}

/** Scalars, mappings, sequences and aliases, and where the first one past MAX_DOC_NODES starts. */
function countNodes(events: readonly Event[]): { count: number; at: number } {
  let count = 0;
  let at = -1;
  for (const e of events) {
    if (e.type === EVENT_POP || e.type === EVENT_DOCUMENT) continue;
    if (++count !== MAX_DOC_NODES + 1) continue;
    if (e.type === EVENT_SCALAR) at = e.style === SCALAR_STYLE_SINGLE_QUOTED || e.style === SCALAR_STYLE_DOUBLE_QUOTED ? e.valueStart - 1 : e.valueStart;
    else if (e.type === EVENT_ALIAS) at = e.anchorStart - 1;
    else at = e.start;
  }
  return { count, at };
}

function build(content: string, events: readonly Event[]): Record<string, unknown> | undefined {
  const first = events[0];
  if (first?.type !== EVENT_DOCUMENT || first.directives.length || events[1]?.type !== EVENT_MAPPING) return undefined;
  if (first.explicitStart && !DOCUMENT_START.test(content)) return undefined;
  const stack: Frame[] = [];
  let root: Record<string, unknown> | undefined;
  for (let i = 1; i < events.length; i++) {
    const e = events[i]!;
    if (e.type === EVENT_POP) {
      const done = stack.pop();
      if (!done) continue; // the document's own end
      if (done.key !== undefined) return undefined;
      const parent = stack.at(-1);
      if (parent) add(parent, done.value);
      else root = done.value as Record<string, unknown>;
      continue;
    }
    if (e.type === EVENT_ALIAS || e.type === EVENT_DOCUMENT || root) return undefined;
    if (e.tagStart !== -1 || e.anchorStart !== -1) return undefined;
    const parent = stack.at(-1);
    const isKey = parent !== undefined && parent.mapping && parent.key === undefined;
    if (e.type !== EVENT_SCALAR) {
      if (isKey) return undefined;
      stack.push({ value: e.type === EVENT_MAPPING ? {} : [], mapping: e.type === EVENT_MAPPING, block: e.style === COLLECTION_STYLE_BLOCK, key: undefined, keyColumn: -1 });
      continue;
    }
    if (!parent) return undefined;
    const quoted = e.style === SCALAR_STYLE_SINGLE_QUOTED || e.style === SCALAR_STYLE_DOUBLE_QUOTED;
    if (quoted) {
      const nl = content.indexOf('\n', e.valueStart);
      if (nl !== -1 && nl < e.valueEnd) return undefined;
    } else if (e.style === SCALAR_STYLE_LITERAL_BLOCK || e.style === SCALAR_STYLE_FOLDED_BLOCK) {
      // The header is the line before the content.
      if (INDENTATION_INDICATOR.test(content.slice(content.lastIndexOf('\n', e.valueStart - 2) + 1, e.valueStart))) return undefined;
    }
    const text = getScalarValue(content, e);
    const value = e.style === SCALAR_STYLE_PLAIN ? resolvePlain(text) : text;
    if (!isKey) {
      add(parent, value);
      continue;
    }
    if (value === null) return undefined;
    const key = String(value);
    if (Object.hasOwn(parent.value, key)) return undefined;
    if (parent.block) {
      const column = columnOf(content, quoted ? e.valueStart - 1 : e.valueStart);
      if (parent.keyColumn === -1) parent.keyColumn = column;
      else if (column !== parent.keyColumn) return undefined;
    }
    parent.key = key;
  }
  return root;
}

/** yaml/dist/nodes/addPairToJSMap.js: `__proto__`, `constructor`, … become own properties, never the prototype. */
function add(frame: Frame, value: unknown): void {
  if (!frame.mapping) {
    (frame.value as unknown[]).push(value);
    return;
  }
  const map = frame.value as Record<string, unknown>;
  const key = frame.key!;
  if (key in map) Object.defineProperty(map, key, { value, writable: true, enumerable: true, configurable: true });
  else map[key] = value;
  frame.key = undefined;
}

function columnOf(content: string, offset: number): number {
  const lineStart = content.lastIndexOf('\n', offset - 1) + 1;
  return offset - lineStart - (lineStart === 0 && content.charCodeAt(0) === 0xfeff ? 1 : 0);
}
