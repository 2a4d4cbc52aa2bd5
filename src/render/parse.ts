import { Alias, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair } from 'yaml';
import { parseFast } from './parse-fast.js';
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

const OPTIONS = { prettyErrors: false, uniqueKeys: true, strict: true } as const;

/**
 * Parses one YAML file holding exactly one document. Only the plain value is kept: positions are
 * recomputed from the source text when an error needs one, so a cache of a large repo stays small.
 * The common case is read by the fast parser; every other file by `yaml`, which also reports
 * every problem (see parse-fast.ts).
 */
export function parseYaml(file: string, content: string): ParseResult {
  const value = parseFast(content);
  if (value !== undefined) return { ok: true, doc: { file, value, locate: lazyLocator(content) } };
  return parsePrecise(file, content);
}

/** parseYaml with `yaml` alone: the reference the fast path must agree with, and the path of every file with a YAML problem. */
export function parsePrecise(file: string, content: string): ParseResult {
  const doc = parseDocument(content, OPTIONS);
  let counter: LineCounter | undefined;
  const pos = (offset: number): Position => {
    if (!counter) {
      counter = new LineCounter();
      counter.addNewLine(0);
      for (let i = content.indexOf('\n'); i >= 0; i = content.indexOf('\n', i + 1)) counter.addNewLine(i + 1);
    }
    const p = counter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const problems: Problem[] = [];
  for (const err of doc.errors) {
    const message = err.code === 'MULTIPLE_DOCS' ? 'one document per file expected; move the second document to a file of its own' : `YAML syntax error: ${firstLine(err.message)}`;
    problems.push({ code: 'yaml-syntax', file, ...pos(err.pos[0]), message });
  }
  if (!problems.length && doc.contents === null) {
    problems.push({ code: 'yaml-syntax', file, line: 1, column: 1, message: 'file is empty; expected a berth/v1 document' });
  }
  if (problems.length) return { ok: false, problems };
  const converted = toPlain(doc);
  if (!converted.ok) {
    const at = converted.alias?.range ? pos(converted.alias.range[0]) : { line: 1, column: 1 };
    return { ok: false, problems: [{ code: 'yaml-syntax', file, ...at, message: converted.message }] };
  }
  return { ok: true, doc: { file, value: converted.value, locate: lazyLocator(content) } };
}

const MAX_ALIAS_COUNT = 100;

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
