import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { generateRepo } from '../../bench/generate.js';
import { parseFast } from '../../src/render/parse-fast.js';
import { parsePrecise, parseYaml, type ParseResult } from '../../src/render/parse.js';
import { formatProblem } from '../../src/render/problems.js';
import { validateRepository } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { appYaml, EXAMPLE_REPO, memoryRevision, REPO_YAML, ROOT } from '../support/repo.js';

// The fast path (js-yaml) may only ever answer where `yaml` (the precise path) gives the same
// value; everywhere else parseYaml must be exactly the precise path, problems and all.

type Path = 'fast' | 'precise';

/** Checks the contract on one source text and says which path parseYaml took. */
function agree(source: string): Path {
  const fast = parseFast(source);
  const precise = parsePrecise('f.yaml', source);
  const chosen = parseYaml('f.yaml', source);
  assert.deepStrictEqual(plain(chosen), plain(precise), `parseYaml and the precise path disagree on ${JSON.stringify(source)}`);
  if (fast === undefined) return 'precise';
  assert.ok(precise.ok, `the fast path accepted what yaml rejects: ${JSON.stringify(source)} → ${precise.ok ? '' : precise.problems.map(formatProblem).join('; ')}`);
  assert.deepStrictEqual(fast, precise.doc.value, `the parsers read ${JSON.stringify(source)} differently`);
  return 'fast';
}

function plain(r: ParseResult): unknown {
  return r.ok ? { ok: true, value: r.doc.value } : r;
}

function valueOf(source: string): unknown {
  const r = parseYaml('f.yaml', source);
  assert.ok(r.ok, r.ok ? '' : r.problems.map(formatProblem).join('; '));
  return r.doc.value;
}

// Table: source, the value `yaml` (YAML 1.2 core schema) gives, and the path that must read it.
const VALUES: { name: string; source: string; value: unknown; path: Path }[] = [
  {
    name: 'booleans: only true/false spellings; YAML 1.1 yes/no/on/off stay strings',
    source: 'b: [true, True, TRUE, false, False, FALSE, yes, no, on, off, y, n, Yes, NO, On, OFF, tRUE]\n',
    value: { b: [true, true, true, false, false, false, 'yes', 'no', 'on', 'off', 'y', 'n', 'Yes', 'NO', 'On', 'OFF', 'tRUE'] },
    path: 'fast',
  },
  {
    name: 'integers: 0755 is decimal, 0o/0x prefixes, no underscores, no binary, no signed prefixes',
    source: 'i: [0755, 007, 0o755, 0o8, 0x1F, 0xff, 0X1F, 1_000, -0x1, +0o7, 0b101, +5, -12, 12345678901234567890]\n',
    value: { i: [755, 7, 493, '0o8', 31, 255, '0X1F', '1_000', '-0x1', '+0o7', '0b101', 5, -12, 12345678901234567000] },
    path: 'fast',
  },
  {
    name: 'floats, infinities and NaN (overflow included)',
    source: 'f: [1.5, .5, 5., -.5, 1e3, 1E-3, +1.5e+3, .inf, -.Inf, +.INF, .nan, .NaN, .NAN, -.nan, 1e400, -1e400, 1.0, 1_0.5, .e3, 1e, 0.1e1]\n',
    value: { f: [1.5, 0.5, 5, -0.5, 1000, 0.001, 1500, Infinity, -Infinity, Infinity, NaN, NaN, NaN, '-.nan', Infinity, -Infinity, 1, '1_0.5', '.e3', '1e', 1] },
    path: 'fast',
  },
  { name: 'negative zero', source: 'a: -0\nb: -0.0\nc: +0\n', value: { a: -0, b: -0, c: 0 }, path: 'fast' },
  {
    name: 'null spellings',
    source: 'a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: nUll\ng: "null"\nh: [~, ]\n',
    value: { a: null, b: null, c: null, d: null, e: null, f: 'nUll', g: 'null', h: [null] },
    path: 'fast',
  },
  {
    name: 'timestamps and sexagesimals stay strings',
    source: 'a: 2001-12-14t21:59:43.10-05:00\nb: 2002-12-14\nc: 12:30:00\nd: 1:30\n',
    value: { a: '2001-12-14t21:59:43.10-05:00', b: '2002-12-14', c: '12:30:00', d: '1:30' },
    path: 'fast',
  },
  { name: '<< is an ordinary key (merge keys are off in YAML 1.2)', source: 'a:\n  <<: { b: 1 }\n  c: 2\n', value: { a: { '<<': { b: 1 }, c: 2 } }, path: 'fast' },
  {
    name: 'non-string keys become their string form',
    source: '1: a\ntrue: b\n1.50: c\n.inf: d\n0x10: e\n"": f\n-0: g\n',
    value: { '1': 'a', true: 'b', '1.5': 'c', Infinity: 'd', '16': 'e', '': 'f', '0': 'g' },
    path: 'fast',
  },
  {
    name: 'prototype names are own keys',
    source: '__proto__: { x: 1 }\nconstructor: 1\ntoString: 2\n',
    value: Object.defineProperty({ constructor: 1, toString: 2 }, '__proto__', { value: { x: 1 }, enumerable: true, writable: true, configurable: true }),
    path: 'fast',
  },
  {
    name: 'quoted scalars and escapes',
    source: `a: "\\x41\\u00e9\\N\\t\\"q\\""\nb: 'it''s'\nc: "#not a comment"\nd: e#f\ng: h # comment\n`,
    value: { a: 'Aé\u0085\t"q"', b: "it's", c: '#not a comment', d: 'e#f', g: 'h' },
    path: 'fast',
  },
  {
    name: 'block scalars and chomping',
    source: 'a: |\n  one\n  two\nb: |-\n  strip\n\nc: |+\n  keep\n\nd: >\n  folded\n  text\n\n  para\ne: >\n  x\n    more\n  \n  y\n',
    value: { a: 'one\ntwo\n', b: 'strip', c: 'keep\n\n', d: 'folded text\npara\n', e: 'x\n  more\n\ny\n' },
    path: 'fast',
  },
  { name: 'plain scalars folded over lines', source: 's: plain\n  continued\n\n  paragraph\n', value: { s: 'plain continued\nparagraph' }, path: 'fast' },
  {
    name: 'flow and block collections, compact sequences',
    source: 'x:\n- a\n- [b, {c: d},]\n- k: v\n  l: w\n-\n  - nested\ny: { m: [1, 2], n: {} }\n',
    value: { x: ['a', ['b', { c: 'd' }], { k: 'v', l: 'w' }, ['nested']], y: { m: [1, 2], n: {} } },
    path: 'fast',
  },
  { name: 'CRLF line ends, BOM and a document start marker', source: '\ufeff# header\r\n---\r\na: 1\r\nb: "x"\r\n', value: { a: 1, b: 'x' }, path: 'fast' },
  { name: 'unicode line separators are content', source: 'a: x\u2028y\nb: z\u0085w\n', value: { a: 'x\u2028y', b: 'z\u0085w' }, path: 'fast' },
  { name: 'a single ... document end', source: 'a: 1\n...\n', value: { a: 1 }, path: 'precise' },
  { name: '%YAML 1.1 switches yaml to YAML 1.1 types', source: '%YAML 1.1\n---\na: yes\nb: 0755\n', value: { a: true, b: 493 }, path: 'precise' },
  { name: 'explicit tags (yaml: !!float 1 is a string)', source: 'a: !!str 5\nb: !!float 1\nc: !!int "7"\n', value: { a: '5', b: '1', c: 7 }, path: 'precise' },
  { name: 'explicit keys (a key column the fast path does not check)', source: 'a: 1\n? b\n: 2\n', value: { a: 1, b: 2 }, path: 'precise' },
  { name: 'a null key is ""', source: '~: a\n', value: { '': 'a' }, path: 'precise' },
  { name: '"1" and 1 are different keys to yaml (same JS key: the last wins)', source: '"1": a\n1: b\n', value: { '1': 'b' }, path: 'precise' },
  { name: 'anchors and aliases', source: 'a: &x { k: 1 }\nb: *x\nc:\n  <<: *x\n', value: { a: { k: 1 }, b: { k: 1 }, c: { '<<': { k: 1 } } }, path: 'precise' },
  { name: 'a byte order mark after blank lines starts the document for yaml', source: '\n\ufeffa: 1\n', value: { a: 1 }, path: 'precise' },
  { name: 'a lone CR is content for yaml', source: 'a: x\ry\n', value: { a: 'x\ry' }, path: 'precise' },
  { name: 'a tab after a value', source: 'a: x\t# c\n', value: { a: 'x' }, path: 'precise' },
  { name: 'a quoted scalar over several lines', source: 'a: "one\n  two"\n', value: { a: 'one two' }, path: 'precise' },
  { name: 'block scalar indentation indicators', source: 'a: >2-\n    indented\n  less\nb: >2\n   \n', value: { a: '  indented\nless', b: '' }, path: 'precise' },
  { name: 'a document that is not a mapping', source: '- a\n- b\n', value: ['a', 'b'], path: 'precise' },
  { name: 'an empty explicit document', source: '---\n', value: null, path: 'precise' },
];

// Table: source, and where `yaml` reports the problem (that the fast path must not hide).
const PROBLEMS: { name: string; source: string; at: string; message: RegExp }[] = [
  { name: 'duplicate key', source: 'a: 1\nb: 2\na: 3\n', at: 'f.yaml:3:1', message: /Map keys must be unique/ },
  { name: 'duplicate key in a flow mapping', source: 'a: { b: 1, b: 2 }\n', at: 'f.yaml:1:12', message: /Map keys must be unique/ },
  { name: 'true and True are the same key', source: 'true: x\nTrue: y\n', at: 'f.yaml:2:1', message: /Map keys must be unique/ },
  { name: 'two documents', source: 'a: 1\n---\nb: 2\n', at: 'f.yaml:2:1', message: /one document per file/ },
  { name: 'two document ends (js-yaml reads one document)', source: 'a: 1\n...\n...\n', at: 'f.yaml:3:1', message: /one document per file/ },
  { name: 'a leading ... (js-yaml reads one document)', source: '...\na: 1\n', at: 'f.yaml:2:1', message: /one document per file/ },
  { name: 'a leading ... after a byte order mark', source: '\ufeff...\r\na: 1\r\n', at: 'f.yaml:2:1', message: /one document per file/ },
  { name: 'empty file', source: '# nothing\n', at: 'f.yaml:1:1', message: /file is empty/ },
  { name: 'tab indentation', source: 'a:\n\t- b\n', at: 'f.yaml:2:1', message: /Tabs are not allowed as indentation/ },
  { name: 'a key over 1024 characters (js-yaml takes it)', source: 'k'.repeat(1100) + ': v\n', at: 'f.yaml:1:1', message: /at most 1024 chars/ },
  { name: 'text after a flow item of a compact sequence (js-yaml takes it)', source: 'x:\n- [a] c: d\n', at: 'f.yaml:2:7', message: /Unexpected scalar token/ },
  { name: 'an indented --- on the first line (js-yaml takes it)', source: '  ---\na: 1\n', at: 'f.yaml:1:3', message: /Implicit keys need to be on a single line/ },
  { name: 'a tab on an empty line of a block scalar (js-yaml takes it)', source: 'a: |\n  x\n\t\nb: 1\n', at: 'f.yaml:3:1', message: /Block scalar lines must not be less indented/ },
  { name: 'an alias without its anchor', source: 'a: 1\nb: *missing\n', at: 'f.yaml:2:4', message: /alias \*missing has no anchor &missing before it/ },
  { name: 'an alias before its anchor', source: 'a: *b\nb: &b 1\n', at: 'f.yaml:1:4', message: /alias \*b has no anchor &b before it/ },
  { name: 'an alias inside the node it names', source: 'a: &a { b: [*a] }\n', at: 'f.yaml:1:13', message: /alias \*a is inside the node it refers to/ },
  {
    // yaml's own count: the 9th *b (10 × 11 nodes) is the first over 100.
    name: 'an alias bomb',
    source: 'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n',
    at: 'f.yaml:3:37',
    message: /alias \*b expands to too many nodes/,
  },
];

describe('parse: fast path agrees with yaml', () => {
  for (const c of VALUES) {
    it(c.name, () => {
      assert.equal(agree(c.source), c.path);
      assert.deepStrictEqual(valueOf(c.source), c.value);
    });
  }

  for (const c of PROBLEMS) {
    it(`problem: ${c.name}`, () => {
      assert.equal(agree(c.source), 'precise');
      const r = parseYaml('f.yaml', c.source);
      assert.ok(!r.ok);
      const p = r.problems[0]!;
      assert.equal(`${p.file}:${p.line}:${p.column}`, c.at);
      assert.equal(p.code, 'yaml-syntax');
      assert.match(p.message, c.message);
    });
  }

  it('reads the example repo and the benchmark repo the fast way', () => {
    const files = [...yamlFiles(EXAMPLE_REPO), ...generateRepo(30).values()];
    for (const source of files) assert.equal(agree(source), 'fast', source);
  });

  // A longer hunt: BERTH_PARSE_FUZZ=200000 BERTH_PARSE_FUZZ_SEED=2 node scripts/test.mjs parse-fast
  const iterations = Number(process.env.BERTH_PARSE_FUZZ ?? 1500);
  const seed = Number(process.env.BERTH_PARSE_FUZZ_SEED ?? 8);
  it(`agrees on ${iterations} mutated documents (fuzz, seed ${seed})`, async () => {
    const seeds = [...yamlFiles(EXAMPLE_REPO), ...yamlFiles(path.join(ROOT, 'test/fixtures')), ...generateRepo(2).values(), ...VALUES.map((c) => c.source), ...PROBLEMS.map((c) => c.source)];
    const all = [...seeds, ...seeds.map((s) => s.replace(/\n/g, '\r\n'))];
    const random = mulberry32(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const paths: Record<Path, number> = { fast: 0, precise: 0 };
    // yaml warns on stderr for each collection used as a key, which the mutations make by the
    // dozen; warnings are emitted on the next tick, so printing resumes after one.
    const printers = process.listeners('warning');
    process.removeAllListeners('warning');
    try {
      for (let i = 0; i < iterations; i++) {
        let source = pick(all);
        for (let m = 1 + Math.floor(random() * 4); m > 0; m--) source = mutate(source, random, pick);
        paths[agree(source)]++;
      }
    } finally {
      await new Promise((resolve) => setImmediate(resolve));
      for (const printer of printers) process.on('warning', printer);
    }
    // Both sides must really be exercised, or the fuzz proves nothing.
    assert.ok(paths.fast > iterations / 10 && paths.precise > iterations / 10, JSON.stringify(paths));
  });
});

describe('parse: problems through a render keep their file:line:col', () => {
  const secrets = envSecretSource({ BERTH_SECRET_DB_PASSWORD: 'x' });
  const overlay = (body: string) => `apiVersion: berth/v1\nkind: Overlay\ntarget: api\n${body}`;
  const cases: { name: string; files: Record<string, string>; problems: string[] }[] = [
    {
      name: 'unknown field (at the key) and wrong type (at the value)',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  replcas: 2\n  stopGracePeriodSeconds: soon\n') },
      problems: ['apps/api.yaml:7:3 unknown-field', 'apps/api.yaml:8:27 schema'],
    },
    {
      name: 'route conflict across files, at the route key',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  route: { host: a.test }\n'), 'apps/web.yaml': appYaml('web', '\n  route: { host: a.test }\n') },
      problems: ['apps/web.yaml:8:3 route-conflict'],
    },
    {
      name: 'overlay patch that fails, at its operation',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api'), 'overlays/production/api.yaml': overlay('patch:\n  - { op: add, path: /spec/replicas, value: 2 }\n  - { op: remove, path: /spec/nothing }\n') },
      problems: ['overlays/production/api.yaml:6:5 overlay-failed'],
    },
    {
      name: 'an alias without its anchor in an app file: a problem, not a crash',
      files: { 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  command: *cmd\n') },
      problems: ['apps/api.yaml:7:12 yaml-syntax'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (const [file, source] of Object.entries(c.files)) if (!source.includes('*')) assert.equal(agree(source), 'fast', file);
      const { problems } = validateRepository(memoryRevision(c.files), { secrets });
      assert.deepEqual(
        problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.code}`),
        c.problems,
      );
    });
  }
});

function yamlFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const stat = lstatSync(p);
    // Fixture repos hold symlinks on purpose (some broken, some leading out): only real files are material.
    if (stat.isSymbolicLink()) continue;
    if (stat.isDirectory()) yamlFiles(p, out);
    else if (/\.ya?ml$/.test(name)) out.push(readFileSync(p, 'utf8'));
  }
  return out;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Characters and fragments where YAML parsers tend to differ. */
const FRAGMENTS = [' ', '  ', '\n', '\n  ', '\n- ', ':', ': ', '-', '- ', '? ', '#', ' #', '"', "'", '[', ']', '{', '}', ',', '|', '>', '&a ', '*a', '!', '!!str ', '%', '\t', '\r', '\\', '\\\n', '~', '@', '`', '.', '0', '0x', '0o', '1e', '.inf', '_', '+', 'null', 'yes', '<<', '---', '...', '\ufeff', '\u0085', '\u2028', '\x07', 'k: v\n', '[x]', '{a: 1}', '"q"'];

function mutate(source: string, random: () => number, pick: <T>(xs: readonly T[]) => T): string {
  const at = Math.floor(random() * (source.length + 1));
  const lines = source.split('\n');
  const line = Math.floor(random() * lines.length);
  switch (Math.floor(random() * 5)) {
    case 0:
    case 1:
      return source.slice(0, at) + pick(FRAGMENTS) + source.slice(at);
    case 2:
      return source.slice(0, at) + source.slice(at + 1 + Math.floor(random() * 3));
    case 3:
      lines.splice(Math.floor(random() * lines.length), 0, lines[line]!);
      return lines.join('\n');
    default:
      lines[line] = random() < 0.5 ? '  ' + lines[line]! : lines[line]!.replace(/^ {1,2}/, '');
      return lines.join('\n');
  }
}
