import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Node, type Pair } from 'yaml';
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

export function joinPointer(parts: readonly (string | number)[]): string {
  return parts.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** Parses one YAML file holding exactly one document, keeping positions for error messages. */
export function parseYaml(file: string, content: string): ParseResult {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(content, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const pos = (offset: number): Position => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const docs = Array.isArray(parsed) ? parsed : [];
  const problems: Problem[] = [];
  for (const d of docs) {
    for (const err of d.errors) {
      problems.push({ code: 'yaml-syntax', file, ...pos(err.pos[0]), message: `YAML syntax error: ${firstLine(err.message)}` });
    }
  }
  const second = docs[1];
  if (second) {
    problems.push({ code: 'yaml-syntax', file, ...pos(second.range[0]), message: 'one document per file expected; move the second document to a file of its own' });
  }
  const doc = docs[0];
  if (!doc || doc.contents === null) {
    problems.push({ code: 'yaml-syntax', file, line: 1, column: 1, message: 'file is empty; expected a berth/v1 document' });
  }
  if (problems.length || !doc) return { ok: false, problems };

  const locate = (pointer: string, key = false): Position => {
    let node: unknown = doc.contents;
    let found: Node | Pair | null = (doc.contents as Node | null) ?? null;
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
    return range ? pos(range[0]) : { line: 1, column: 1 };
  };
  return { ok: true, doc: { file, value: doc.toJS({ maxAliasCount: 100 }), locate } };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
