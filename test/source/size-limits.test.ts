import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { formatProblem } from '../../src/render/problems.js';
import { renderEnvironment, validateRepository } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { readDirectoryRevision } from '../../src/source/directory.js';
import { GitSource } from '../../src/source/git.js';
import { MAX_FILE_BYTES, MAX_REPO_BYTES } from '../../src/source/limits.js';
import type { Revision } from '../../src/source/types.js';
import { manyAppsRepo } from '../support/many-apps.js';
import { appYaml, REPO_YAML } from '../support/repo.js';

// Hardening (#11 item 5): a config file over 1 MiB, or a revision over 8 MiB of config files, is a
// problem at the file's line 1, refused before the file is read into memory (directory: by its
// stat; Git: by the blob's size), so a repo can never take the controller down.

const secrets = envSecretSource({ BERTH_SECRET_DB_PASSWORD: 'x' });
const MiB = 1024 * 1024;

function repo(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-limits-'));
  mkdirSync(path.join(dir, 'apps'));
  writeFileSync(path.join(dir, 'berth.yaml'), REPO_YAML);
  writeFileSync(path.join(dir, 'apps/web.yaml'), appYaml('web'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An app file of `bytes` (one long argument), written in 1 MiB pieces so the test itself stays small. */
function writeBigApp(file: string, bytes: number, name = 'huge'): void {
  const head = appYaml(name) + '  args: ["';
  const fd = openSync(file, 'w');
  writeSync(fd, head);
  const chunk = Buffer.alloc(MiB, 'a');
  for (let left = bytes - head.length - 3; left > 0; left -= chunk.length) writeSync(fd, chunk, 0, Math.min(left, chunk.length));
  writeSync(fd, '"]\n');
  closeSync(fd);
}

/** The second case: ~1.7 M keys (about 20 MB). */
function writeManyKeys(file: string, count: number): void {
  const fd = openSync(file, 'w');
  writeSync(fd, appYaml('keys') + '  env:\n');
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(`    K${i}: v\n`);
    if (lines.length === 100_000 || i === count - 1) writeSync(fd, lines.splice(0).join(''));
  }
  closeSync(fd);
}

const problemsOf = (revision: Revision) => validateRepository(revision, { secrets }).problems;
const heap = (): number => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;

describe('size limits: directory source', () => {
  it('a 50 MB app file is a problem at its line 1, and is never read into memory', async () => {
    const r = repo();
    writeBigApp(path.join(r.dir, 'apps/huge.yaml'), 50 * MiB);
    const before = heap();
    const revision = await readDirectoryRevision(r.dir);
    const problems = problemsOf(revision);
    const grew = heap() - before;
    assert.equal(revision.files.get('apps/huge.yaml')?.content, '');
    assert.deepEqual(
      problems.map((p) => [formatProblem(p), p.code]),
      [['apps/huge.yaml:1:1  file is 50 MiB; berth reads config files up to 1 MiB', 'too-large']],
    );
    assert.ok(grew < 200 * MiB, `memory grew by ${Math.round(grew / MiB)} MiB`);
    r.cleanup();
  });

  it('a document of 1.7 M keys (20 MB) is refused the same way', async () => {
    const r = repo();
    writeManyKeys(path.join(r.dir, 'apps/keys.yaml'), 1_700_000);
    const before = heap();
    const problems = problemsOf(await readDirectoryRevision(r.dir));
    assert.ok(heap() - before < 200 * MiB);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, 'too-large');
    assert.match(formatProblem(problems[0]!), /^apps\/keys\.yaml:1:1 {2}file is 2\d\.\d MiB; berth reads config files up to 1 MiB$/);
    r.cleanup();
  });

  it('a file just under the limit is read; one byte over is not', async () => {
    const r = repo();
    writeBigApp(path.join(r.dir, 'apps/at.yaml'), MAX_FILE_BYTES, 'at');
    writeBigApp(path.join(r.dir, 'apps/over.yaml'), MAX_FILE_BYTES + 1, 'over');
    const revision = await readDirectoryRevision(r.dir);
    assert.equal(revision.files.get('apps/at.yaml')?.content.length, MAX_FILE_BYTES);
    assert.deepEqual(revision.files.get('apps/over.yaml')?.unread, { limit: 'file', bytes: MAX_FILE_BYTES + 1 });
    assert.deepEqual(
      problemsOf(revision).map((p) => `${p.file}:${p.line} ${p.code}`),
      ['apps/over.yaml:1 too-large'],
    );
    r.cleanup();
  });

  it('a revision over 8 MiB of config files: berth.yaml is read first, files past the limit are problems', async () => {
    const r = repo();
    const count = Math.ceil(MAX_REPO_BYTES / (MAX_FILE_BYTES - 1024)) + 1;
    for (let i = 0; i < count; i++) writeBigApp(path.join(r.dir, `apps/big-${String(i).padStart(2, '0')}.yaml`), MAX_FILE_BYTES - 1024, `big-${i}`);
    const revision = await readDirectoryRevision(r.dir);
    assert.equal(revision.files.get('berth.yaml')?.unread, undefined);
    const unread = [...revision.files.values()].filter((f) => f.unread);
    assert.ok(unread.length >= 1 && unread.every((f) => f.unread?.limit === 'repo'), JSON.stringify(unread.map((f) => [f.path, f.unread])));
    const problems = problemsOf(revision);
    assert.deepEqual(problems.map((p) => p.file), unread.map((f) => f.path));
    const limit = MAX_REPO_BYTES / MiB;
    assert.match(formatProblem(problems[0]!), new RegExp(`^apps/\\S+\\.yaml:1:1 {2}file not read: with it the config files of this revision come to (${limit}|${limit + 1})\\.\\d MiB; berth reads up to ${limit} MiB of config files per revision$`));
    r.cleanup();
  });

  it('a normal environment of 250 apps still renders', async () => {
    const many = manyAppsRepo({ count: 250 });
    const revision = await readDirectoryRevision(many.dir);
    assert.ok([...revision.files.values()].every((f) => !f.unread));
    const result = renderEnvironment(revision, many.env, { secrets });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems.slice(0, 3)));
    assert.equal(result.state.apps.length, 250);
    many.cleanup();
  });
});

describe('size limits: Git source', () => {
  const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t.invalid', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' });

  it('a 50 MB blob is a problem at its line 1; loose, it is not even inflated; packed, it is refused before decoding', async () => {
    const r = repo();
    writeBigApp(path.join(r.dir, 'apps/huge.yaml'), 50 * MiB);
    git(r.dir, 'init', '-q');
    git(r.dir, 'add', '-A');
    git(r.dir, 'commit', '-q', '-m', 'huge');

    const loose = new GitSource(r.dir, { stateDir: r.dir });
    const before = heap();
    const revision = await loose.read('main');
    assert.ok(heap() - before < 200 * MiB);
    assert.equal(loose.lastBlobReads, 2, 'berth.yaml and web.yaml only');
    assert.deepEqual(revision.files.get('apps/huge.yaml')?.unread, { limit: 'file', bytes: 50 * MiB });
    assert.deepEqual(problemsOf(revision).map((p) => [formatProblem(p), p.code]), [['apps/huge.yaml:1:1  file is 50 MiB; berth reads config files up to 1 MiB', 'too-large']]);

    git(r.dir, 'repack', '-a', '-d', '-q');
    const packed = await new GitSource(r.dir, { stateDir: r.dir }).read('main');
    assert.deepEqual(packed.files.get('apps/huge.yaml')?.unread, { limit: 'file', bytes: 50 * MiB });
    assert.equal(packed.files.get('apps/web.yaml')?.content, appYaml('web'));
    r.cleanup();
  });
});
