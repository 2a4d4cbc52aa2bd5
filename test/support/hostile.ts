import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './repo.js';

// The hostile corpus (test/fixtures/hostile/, see its README.md): repos that `berth validate` must
// reject, each with an expect.json naming what it must report. Read by test/render/hostile.test.ts.

export const HOSTILE = path.join(ROOT, 'test/fixtures/hostile');

/** One problem validate must report: same file and line, a message matching `message`. */
export interface ExpectedProblem {
  code: string;
  file: string;
  line: number;
  /** A substring of the message, or a regular expression written as "/source/flags". */
  message: string;
  /** When set: the problem appears only in these environments (Problem.env, e.g. "production"). */
  env?: string;
}

/** Content that cannot be committed (too big, or a link to a device): written into a temp copy of the case before it is read. */
export type Generator =
  | { generator: 'big-file'; file: string; bytes: number }
  | { generator: 'many-keys'; file: string; count: number }
  | { generator: 'many-files'; dir: string; count: number; bytes?: number }
  | { generator: 'alias-bomb'; file: string; depth: number; width: number }
  | { generator: 'deep-nesting'; file: string; depth: number; plugin?: boolean }
  | { generator: 'symlink'; file: string; target: string };

export interface HostileCase {
  name: string;
  dir: string;
  /** Why the repo is hostile: one sentence. */
  about: string;
  /** Problems validate must report (each present; others may be reported too). */
  problems: ExpectedProblem[];
  generate?: Generator[];
  /** Also run the real `berth validate --repo` on this case. */
  cli?: boolean;
}

/** Every case, by name; folders starting with "_" are not cases (e.g. _outside, the target of links that leave a repo). */
export function hostileCases(): HostileCase[] {
  return readdirSync(HOSTILE, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('_'))
    .map((e) => e.name)
    .sort()
    .map((name) => {
      const dir = path.join(HOSTILE, name);
      const spec = JSON.parse(readFileSync(path.join(dir, 'expect.json'), 'utf8')) as Omit<HostileCase, 'name' | 'dir'>;
      return { ...spec, name, dir };
    });
}

/** `message` of an expectation as a test: "/re/flags" is a regular expression, anything else a substring. */
export function messageMatcher(message: string): (actual: string) => boolean {
  const re = /^\/(.+)\/([a-z]*)$/s.exec(message);
  if (re) {
    const regex = new RegExp(re[1]!, re[2]);
    return (actual) => regex.test(actual);
  }
  return (actual) => actual.includes(message);
}

/** The head of every generated app file; generated content starts on line 6. */
function appHead(name = 'web'): string {
  return `apiVersion: berth/v1\nkind: App\nmetadata: { name: ${name} }\nspec:\n  image: berth-demo/httpd:1.0\n`;
}

/** The text (or link) one generator writes, relative to the case copy at `dir`. */
function runGenerator(dir: string, g: Generator): void {
  const write = (rel: string, text: string): void => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  };
  switch (g.generator) {
    case 'big-file': {
      // One long argument: `  args: ["aaa…"]` fills the file to exactly `bytes`.
      const head = appHead() + '  args: ["';
      write(g.file, head + 'a'.repeat(Math.max(0, g.bytes - head.length - 3)) + '"]\n');
      return;
    }
    case 'many-keys': {
      const lines = Array.from({ length: g.count }, (_, i) => `    K${i}: v\n`);
      write(g.file, appHead() + '  env:\n' + lines.join(''));
      return;
    }
    case 'many-files': {
      // Padded with comment lines: these files are read and parsed, and short lines keep that quick.
      for (let i = 0; i < g.count; i++) {
        const head = appHead(`app-${i}`);
        const pad = Math.max(0, (g.bytes ?? 0) - head.length);
        const line = '#' + 'a'.repeat(98) + '\n';
        write(path.join(g.dir, `app-${i}.yaml`), head + line.repeat(Math.floor(pad / line.length)) + ' '.repeat(pad % line.length));
      }
      return;
    }
    case 'alias-bomb': {
      // Billion laughs: level 0 is `width` strings, each further level `width` aliases of the one before.
      const lines = [`  args: &l0 [${Array(g.width).fill('"lol"').join(', ')}]\n`];
      for (let i = 1; i < g.depth; i++) lines.push(`  x${i}: &l${i} [${Array(g.width).fill(`*l${i - 1}`).join(', ')}]\n`);
      write(g.file, appHead() + lines.join('') + `  command: *l${g.depth - 1}\n`);
      return;
    }
    case 'deep-nesting': {
      // All on line 6, so the line of the problem does not depend on where the parser gives up. An
      // app's args must be strings, so the schema refuses any nesting there; a plugin's config is free-form.
      const nested = '['.repeat(g.depth) + ']'.repeat(g.depth);
      if (g.plugin) write(g.file, `apiVersion: berth/v1\nkind: Plugin\nmetadata: { name: deep }\nspec:\n  type: scaler\n  config: { a: ${nested} }\n  use: log\n`);
      else write(g.file, appHead() + '  args: ' + nested + '\n');
      return;
    }
    case 'symlink':
      mkdirSync(path.dirname(path.join(dir, g.file)), { recursive: true });
      symlinkSync(g.target, path.join(dir, g.file));
      return;
  }
}

/** A temp copy of the case (links copied as links) with its generators run; the caller removes it. */
export function materialise(c: HostileCase): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `berth-hostile-${c.name}-`));
  cpSync(c.dir, dir, { recursive: true, verbatimSymlinks: true });
  for (const g of c.generate ?? []) runGenerator(dir, g);
  return dir;
}
