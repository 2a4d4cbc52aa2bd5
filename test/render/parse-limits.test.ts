import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePrecise, parseYaml, type ParseResult } from '../../src/render/parse.js';
import { formatProblem } from '../../src/render/problems.js';
import { MAX_DOC_DEPTH, MAX_DOC_NODES } from '../../src/source/limits.js';

// Hardening (#11 item 5): document size caps (limits.ts). Each is a file:line problem that names the
// limit and what was found, reached before the work it bounds, on both parse paths alike.

const problems = (r: ParseResult): string[] => (r.ok ? [] : r.problems.map((p) => `${formatProblem(p)} [${p.code}]`));

/** `count` keys of one mapping, one per line from line 2. */
const manyKeys = (count: number, extra = ''): string => 'env:\n' + Array.from({ length: count }, (_, i) => `  k${i}: 0\n`).join('') + extra;

describe('parse limits', () => {
  it(`a document of more than ${MAX_DOC_NODES} nodes is refused at the first node past the limit, on both paths`, () => {
    const source = manyKeys(60_000);
    // Nodes: the root mapping, env, its mapping, then a key and a value per line: node 100,001 is
    // the value on line 50,000.
    const expected = [`f.yaml:50000:11  document has 120,003 YAML nodes (keys, values and list items); berth reads documents of up to 100,000 [too-large]`];
    assert.deepEqual(problems(parseYaml('f.yaml', source)), expected);
    assert.deepEqual(problems(parsePrecise('f.yaml', source)), expected);
    // A tab makes the file one for `yaml` alone: refused there, the same way.
    assert.deepEqual(problems(parseYaml('f.yaml', source + 'tab: "\t"\n')), [expected[0]!.replace('120,003', '120,005')]);
  });

  it('a file handed in over 1 MiB is refused without parsing', () => {
    assert.deepEqual(problems(parseYaml('f.yaml', `a: "${'é'.repeat(600_000)}"\n`)), ['f.yaml:1:1  file is 1.1 MiB; berth reads config files up to 1 MiB [too-large]']);
  });

  it('an alias bomb that yaml lets through (50 uses of a 5000-item anchor) is refused at the alias that passes the limit', () => {
    const source = `a: &a [${Array(5000).fill('x').join(', ')}]\n` + Array.from({ length: 50 }, (_, i) => `b${i}: *a\n`).join('');
    const r = parseYaml('f.yaml', source);
    assert.ok(!r.ok);
    assert.equal(r.problems.length, 1);
    const p = r.problems[0]!;
    assert.equal(p.code, 'yaml-syntax');
    // 5,003 nodes on line 1, then 5,002 per alias line: the 19th (line 20) passes 100,000.
    assert.equal(`${p.file}:${p.line}:${p.column}`, 'f.yaml:20:6');
    assert.match(p.message, /^YAML alias \*a expands to too many nodes: with aliases counted as what they stand for, the document has 255,103; berth reads documents of up to 100,000$/);
  });

  it(`nesting deeper than ${MAX_DOC_DEPTH} levels is a problem, never a stack overflow`, () => {
    for (const [name, source] of [
      ['flow', 'a: ' + '['.repeat(20_000) + ']'.repeat(20_000) + '\n'],
      ['compact block sequences', 'a:\n' + '- '.repeat(200_000) + 'x\n'],
      ['block mappings', Array.from({ length: 100 }, (_, i) => ' '.repeat(i) + `k${i}:\n`).join('') + ' '.repeat(100) + 'v\n'],
    ] as const) {
      const r = parseYaml('f.yaml', source);
      assert.ok(!r.ok, name);
      assert.equal(r.problems[0]!.code, 'yaml-syntax', name);
      assert.match(r.problems[0]!.message, /^YAML nesting is more than 64 levels deep; berth reads documents nested up to 64 levels$/, name);
      assert.deepEqual(problems(parsePrecise('f.yaml', source)), problems(r), name);
    }
  });

  it('around the depth limit both paths agree, and documents nested well within it are read', () => {
    for (let depth = MAX_DOC_DEPTH - 6; depth <= MAX_DOC_DEPTH + 4; depth++) {
      const shapes = [
        'a: ' + '['.repeat(depth) + '1' + ']'.repeat(depth) + '\n',
        'a:\n' + '- '.repeat(depth) + 'x\n',
        Array.from({ length: depth }, (_, i) => ' '.repeat(i) + `k${i}:\n`).join('') + ' '.repeat(depth) + 'v\n',
        'a: ' + '{b: '.repeat(depth) + '1' + '}'.repeat(depth) + '\n',
      ];
      for (const source of shapes) {
        const fast = parseYaml('f.yaml', source);
        assert.deepEqual(problems(fast), problems(parsePrecise('f.yaml', source)), source.slice(0, 80));
        if (depth <= MAX_DOC_DEPTH - 4) assert.ok(fast.ok, `depth ${depth} is read: ${source.slice(0, 80)}`);
      }
    }
  });

  it('a mapping of 40,000 keys read by yaml alone takes linear time (duplicate keys are still found)', () => {
    const started = Date.now();
    const r = parsePrecise('f.yaml', manyKeys(40_000, 'tab: "\t"\n'));
    const ms = Date.now() - started;
    assert.ok(r.ok);
    // yaml's own uniqueKeys compared each key with every earlier one: ~15 s here; linear is ~1 s.
    assert.ok(ms < 8000, `took ${ms} ms`);
    assert.deepEqual(problems(parsePrecise('f.yaml', manyKeys(3, '  k1: again\n'))), ['f.yaml:5:3  YAML syntax error: Map keys must be unique [yaml-syntax]']);
  });
});
