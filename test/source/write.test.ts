import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GitError, GitSource } from '../../src/source/git.js';
import { RepoWriteError, RepoWriter, promotionMessage, type RepoWriterOptions } from '../../src/source/write.js';
import { gitCmd, startGitServer, type GitServer } from '../support/git-server.js';
import { bareCopy, newWorkRepo, rawMessage, onServer, publish, racingProxy, workRepoAt, type FileChanges, type WorkRepo } from '../support/git-repos.js';

// Rollback is a revert commit and promotion a merge, written by RepoWriter to a local bare
// repository, a local repository with the branch checked out, and a remote over smart HTTP with a
// token. Every result is checked with the real git CLI; every error must leave the branch, the
// remote and the work tree exactly as they were.

const TOKEN = 's3cret-token';

/** An app file with enough lines that changes at its two ends merge line by line. */
function app(name: string, image: string, logLevel = 'info', replicas = 1): string {
  return `apiVersion: berth/v1
kind: App
metadata: { name: ${name} }
spec:
  image: ${image}
  ports: [{ containerPort: 8080 }]
  healthCheck:
    http: { path: /health, port: 8080 }
    intervalSeconds: 2
  env:
    LOG_LEVEL: ${logLevel}
  replicas: ${replicas}
`;
}

const REPO = `apiVersion: berth/v1
kind: Repository
environments:
  staging: { branch: staging }
  production: { branch: main }
`;

const INITIAL: FileChanges = { 'berth.yaml': REPO, 'apps/web.yaml': app('web', 'web:1.0'), 'apps/api.yaml': app('api', 'api:1.0'), 'README.md': 'config\n' };

type Kind = 'local bare' | 'local work tree' | 'remote';
const KINDS: Kind[] = ['local bare', 'local work tree', 'remote'];

/** Where berth writes, and a git CLI on that repository to check what it did. */
interface Target {
  location: string;
  /** git on the repository berth writes to (the bare repo, the work tree, the server's bare repo). */
  git(...args: string[]): Promise<string>;
  /** A path `git clone` can read the repository from without credentials. */
  cloneFrom: string;
  writer(options?: Partial<RepoWriterOptions>): RepoWriter;
  source(): GitSource;
}

let server: GitServer;
const cleanup: string[] = [];
let repoCount = 0;

before(async () => {
  server = await startGitServer({ token: TOKEN });
});
after(async () => {
  await server.stop();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'berth-write-state-'));
  cleanup.push(d);
  return d;
}

/** `work`'s history where berth writes: in a bare copy, in `work` itself, or on the server. */
async function target(kind: Kind, work: WorkRepo): Promise<Target> {
  const state = stateDir();
  let location: string;
  let run: (...args: string[]) => Promise<string>;
  let cloneFrom: string;
  if (kind === 'local bare') {
    location = await bareCopy(work, cleanup);
    run = (...args) => gitCmd(location, ...args);
    cloneFrom = location;
  } else if (kind === 'local work tree') {
    location = work.dir;
    run = work.git;
    cloneFrom = work.dir;
  } else {
    const name = `r${++repoCount}`;
    location = await publish(server, name, work);
    run = onServer(server, name);
    cloneFrom = path.join(server.root, `${name}.git`);
  }
  const auth = kind === 'remote' ? { token: TOKEN } : {};
  return {
    location,
    git: run,
    cloneFrom,
    writer: (options = {}) => new RepoWriter(location, { stateDir: state, auth, env: 'production', ...options }),
    source: () => new GitSource(location, { stateDir: stateDir(), auth }),
  };
}

/** A fresh clone at commit `at` (for `git revert`/`git merge` by hand, to compare with berth's commits). */
async function handClone(t: Target, at: string): Promise<WorkRepo> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-hand-'));
  cleanup.push(dir);
  await gitCmd(os.tmpdir(), 'clone', '-q', t.cloneFrom, dir);
  await gitCmd(dir, 'reset', '-q', '--hard', at);
  return workRepoAt(dir);
}

/** Everything a failed write must leave alone. */
async function snapshot(t: Target, work: WorkRepo, kind: Kind): Promise<string> {
  const refs = await t.git('for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads');
  if (kind !== 'local work tree') return refs;
  const status = await work.git('status', '--porcelain', '--untracked-files=all');
  return `${refs}\n${await work.git('symbolic-ref', 'HEAD')}\n${status}\n${readFileSync(path.join(work.dir, 'apps/web.yaml'), 'utf8')}`;
}

async function assertCleanWorkTree(kind: Kind, work: WorkRepo): Promise<void> {
  if (kind !== 'local work tree') return;
  assert.equal(await work.git('status', '--porcelain', '--untracked-files=all'), '', 'work tree and index match the new head');
}

for (const kind of KINDS) {
  describe(`RepoWriter.revert (${kind})`, () => {
    it('--last reverts the newest commit exactly as `git revert` does, plus a berth trailer', async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      const c2 = await work.commit({ 'apps/web.yaml': app('web', 'web:2.0') }, 'web 2.0\n\nbody of the change');
      const t = await target(kind, work);

      const result = await t.writer().revert({ branch: 'main', last: true });

      assert.equal(result.commits.length, 1);
      const sha = result.commits[0]!.sha!;
      assert.equal(await t.git('rev-parse', 'main'), sha);
      assert.equal(result.before, c2);
      assert.equal(result.after, sha);
      assert.equal(result.pushed, kind === 'remote');
      assert.equal(await t.git('rev-parse', `${sha}^`), c2, 'on top of the reverted commit');
      assert.equal(await rawMessage(t.cloneFrom, sha), `Revert "web 2.0"\n\nThis reverts commit ${c2}.\n\nReverted-by: berth rollback --env production\n`);
      assert.equal(await t.git('log', '-1', '--format=%an <%ae>|%cn <%ce>', sha), 'berth <berth@localhost>|berth <berth@localhost>');
      const hand = await handClone(t, c2);
      await hand.git('revert', '--no-edit', c2);
      assert.equal(await t.git('rev-parse', `${sha}^{tree}`), await hand.tree('HEAD'), 'the same tree as a hand-made revert');
      assert.equal(`${await rawMessage(hand.dir, await hand.head())}\nReverted-by: berth rollback --env production\n`, await rawMessage(t.cloneFrom, sha), 'the same message as git revert, plus the trailer');
      await assertCleanWorkTree(kind, work);
      if (kind === 'local work tree') assert.equal(readFileSync(path.join(work.dir, 'apps/web.yaml'), 'utf8'), app('web', 'web:1.0'));
    });

    it('--to reverts every commit after it, newest first, one revert commit each', async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      const c1 = await work.head();
      const c2 = await work.commit({ 'apps/web.yaml': app('web', 'web:2.0') }, 'web 2.0');
      const c3 = await work.commit({ 'apps/api.yaml': app('api', 'api:2.0', 'debug') }, 'api 2.0');
      const c4 = await work.commit({ 'apps/web.yaml': app('web', 'web:2.0', 'warn', 3), 'apps/docs.yaml': app('docs', 'docs:1') }, 'scale web, add docs');
      const t = await target(kind, work);

      const result = await t.writer({ author: 'Ops Person <ops@example.com>' }).revert({ branch: 'main', to: c1.slice(0, 8) });

      assert.deepEqual(result.commits.map((c) => c.reverts), [c4, c3, c2]);
      assert.deepEqual(result.commits.map((c) => c.subject), ['scale web, add docs', 'api 2.0', 'web 2.0']);
      const log = (await t.git('log', '--format=%H %s', `${c4}..main`)).split('\n');
      assert.deepEqual(log.map((l) => l.slice(41)), ['Revert "web 2.0"', 'Revert "api 2.0"', 'Revert "scale web, add docs"']);
      assert.equal(await t.git('rev-parse', 'main^{tree}'), await t.git('rev-parse', `${c1}^{tree}`), 'back at the files of --to');
      assert.equal(await t.git('log', '-1', '--format=%an <%ae>', 'main'), 'Ops Person <ops@example.com>');
      const hand = await handClone(t, c4);
      await hand.git('revert', '--no-edit', c4, c3, c2);
      for (let i = 0; i < 3; i++) {
        assert.equal(await t.git('rev-parse', `main~${i}^{tree}`), await hand.tree(`HEAD~${i}`), `step ${i} matches git revert`);
        assert.equal(await rawMessage(t.cloneFrom, result.commits[2 - i]!.sha!), `${await rawMessage(hand.dir, await hand.head(`HEAD~${i}`))}\nReverted-by: berth rollback --env production\n`);
      }
      await assertCleanWorkTree(kind, work);
    });

    it('reverts a merge commit against its first parent, worded as `git revert -m 1`', async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      await work.git('checkout', '-q', '-b', 'feature');
      await work.commit({ 'apps/api.yaml': app('api', 'api:3.0') }, 'api 3.0');
      await work.git('checkout', '-q', 'main');
      await work.commit({ 'README.md': 'config, edited\n' }, 'readme');
      const mainBefore = await work.head();
      await work.git('merge', '-q', '--no-ff', '--no-edit', 'feature');
      const merge = await work.head();
      const t = await target(kind, work);

      const result = await t.writer().revert({ branch: 'main', last: true });

      const sha = result.commits[0]!.sha!;
      assert.equal(await t.git('rev-parse', `${sha}^{tree}`), await t.git('rev-parse', `${mainBefore}^{tree}`), 'the first parent\'s files');
      const hand = await handClone(t, merge);
      await hand.git('revert', '--no-edit', '-m', '1', merge);
      assert.equal(await rawMessage(t.cloneFrom, sha), `${await rawMessage(hand.dir, await hand.head())}\nReverted-by: berth rollback --env production\n`);
      assert.match(await rawMessage(t.cloneFrom, sha), new RegExp(`This reverts commit ${merge}, reversing\nchanges made to ${mainBefore}\\.`));
      await assertCleanWorkTree(kind, work);
    });

    it('skips a commit whose revert changes nothing, and says so', async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      const c1 = await work.head();
      const c2 = await work.commit({ 'apps/web.yaml': app('web', 'web:2.0') }, 'web 2.0');
      const empty = await work.commit({}, 'an empty commit');
      const t = await target(kind, work);

      const result = await t.writer().revert({ branch: 'main', to: c1 });

      assert.deepEqual(result.commits.map((c) => [c.reverts, Boolean(c.sha), Boolean(c.skipped)]), [[empty, false, true], [c2, true, false]]);
      assert.equal(await t.git('rev-list', '--count', `${empty}..main`), '1');
    });

    it('--to equal to the head: nothing to do, nothing changes', async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      const head = await work.head();
      const t = await target(kind, work);
      const result = await t.writer().revert({ branch: 'main', to: head });
      assert.deepEqual(result.commits, []);
      assert.match(result.nothingToDo ?? '', /main is at .* already: nothing to revert/);
      assert.equal(await t.git('rev-parse', 'main'), head);
      assert.equal(result.pushed, false);
    });

    it('--to off the branch\'s first-parent history is an error naming the branch; nothing changes', async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      await work.git('checkout', '-q', '-b', 'staging');
      const elsewhere = await work.commit({ 'apps/web.yaml': app('web', 'web:9') }, 'on staging only');
      await work.git('checkout', '-q', 'main');
      await work.commit({ 'README.md': 'x\n' }, 'main moves');
      const t = await target(kind, work);
      const before = await snapshot(t, work, kind);
      await assert.rejects(t.writer().revert({ branch: 'main', to: elsewhere }), (err: RepoWriteError) => err.code === 'E_REF' && /not on the first-parent history of branch main/.test(err.message));
      await assert.rejects(t.writer().revert({ branch: 'main', to: 'deadbeef' }), (err: RepoWriteError) => err.code === 'E_REF');
      await assert.rejects(t.writer().revert({ branch: 'nope', last: true }), (err: RepoWriteError) => err.code === 'E_REF' && /branch nope not found/.test(err.message));
      assert.equal(await snapshot(t, work, kind), before);
    });
  });

  describe(`RepoWriter.merge (${kind})`, () => {
    /** main, and staging with its own commits on top (diverged when `mainAlso`). */
    async function promotionRepo(options: { staging: FileChanges; main?: FileChanges }): Promise<{ work: WorkRepo; t: Target; staging: string; main: string }> {
      const work = await newWorkRepo(INITIAL, cleanup);
      await work.git('branch', 'staging');
      if (options.main) await work.commit(options.main, 'a change made on main');
      await work.git('checkout', '-q', 'staging');
      const staging = await work.commit(options.staging, 'a change tested on staging');
      await work.git('checkout', '-q', 'main');
      const main = await work.head();
      return { work, t: await target(kind, work), staging, main };
    }

    it('fast-forwards when production has nothing of its own', async () => {
      const { work, t, staging, main } = await promotionRepo({ staging: { 'apps/web.yaml': app('web', 'web:2.0') } });
      const result = await t.writer().merge({ from: 'staging', into: 'main', message: promotionMessage('staging', 'production') });
      assert.equal(result.kind, 'fast-forward');
      assert.deepEqual([result.into.sha, result.from.sha, result.after], [main, staging, staging]);
      assert.equal(await t.git('rev-parse', 'main'), staging);
      assert.equal(result.pushed, kind === 'remote');
      await assertCleanWorkTree(kind, work);
      if (kind === 'local work tree') assert.equal(readFileSync(path.join(work.dir, 'apps/web.yaml'), 'utf8'), app('web', 'web:2.0'));
    });

    it('makes a merge commit naming both revisions when both moved, with the tree `git merge` makes', async () => {
      const { work, t, staging, main } = await promotionRepo({ staging: { 'apps/web.yaml': app('web', 'web:2.0') }, main: { 'apps/web.yaml': app('web', 'web:1.0', 'info', 5), 'apps/api.yaml': null } });
      const writer = t.writer();
      const preview = await writer.previewMerge('main', 'staging');

      const result = await writer.merge({ from: 'staging', into: 'main', message: promotionMessage('staging', 'production') });

      assert.equal(result.kind, 'merge');
      const sha = await t.git('rev-parse', 'main');
      assert.equal(result.after, sha);
      assert.equal(await t.git('log', '-1', '--format=%P', sha), `${main} ${staging}`, 'parents: into, then from');
      assert.equal(await rawMessage(t.cloneFrom, sha), `Promote staging (staging@${staging.slice(0, 7)}) into production (main@${main.slice(0, 7)})\n\nstaging: staging@sha1:${staging}\nproduction: main@sha1:${main}\n\nPromoted-by: berth promote staging production\n`);
      const hand = await handClone(t, main);
      await hand.git('merge', '-q', '--no-edit', staging);
      assert.equal(await t.git('rev-parse', `${sha}^{tree}`), await hand.tree('HEAD'), 'the tree git merge makes');
      assert.equal(readFileSync(path.join(hand.dir, 'apps/web.yaml'), 'utf8'), app('web', 'web:2.0', 'info', 5), 'both line changes');

      // The preview read before is what the merge commit now reads.
      const source = t.source();
      await source.fetch('main');
      const merged = await source.read('main');
      assert.deepEqual([...preview.files.values()], [...merged.files.values()]);
      assert.deepEqual(preview.ref, { branch: 'staging', sha: staging, author: 'berth-test <test@berth.invalid>', message: 'a change tested on staging' });
      assert.equal(preview.files.has('apps/api.yaml'), false, 'deleted on main');
      await assertCleanWorkTree(kind, work);
    });

    it('already up to date: nothing changes', async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      await work.git('branch', 'staging');
      const main = await work.commit({ 'README.md': 'hotfix\n' }, 'hotfix on main');
      const t = await target(kind, work);
      const result = await t.writer().merge({ from: 'staging', into: 'main' });
      assert.equal(result.kind, 'up-to-date');
      assert.equal(await t.git('rev-parse', 'main'), main);
      assert.equal(result.pushed, false);
    });

    it('merges only the commit of `from` that was checked (fromSha): when it moved, nothing changes', async () => {
      const { work, t, staging, main } = await promotionRepo({ staging: { 'apps/web.yaml': app('web', 'web:2.0') } });
      const before = await snapshot(t, work, kind);
      await assert.rejects(t.writer().merge({ from: 'staging', into: 'main', fromSha: main }), (err: RepoWriteError) => err.code === 'E_REF' && new RegExp(`staging moved to ${staging.slice(0, 7)} after ${main.slice(0, 7)} was checked; nothing was merged`).test(err.message));
      assert.equal(await snapshot(t, work, kind), before);
      const result = await t.writer().merge({ from: 'staging', into: 'main', fromSha: staging });
      assert.equal(result.kind, 'fast-forward');
    });

    it('a conflict is an error listing the files that changes nothing (refs, remote, work tree)', async () => {
      const { work, t, staging } = await promotionRepo({ staging: { 'apps/web.yaml': app('web', 'web:2.0'), 'README.md': 'staging readme\n' }, main: { 'apps/web.yaml': app('web', 'web:1.1'), 'README.md': null } });
      const before = await snapshot(t, work, kind);
      const writer = t.writer();
      for (const attempt of [() => writer.merge({ from: 'staging', into: 'main' }), () => writer.previewMerge('main', 'staging')]) {
        await assert.rejects(attempt(), (err: RepoWriteError) => {
          assert.equal(err.code, 'E_CONFLICT');
          assert.deepEqual(err.context.conflicts?.map((c) => `${c.path} ${c.kind}`), ['README.md modify/delete', 'apps/web.yaml content']);
          assert.match(err.message, new RegExp(`merging staging \\(${staging.slice(0, 7)}\\) into main .* conflicts; nothing was changed`));
          assert.match(err.message, /apps\/web\.yaml \(content\)/);
          return true;
        });
      }
      assert.equal(await snapshot(t, work, kind), before);
    });

    it('branches with no commit in common: E_REF marked unrelated; a missing branch is not; nothing changes', async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      await work.git('checkout', '-q', '--orphan', 'elsewhere');
      await work.git('rm', '-q', '-r', '--cached', '.');
      await work.commit({ 'README.md': 'another history\n' }, 'a root of its own');
      await work.git('checkout', '-q', '-f', 'main');
      await work.git('clean', '-q', '-f', '-d');
      const t = await target(kind, work);
      const before = await snapshot(t, work, kind);
      const writer = t.writer();
      for (const attempt of [() => writer.merge({ from: 'elsewhere', into: 'main' }), () => writer.previewMerge('main', 'elsewhere')]) {
        await assert.rejects(attempt(), (err: RepoWriteError) => err.code === 'E_REF' && err.context.unrelated === true && /elsewhere and main have no commit in common/.test(err.message));
      }
      await assert.rejects(writer.previewMerge('main', 'nope'), (err: RepoWriteError) => err.code === 'E_REF' && err.context.unrelated === undefined);
      assert.equal(await snapshot(t, work, kind), before);
    });

    it('a snapshot holds HEAD\'s files and every branch head; a merge handed it works on it', async () => {
      const { t, staging, main } = await promotionRepo({ staging: { 'apps/web.yaml': app('web', 'web:2.0') } });
      const writer = t.writer();
      const snap = await writer.snapshot();
      assert.equal(snap.head.ref.sha, main);
      assert.equal(snap.head.files.get('berth.yaml')?.content, REPO);
      assert.deepEqual([...snap.branches].sort(), [['main', main], ['staging', staging]]);
      assert.equal(await writer.head('staging', snap), staging);
      await assert.rejects(writer.head('nope', snap), (err: RepoWriteError) => err.code === 'E_REF' && /branch nope not found/.test(err.message));
      const result = await writer.merge({ from: 'staging', into: 'main', fromSha: staging }, snap);
      assert.deepEqual([result.kind, result.after], ['fast-forward', staging]);
      assert.equal(await t.git('rev-parse', 'main'), staging);
    });
  });
}

describe('RepoWriter on a local work tree', () => {
  it('records the move in the reflogs of the branch and HEAD, as git does', async () => {
    const work = await newWorkRepo(INITIAL, cleanup);
    const c2 = await work.commit({ 'apps/web.yaml': app('web', 'web:2.0') }, 'web 2.0');
    const t = await target('local work tree', work);
    const result = await t.writer({ author: 'Ops <ops@example.com>' }).revert({ branch: 'main', last: true });
    for (const ref of ['main', 'HEAD']) {
      assert.equal(await work.git('reflog', '-1', '--format=%H %gs|%gn <%ge>', ref), `${result.after} berth: revert the last commit|Ops <ops@example.com>`);
      assert.equal(await work.git('rev-parse', `${ref}@{1}`), c2, 'git reflog can undo it');
    }
  });

  it('refuses when the checked-out branch has changes to tracked files, naming them; nothing changes', async () => {
    const work = await newWorkRepo(INITIAL, cleanup);
    await work.commit({ 'apps/web.yaml': app('web', 'web:2.0') }, 'web 2.0');
    const t = await target('local work tree', work);
    writeFileSync(path.join(work.dir, 'apps/api.yaml'), app('api', 'api:local-edit'));
    await work.git('rm', '-q', '--cached', 'README.md');
    const before = await snapshot(t, work, 'local work tree');
    await assert.rejects(t.writer().revert({ branch: 'main', last: true }), (err: RepoWriteError) => err.code === 'E_WORKTREE' && /changes to tracked files: .*README\.md.*apps\/api\.yaml \(modified\)|apps\/api\.yaml \(modified\).*README\.md/.test(err.message));
    assert.equal(await snapshot(t, work, 'local work tree'), before);
    assert.equal(readFileSync(path.join(work.dir, 'apps/api.yaml'), 'utf8'), app('api', 'api:local-edit'));
  });

  it('refuses when an untracked file is in the way of the new commit; nothing changes', async () => {
    const work = await newWorkRepo(INITIAL, cleanup);
    await work.commit({ 'apps/api.yaml': null }, 'drop api');
    const t = await target('local work tree', work);
    writeFileSync(path.join(work.dir, 'apps/api.yaml'), 'mine, not in git\n');
    const before = await snapshot(t, work, 'local work tree');
    await assert.rejects(t.writer().revert({ branch: 'main', last: true }), (err: RepoWriteError) => err.code === 'E_WORKTREE' && /files not in Git are in the way of the new commit: apps\/api\.yaml/.test(err.message));
    assert.equal(await snapshot(t, work, 'local work tree'), before);
  });

  it('writes a branch that is not checked out without touching the work tree (changes and all)', async () => {
    const work = await newWorkRepo(INITIAL, cleanup);
    await work.git('checkout', '-q', '-b', 'staging');
    const s2 = await work.commit({ 'apps/web.yaml': app('web', 'web:2.0') }, 'web 2.0 on staging');
    await work.git('checkout', '-q', 'main');
    writeFileSync(path.join(work.dir, 'README.md'), 'local edit\n');
    const t = await target('local work tree', work);
    const result = await t.writer().revert({ branch: 'staging', last: true });
    assert.equal(result.workTreeUpdated, false);
    assert.equal(await work.git('rev-parse', 'staging^'), s2);
    assert.equal(await work.git('status', '--porcelain'), 'M README.md');
    assert.equal(await work.git('symbolic-ref', 'HEAD'), 'refs/heads/main');
  });
});

describe('RepoWriter on a remote', () => {
  for (const at of ['discovery', 'pack'] as const) {
    it(`redoes the operation once when another push lands first (at the push's ${at})`, async () => {
      const work = await newWorkRepo(INITIAL, cleanup);
      await work.commit({ 'apps/web.yaml': app('web', 'web:2.0') }, 'web 2.0');
      const name = `race-${at}`;
      await publish(server, name, work);
      const git = onServer(server, name);
      const other = await newWorkRepo({}, cleanup);
      await other.git('fetch', '-q', path.join(server.root, `${name}.git`), 'main');
      await other.git('reset', '-q', '--hard', 'FETCH_HEAD');
      let racer = '';
      const proxy = await racingProxy(server, async () => {
        racer = await other.commit({ 'README.md': 'someone else\n' }, 'someone else pushes');
        await other.git('push', '-q', path.join(server.root, `${name}.git`), 'HEAD:main');
      }, { at, times: 1 });
      try {
        const writer = new RepoWriter(proxy.url(`${name}.git`), { stateDir: stateDir(), auth: { token: TOKEN }, env: 'production' });
        const result = await writer.revert({ branch: 'main', last: true });
        assert.equal(proxy.races(), 1);
        assert.equal(result.before, racer, 'the revert was redone on the new head');
        const head = await git('rev-parse', 'main');
        assert.equal(head, result.after);
        assert.equal(await git('rev-parse', 'main^'), racer);
        assert.equal(await git('log', '-1', '--format=%s', 'main'), 'Revert "someone else pushes"', '--last now means the newest commit');
      } finally {
        await proxy.close();
      }
    });
  }

  it('gives up with E_PUSH_REJECTED when the branch moves again; the remote holds only the other pushes', async () => {
    const work = await newWorkRepo(INITIAL, cleanup);
    const c1 = await work.head();
    await work.commit({ 'apps/web.yaml': app('web', 'web:2.0') }, 'web 2.0');
    const name = 'race-twice';
    await publish(server, name, work);
    const git = onServer(server, name);
    const other = await newWorkRepo({}, cleanup);
    await other.git('fetch', '-q', path.join(server.root, `${name}.git`), 'main');
    await other.git('reset', '-q', '--hard', 'FETCH_HEAD');
    let n = 0;
    const proxy = await racingProxy(server, async () => {
      await other.commit({ 'README.md': `push ${++n}\n` }, `other push ${n}`);
      await other.git('push', '-q', path.join(server.root, `${name}.git`), 'HEAD:main');
    }, { at: 'pack', times: 5 });
    try {
      const writer = new RepoWriter(proxy.url(`${name}.git`), { stateDir: stateDir(), auth: { token: TOKEN } });
      await assert.rejects(writer.revert({ branch: 'main', to: c1 }), (err: RepoWriteError) => err.code === 'E_PUSH_REJECTED' && /main kept moving .* redone once, then gave up; nothing was changed/.test(err.message));
      assert.equal(proxy.races(), 2);
      assert.equal(await git('log', '--format=%s', '-3', 'main'), 'other push 2\nother push 1\nweb 2.0');
      assert.equal(await git('rev-parse', 'main'), await other.head());
    } finally {
      await proxy.close();
    }
  });

  it('a wrong token is an authentication error that names no secret', async () => {
    const work = await newWorkRepo(INITIAL, cleanup);
    const url = await publish(server, 'auth', work);
    const withCreds = url.replace('http://', 'http://x:wrong-secret@');
    const writer = new RepoWriter(withCreds, { stateDir: stateDir() });
    assert.equal(writer.location, url);
    await assert.rejects(writer.revert({ branch: 'main', last: true }), (err: GitError) => err.code === 'E_GIT' && /authentication failed \(HTTP 401\)/.test(err.message) && !err.message.includes('wrong-secret'));
  });
});
