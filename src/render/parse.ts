import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
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
 */
export function parseYaml(file: string, content: string): ParseResult {
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
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  return { ok: true, doc: { file, value, locate: lazyLocator(content) } };
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
