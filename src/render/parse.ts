import { Alias, Composer, type CST, isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, parseDocument, Parser, visit, YAMLParseError, type Document, type Node, type Pair } from 'yaml';
import { formatBytes, MAX_ALIAS_COUNT, MAX_DOC_DEPTH, MAX_DOC_NODES, MAX_FILE_BYTES, MAX_REPO_BYTES } from '../source/limits.js';
import type { UnreadFile } from '../source/types.js';
import { readFast } from './parse-fast.js';
import type { Problem } from './problems.js';

export interface Position {
  line: number;
  column: number;
}

/** A YAML document as plain data, with a way back from a JSON pointer to its line. */
export interface ParsedDoc {
  file: string;
  value: unknown;
  /** Position of the value at `pointer`, or of the key when `key` is set; falls back to the nearest existing parent. */
  locate(pointer: string, key?: boolean): Position;
}

export type ParseResult = { ok: true; doc: ParsedDoc } | { ok: false; problems: Problem[] };

export function splitPointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value at a JSON pointer in plain JSON data, or undefined when the path does not exist. */
export function valueAt(doc: unknown, pointer: string): unknown {
  let cur = doc;
  for (const part of splitPointer(pointer)) {
    if (!cur || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function joinPointer(parts: readonly (string | number)[]): string {
  return parts.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

// uniqueKeys off: `yaml` compares each key with every earlier key of its mapping (50,000 keys took
// 24 s); duplicateKeys() finds the same keys, at the same places, in one pass.
const OPTIONS = { prettyErrors: false, uniqueKeys: false, strict: true } as const;

/** A file over a size limit (limits.ts), at its line 1: left unread by the source, or found too big here. */
export function limitProblem(file: string, unread: UnreadFile): Problem {
  if (unread.limit === 'symlink') return { code: 'symlink', file, line: 1, column: 1, message: unread.reason };
  const message =
    unread.limit === 'file'
      ? `file is ${formatBytes(unread.bytes)}; berth reads config files up to ${formatBytes(MAX_FILE_BYTES)}`
      : `file not read: with it the config files of this revision come to ${formatBytes(unread.total)}; berth reads up to ${formatBytes(MAX_REPO_BYTES)} of config files per revision`;
  return { code: 'too-large', file, line: 1, column: 1, message };
}

function tooManyNodes(file: string, nodes: number, at: Position): Problem {
  return { code: 'too-large', file, ...at, message: `document has ${nodes.toLocaleString('en-US')} YAML nodes (keys, values and list items); berth reads documents of up to ${MAX_DOC_NODES.toLocaleString('en-US')}` };
}

/** Byte count of `content`, but no further than just past the limit. */
function overLimit(content: string): number | undefined {
  // A UTF-8 character takes at most 3 bytes per UTF-16 unit: most files are decided by their length alone.
  if (content.length <= MAX_FILE_BYTES / 3) return undefined;
  const bytes = Buffer.byteLength(content, 'utf8');
  return bytes > MAX_FILE_BYTES ? bytes : undefined;
}

/** Offset → line and column of `content`; the line index is built on first use. */
function positionIn(content: string): (offset: number) => Position {
  let counter: LineCounter | undefined;
  return (offset) => {
    if (!counter) {
      counter = new LineCounter();
      counter.addNewLine(0);
      for (let i = content.indexOf('\n'); i >= 0; i = content.indexOf('\n', i + 1)) counter.addNewLine(i + 1);
    }
    const p = counter.linePos(Math.max(0, offset));
    return { line: p.line, column: p.col };
  };
}

/**
 * Parses one YAML file holding exactly one document. Only the plain value is kept: positions are
 * recomputed from the source text when an error needs one, so a cache of a large repo stays small.
 * The common case is read by the fast parser; every other file by `yaml`, which also reports
 * every problem (see parse-fast.ts).
 */
export function parseYaml(file: string, content: string): ParseResult {
  const bytes = overLimit(content);
  if (bytes !== undefined) return { ok: false, problems: [limitProblem(file, { limit: 'file', bytes })] };
  const fast = readFast(content);
  if (fast && 'nodes' in fast) return { ok: false, problems: [tooManyNodes(file, fast.nodes, positionIn(content)(fast.at))] };
  if (fast) return { ok: true, doc: { file, value: fast.value, locate: lazyLocator(content) } };
  return parseChecked(file, content);
}

/**
 * parseYaml with `yaml` alone: the reference the fast path must agree with, and the path of every
 * file with a YAML problem. The limits (limits.ts) come first, each before the work it bounds:
 * size before parsing, depth while parsing, nodes before conversion, alias expansion before any
 * later stage walks the value.
 */
export function parsePrecise(file: string, content: string): ParseResult {
  const bytes = overLimit(content);
  if (bytes !== undefined) return { ok: false, problems: [limitProblem(file, { limit: 'file', bytes })] };
  return parseChecked(file, content);
}

/** parsePrecise once the size is known to be within the limit. */
function parseChecked(file: string, content: string): ParseResult {
  const pos = positionIn(content);
  const parsed = composeBounded(content);
  if ('deep' in parsed) {
    return { ok: false, problems: [{ code: 'yaml-syntax', file, ...pos(parsed.deep), message: `YAML nesting is more than ${MAX_DOC_DEPTH} levels deep; berth reads documents nested up to ${MAX_DOC_DEPTH} levels` }] };
  }
  const doc = parsed.doc;
  const nodes = countNodes(doc);
  if (nodes.count > MAX_DOC_NODES) return { ok: false, problems: [tooManyNodes(file, nodes.count, pos(nodes.at))] };
  const problems: Problem[] = [];
  // Duplicate keys among yaml's own errors, about where yaml would have reported them.
  const duplicates = duplicateKeys(doc);
  let reported = 0;
  const duplicatesBefore = (offset: number): void => {
    for (; reported < duplicates.length && duplicates[reported]! < offset; reported++) problems.push({ code: 'yaml-syntax', file, ...pos(duplicates[reported]!), message: 'YAML syntax error: Map keys must be unique' });
  };
  for (const err of doc.errors) {
    duplicatesBefore(err.pos[0]);
    const message = err.code === 'MULTIPLE_DOCS' ? 'one document per file expected; move the second document to a file of its own' : `YAML syntax error: ${firstLine(err.message)}`;
    problems.push({ code: 'yaml-syntax', file, ...pos(err.pos[0]), message });
  }
  duplicatesBefore(Infinity);
  if (!problems.length && doc.contents === null) {
    problems.push({ code: 'yaml-syntax', file, line: 1, column: 1, message: 'file is empty; expected a berth/v1 document' });
  }
  if (problems.length) return { ok: false, problems };
  const converted = toPlain(doc);
  if (!converted.ok) {
    const at = converted.alias?.range ? pos(converted.alias.range[0]) : { line: 1, column: 1 };
    return { ok: false, problems: [{ code: 'yaml-syntax', file, ...at, message: converted.message }] };
  }
  const expanded = expandedNodes(doc);
  if (expanded.alias) {
    const at = expanded.alias.range ? pos(expanded.alias.range[0]) : { line: 1, column: 1 };
    const message = `YAML alias *${expanded.alias.source} expands to too many nodes: with aliases counted as what they stand for, the document has ${expanded.count.toLocaleString('en-US')}; berth reads documents of up to ${MAX_DOC_NODES.toLocaleString('en-US')}`;
    return { ok: false, problems: [{ code: 'yaml-syntax', file, ...at, message }] };
  }
  return { ok: true, doc: { file, value: converted.value, locate: lazyLocator(content) } };
}

/**
 * parseDocument(content, OPTIONS), giving up at the first point nested deeper than MAX_DOC_DEPTH:
 * `yaml` builds and converts documents recursively, and a few KB of `[[[[…` would otherwise
 * overflow the stack (or abort the process). Its parser keeps an explicit stack, read here.
 */
function composeBounded(content: string): { doc: Document.Parsed } | { deep: number } {
  const parser = new Parser();
  let deep: number | undefined;
  function* tokens(): Generator<CST.Token> {
    for (const lexeme of new Lexer().lex(content)) {
      yield* parser.next(lexeme);
      // The stack holds the document and, at most, one scalar being read besides the collections.
      if (parser.stack.length > MAX_DOC_DEPTH + 2) {
        deep = parser.offset;
        return;
      }
    }
    yield* parser.end();
  }
  let doc: Document.Parsed | undefined;
  for (const next of new Composer(OPTIONS).compose(tokens(), true, content.length)) {
    if (deep !== undefined) break;
    if (!doc) doc = next;
    else {
      // As parseDocument() does.
      doc.errors.push(new YAMLParseError([next.range[0], next.range[1]], 'MULTIPLE_DOCS', 'Source contains multiple documents; please use YAML.parseAllDocuments()'));
      break;
    }
  }
  if (deep !== undefined) return { deep };
  return { doc: doc! };
}

/**
 * Nodes of the document as the fast path counts js-yaml's events (parse-fast.ts): every scalar,
 * mapping, sequence and alias, and an absent key or value of a pair. With where the first one
 * past MAX_DOC_NODES starts.
 */
function countNodes(doc: Document): { count: number; at: number } {
  let count = 0;
  let at = 0;
  const add = (offset: number): void => {
    if (++count === MAX_DOC_NODES + 1) at = offset;
  };
  visit(doc, {
    Node: (_key, node) => add(node.range?.[0] ?? 0),
    Pair: (_key, pair) => {
      const key = pair.key as Node | null;
      if (key === null) add(0);
      if (pair.value === null) add(key?.range?.[1] ?? 0);
    },
  });
  return { count, at };
}

/** Offsets of keys equal to an earlier key of their mapping, as `yaml`'s uniqueKeys finds them. */
function duplicateKeys(doc: Document): number[] {
  const out: number[] = [];
  visit(doc, {
    Map: (_key, map) => {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        // yaml compares scalar keys by value (1 and "1" differ; NaN never equals), others by identity.
        if (!isScalar(pair.key) || Number.isNaN(pair.key.value)) continue;
        if (seen.has(pair.key.value)) out.push(pair.key.range?.[0] ?? 0);
        seen.add(pair.key.value);
      }
    },
  });
  return out.sort((a, b) => a - b);
}

/**
 * The document's size with every alias counted as the nodes it stands for, and the alias at which
 * it passed MAX_DOC_NODES. toJS() shares one value among an anchor's aliases, but every later
 * stage (schema, hashing, printing) walks them one by one. Runs after toPlain(): every alias has
 * an anchor before it and none is inside its anchor.
 */
function expandedNodes(doc: Document): { count: number; alias?: Alias } {
  const anchors = new Map<string, Node>();
  const sizes = new Map<Node, number>();
  const sizeOf = (node: unknown): number => {
    if (node === null || typeof node !== 'object') return 1;
    const known = sizes.get(node as Node);
    if (known !== undefined) return known;
    let size = 1;
    if (isMap(node)) for (const pair of node.items) size += sizeOf(pair.key) + sizeOf(pair.value);
    else if (isSeq(node)) for (const item of node.items) size += sizeOf(item);
    sizes.set(node as Node, size);
    return size;
  };
  let count = 0;
  let last: Alias | undefined;
  let over: Alias | undefined;
  visit(doc, {
    Node: (_key, node) => {
      if (isAlias(node)) {
        // Sized now, in document order: the aliases inside its anchor are sized already.
        const size = sizeOf(anchors.get(node.source));
        sizes.set(node, size);
        count += size;
        last = node;
        // Its anchor's nodes are counted through the alias, not visited again.
      } else {
        if (node.anchor) anchors.set(node.anchor, node);
        count += 1;
      }
      if (count > MAX_DOC_NODES && !over) over = last;
    },
    Pair: (_key, pair) => {
      if (pair.key === null) count++;
      if (pair.value === null) count++;
    },
  });
  return over ? { count, alias: over } : { count };
}

type Plain = { ok: true; value: unknown } | { ok: false; message: string; alias?: Alias };

/**
 * doc.toJS(), minus its alias hazards, each reported at the alias: `yaml` throws for an alias
 * without an anchor before it and for an alias bomb, with no position, and returns a value that
 * contains itself for `&a [*a]` (which later stages could not hash or print).
 */
function toPlain(doc: Document): Plain {
  // Anchors as Alias.resolve() finds them: the last node with that anchor before the alias.
  const anchors = new Map<string, Node>();
  const active: Alias[] = [];
  let found: Plain | undefined;
  visit(doc, {
    Node(_key, node, path) {
      if (!isAlias(node)) {
        if (node.anchor) anchors.set(node.anchor, node);
        return undefined;
      }
      const source = anchors.get(node.source);
      if (!source) found = { ok: false, message: `YAML alias *${node.source} has no anchor &${node.source} before it`, alias: node };
      else if (path.includes(source)) found = { ok: false, message: `YAML alias *${node.source} is inside the node it refers to; a value cannot contain itself`, alias: node };
      if (found) return visit.BREAK;
      // toJS() throws for an alias bomb without saying where: each alias notes when it is resolving.
      const resolve = Alias.prototype.toJSON;
      node.toJSON = function (this: Alias, ...args: Parameters<Alias['toJSON']>) {
        active.push(this);
        const out: unknown = resolve.apply(this, args);
        active.pop();
        return out;
      };
      return undefined;
    },
  });
  if (found) return found;
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown };
  } catch (err) {
    const alias = active.at(-1);
    if (!alias) return { ok: false, message: `YAML error: ${firstLine(err instanceof Error ? err.message : String(err))}` };
    return { ok: false, message: `YAML alias *${alias.source} expands to too many nodes (more than ${MAX_ALIAS_COUNT} through aliases); write the values out or nest fewer aliases`, alias };
  }
}

/** A locate() that re-parses `content` on first use and keeps that AST for later calls. */
function lazyLocator(content: string): ParsedDoc['locate'] {
  let ast: { contents: unknown; counter: LineCounter } | undefined;
  return (pointer, key = false) => {
    if (!ast) {
      const counter = new LineCounter();
      ast = { contents: parseDocument(content, { ...OPTIONS, lineCounter: counter }).contents, counter };
    }
    return locateIn(ast.contents, ast.counter, pointer, key);
  };
}

function locateIn(root: unknown, counter: LineCounter, pointer: string, key: boolean): Position {
  let node: unknown = root;
  let found: Node | Pair | null = (root as Node | null) ?? null;
  let keyNode: unknown = null;
  for (const part of splitPointer(pointer)) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === part);
      if (!pair) break;
      keyNode = pair.key;
      node = pair.value;
      found = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node)) {
      const item = node.items[Number(part)];
      if (item === undefined || !/^(0|[1-9][0-9]*)$/.test(part)) break;
      keyNode = null;
      node = item;
      found = item as Node;
    } else break;
  }
  const target = key && keyNode ? (keyNode as Node) : found;
  const range = target && 'range' in target ? target.range : undefined;
  if (!range) return { line: 1, column: 1 };
  const p = counter.linePos(range[0]);
  return { line: p.line, column: p.col };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
