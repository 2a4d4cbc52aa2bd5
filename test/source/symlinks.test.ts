import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { validateRepository } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { readDirectoryRevision } from '../../src/source/directory.js';
import { openSource } from '../../src/source/open.js';
import type { Revision } from '../../src/source/types.js';
import { appYaml, REPO_YAML } from '../support/repo.js';

// Hardening (#11 item 6): symlinks in a repo are followed only inside the repo, and refused by name
// otherwise; never skipped without a word. A refused link is a render problem at the link
// (file:1:1), so validate lists every one and a controller records the commit as failed once.

/** Why the source refused the link at `file` (its content never read), or undefined when it did not. */
function refused(rev: Revision, file: string): string | undefined {
  const f = rev.files.get(file);
  if (f?.unread?.limit !== 'symlink') return undefined;
  assert.equal(f.content, '', 'nothing behind a refused link is read');
  return f.unread.reason;
}

function problemsOf(rev: Revision): string[] {
  return validateRepository(rev, { secrets: envSecretSource({}) }).problems.map((p) => `${p.file}:${p.line}:${p.column} [${p.code}] ${p.message}`);
}

function repo(): { dir: string; outside: string; cleanup(): void } {
  const base = mkdtempSync(path.join(os.tmpdir(), 'berth-links-'));
  const dir = path.join(base, 'repo');
  const outside = path.join(base, 'outside');
  mkdirSync(path.join(dir, 'apps'), { recursive: true });
  mkdirSync(path.join(dir, 'shared'));
  mkdirSync(outside);
  writeFileSync(path.join(dir, 'berth.yaml'), REPO_YAML);
  writeFileSync(path.join(dir, 'shared/web.yaml'), appYaml('web'));
  writeFileSync(path.join(outside, 'secret.yaml'), appYaml('leak'));
  return { dir, outside, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

describe('directory source: symlinks', () => {
  it('follows a link to a file inside the repo (an app whose file became a link is not pruned)', async () => {
    const r = repo();
    symlinkSync('../shared/web.yaml', path.join(r.dir, 'apps/web.yaml'));
    const rev = await readDirectoryRevision(r.dir);
    assert.match(rev.files.get('apps/web.yaml')?.content ?? '', /name: web/);
    r.cleanup();
  });

  it('refuses a file link that leaves the repo, naming it', async () => {
    const r = repo();
    symlinkSync(path.join(r.outside, 'secret.yaml'), path.join(r.dir, 'apps/evil.yaml'));
    const rev = await readDirectoryRevision(r.dir);
    assert.match(refused(rev, 'apps/evil.yaml') ?? '', /symlink apps\/evil\.yaml points outside the config repo/);
    assert.ok(problemsOf(rev).some((p) => /^apps\/evil\.yaml:1:1 \[symlink\] symlink apps\/evil\.yaml points outside/.test(p)), problemsOf(rev).join('\n'));
    r.cleanup();
  });

  it('refuses a linked apps/ folder or berth.yaml outside the repo', async () => {
    const r = repo();
    rmSync(path.join(r.dir, 'apps'), { recursive: true });
    symlinkSync(r.outside, path.join(r.dir, 'apps'));
    const rev = await readDirectoryRevision(r.dir);
    assert.match(refused(rev, 'apps') ?? '', /symlink apps points outside the config repo/);
    assert.ok(!rev.files.has('apps/secret.yaml'), 'nothing under the linked folder is read');
    assert.ok(problemsOf(rev).some((p) => p.startsWith('apps:1:1 [symlink] symlink apps points outside')), problemsOf(rev).join('\n'));
    r.cleanup();
    const q = repo();
    writeFileSync(path.join(q.outside, 'berth.yaml'), REPO_YAML);
    rmSync(path.join(q.dir, 'berth.yaml'));
    symlinkSync(path.join(q.outside, 'berth.yaml'), path.join(q.dir, 'berth.yaml'));
    const qrev = await readDirectoryRevision(q.dir);
    assert.match(refused(qrev, 'berth.yaml') ?? '', /symlink berth\.yaml points outside/);
    assert.deepEqual(problemsOf(qrev).filter((p) => p.startsWith('berth.yaml:')).length, 1, problemsOf(qrev).join('\n'));
    q.cleanup();
  });

  it('names a broken link, and survives a link loop', async () => {
    const r = repo();
    symlinkSync('nowhere.yaml', path.join(r.dir, 'apps/gone.yaml'));
    assert.match(refused(await readDirectoryRevision(r.dir), 'apps/gone.yaml') ?? '', /symlink apps\/gone\.yaml is broken \(ENOENT\)/);
    rmSync(path.join(r.dir, 'apps/gone.yaml'));
    symlinkSync('.', path.join(r.dir, 'apps/loop'));
    writeFileSync(path.join(r.dir, 'apps/web.yaml'), appYaml('web'));
    const rev = await readDirectoryRevision(r.dir);
    assert.deepEqual([...rev.files.keys()], ['apps/web.yaml', 'berth.yaml']);
    r.cleanup();
  });
});

describe('symlinks to files that are not config', () => {
  it('refuses a link inside the repo to a non-YAML file, in a directory and in Git, without echoing it', async () => {
    const r = repo();
    writeFileSync(path.join(r.dir, 'shared/token.txt'), 'basic SECRETTOKEN123\n');
    symlinkSync('../shared/token.txt', path.join(r.dir, 'apps/a.yaml'));
    const rev = await readDirectoryRevision(r.dir);
    assert.match(refused(rev, 'apps/a.yaml') ?? '', /symlink apps\/a\.yaml leads to shared\/token\.txt, which is not a YAML file/);
    assert.ok(!problemsOf(rev).some((p) => p.includes('SECRETTOKEN')), problemsOf(rev).join('\n'));
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t.invalid', 'init', '-q', '-b', 'main'], { cwd: r.dir });
    execFileSync('git', ['add', '-A'], { cwd: r.dir });
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t.invalid', 'commit', '-qm', 'x'], { cwd: r.dir });
    const git = await (await openSource(r.dir, { stateDir: path.join(r.dir, '..', 'state') })).read('main');
    assert.match(refused(git, 'apps/a.yaml') ?? '', /leads to shared\/token\.txt, which is not a YAML file/);
    r.cleanup();
  });
});

describe('Git source: symlinks', () => {
  const commitAll = (dir: string): void => {
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t.invalid', ...args], { cwd: dir });
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('commit', '-qm', 'links');
  };
  const read = async (dir: string) => (await openSource(dir, { stateDir: path.join(dir, '..', 'state') })).read('main');

  it('follows a link to a file inside the repo', async () => {
    const r = repo();
    symlinkSync('../shared/web.yaml', path.join(r.dir, 'apps/web.yaml'));
    commitAll(r.dir);
    assert.match((await read(r.dir)).files.get('apps/web.yaml')?.content ?? '', /name: web/);
    r.cleanup();
  });

  it('refuses links that leave the repo or lead to no file, naming them', async () => {
    const r = repo();
    symlinkSync('../../outside/secret.yaml', path.join(r.dir, 'apps/evil.yaml'));
    commitAll(r.dir);
    const rev = await read(r.dir);
    assert.match(refused(rev, 'apps/evil.yaml') ?? '', /symlink apps\/evil\.yaml points outside the config repo/);
    assert.ok(problemsOf(rev).some((p) => p.startsWith('apps/evil.yaml:1:1 [symlink]')), problemsOf(rev).join('\n'));
    r.cleanup();
    const q = repo();
    symlinkSync('missing.yaml', path.join(q.dir, 'apps/gone.yaml'));
    commitAll(q.dir);
    assert.match(refused(await read(q.dir), 'apps/gone.yaml') ?? '', /symlink apps\/gone\.yaml leads to apps\/missing\.yaml, which is not a file/);
    q.cleanup();
  });
});
