import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { formatProblem, type Problem } from '../../src/render/problems.js';
import { validateRepository } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { readDirectoryRevision } from '../../src/source/directory.js';
import { hostileCases, materialise, messageMatcher, type ExpectedProblem, type HostileCase } from '../support/hostile.js';
import { runBerth } from '../support/run.js';

// Hardening (#11): the hostile corpus, test/fixtures/hostile/ (README.md there). Each case is read
// through the real directory source (so its symlinks are followed or refused as in production) and
// validated as `berth validate` does; it must be refused, with each expected problem at its file:line.

const cases = hostileCases();
const temps: string[] = [];
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** The folder to read: the case itself, or a temp copy with its generated files. */
function repoDir(c: HostileCase): string {
  if (!c.generate?.length) return c.dir;
  const dir = materialise(c);
  temps.push(dir);
  return dir;
}

function describeProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `  ${p.code} ${formatProblem(p)}`).join('\n') || '  (none)';
}

function findProblem(problems: readonly Problem[], want: ExpectedProblem): Problem | undefined {
  const matches = messageMatcher(want.message);
  return problems.find((p) => p.file === want.file && p.line === want.line && p.code === want.code && matches(p.message) && (want.env === undefined || p.env === want.env));
}

describe('hostile corpus', () => {
  it('has at least 40 cases, each expecting problems', () => {
    assert.ok(cases.length >= 40, `only ${cases.length} cases`);
    for (const c of cases) {
      assert.ok(c.about, `${c.name}: expect.json needs "about"`);
      assert.ok(c.problems.length > 0, `${c.name}: expect.json needs "problems" (non-empty)`);
    }
  });

  for (const c of cases) {
    it(`${c.name}: ${c.about}`, async () => {
      const dir = repoDir(c);
      const revision = await readDirectoryRevision(dir);
      assert.ok(!revision.files.has('expect.json'), 'expect.json must never be read as repo content');
      const { problems } = validateRepository(revision, { secrets: envSecretSource({}), unresolvedSecrets: 'allow' });
      assert.ok(problems.length > 0, `${c.name} validated without a problem`);
      for (const want of c.problems) {
        const at = `${want.file}:${want.line} ${want.code} ${want.message}${want.env ? ` [env ${want.env}]` : ''}`;
        assert.ok(findProblem(problems, want), `expected ${at}; validate reported:\n${describeProblems(problems)}`);
      }
      for (const p of problems) assert.ok(p.line >= 1 && p.column >= 1, `position of ${formatProblem(p)}`);
    });
  }
});

describe('hostile corpus through the CLI', () => {
  const picked = cases.filter((c) => c.cli);
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-hostile-state-'));
  temps.push(stateDir);
  // Started together: each run is mostly tsx start-up.
  const runs = new Map(picked.map((c) => [c.name, runBerth(['validate', '--repo', repoDir(c), '--state-dir', stateDir], {})]));

  it('runs a few cases', () => assert.ok(picked.length >= 3, `only ${picked.length} cases have "cli": true`));

  for (const c of picked) {
    it(`berth validate --repo ${c.name}`, async () => {
      const { code, stdout, stderr } = await runs.get(c.name)!;
      assert.equal(code, 1, `exit code; stdout:\n${stdout}\nstderr:\n${stderr}`);
      // Every printed problem is `file:line:col  message`.
      const lines = stdout.trimEnd().split('\n');
      for (const line of lines) assert.match(line, /^[^\s:]+:\d+:\d+ {2}\S/, `not file:line:col: ${line}`);
      for (const want of c.problems) {
        const prefix = `${want.file}:${want.line}:`;
        const matches = messageMatcher(want.message);
        assert.ok(
          lines.some((l) => l.startsWith(prefix) && /^\d+ {2}/.test(l.slice(prefix.length)) && matches(l.slice(l.indexOf('  ') + 2))),
          `expected a line ${prefix}<col>  …${want.message}…; stdout:\n${stdout}`,
        );
      }
      assert.match(stderr, /✖ \d+ problems? in \d+ files?/);
    });
  }
});
