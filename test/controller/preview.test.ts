import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { branchMatches, PreviewPlanner } from '../../src/controller/preview.js';
import { StatusReporter } from '../../src/forge/statuses.js';
import type { Forge, StatusRequest } from '../../src/forge/types.js';
import { envSecretSource } from '../../src/render/secrets.js';
import type { Revision } from '../../src/source/types.js';
import { MemoryProxy, MemoryRuntime } from '../support/memory.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

const HEAD = 'a'.repeat(40);

/** A planner over in-memory drivers; `preview` answers the branch's head `HEAD` unless told otherwise. */
function setup(o: { previewBranches?: string[]; head?: string } = {}) {
  const statuses: StatusRequest[] = [];
  const comments: { number: number; parts: string[] }[] = [];
  const previews: string[] = [];
  const forge: Forge = {
    name: 'github',
    maxCommentChars: 65536,
    setStatus: async (s) => void statuses.push(s),
    pullRequestsFor: async () => [],
    upsertComment: async (number, _marker, parts) => (comments.push({ number, parts }), { created: 1, updated: 0, deleted: 0, unchanged: 0 }),
  };
  const reporter = new StatusReporter(forge);
  const planner = new PreviewPlanner({
    env: 'production',
    forge,
    statuses: reporter,
    context: 'berth/production',
    log: pino({ level: 'silent' }),
    runtime: new MemoryRuntime(),
    proxy: new MemoryProxy(),
    secrets: envSecretSource({ BERTH_SECRET_DB_PASSWORD: 'pw' }),
    settings: () => ({ branch: 'main', previewBranches: o.previewBranches ?? [] }),
    preview: async (_into, branch): Promise<Revision> => {
      previews.push(branch);
      const r = memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  replicas: 2\n') });
      return { ...r, ref: { branch, sha: o.head ?? HEAD } };
    },
  });
  return { planner, reporter, statuses, comments, previews };
}

describe('preview plans (pull requests and previewBranches)', () => {
  it('branch globs: * within a segment, ** across them', () => {
    assert.ok(branchMatches('feature/*', 'feature/x'));
    assert.ok(!branchMatches('feature/*', 'feature/x/y'));
    assert.ok(branchMatches('release/**', 'release/1/rc'));
    assert.ok(!branchMatches('feature/*', 'featurex'));
    assert.ok(!branchMatches('v1.*', 'v1x2'), 'a dot is a dot');
  });

  it('decides at once: its own branch, another base, an unlisted push are refused with a reason', () => {
    const { planner } = setup({ previewBranches: ['feature/*'] });
    assert.match(planner.request({ kind: 'push', branch: 'main', sha: HEAD }).reason, /own branch/);
    assert.match(planner.request({ kind: 'pull-request', branch: 'x', sha: HEAD, number: 3, base: 'staging' }).reason, /targets staging/);
    assert.match(planner.request({ kind: 'push', branch: 'hotfix', sha: HEAD }).reason, /matches no previewBranches/);
    assert.equal(planner.request({ kind: 'push', branch: 'feature/a', sha: HEAD }).accepted, true);
  });

  it('plans a pull request and posts the status and the comment on it', async () => {
    const { planner, reporter, statuses, comments } = setup();
    assert.equal(planner.request({ kind: 'pull-request', branch: 'feature', sha: HEAD, number: 7, base: 'main' }).accepted, true);
    await planner.idle();
    await reporter.flush();
    assert.deepEqual(statuses.map((s) => [s.sha, s.context, s.state, s.description]), [[HEAD, 'berth/production/plan', 'success', '0 to replace, 1 to create, 0 to remove']]);
    assert.deepEqual(comments.map((c) => c.number), [7]);
    assert.match(comments[0]!.parts[0]!, /Merging `feature` \(aaaaaaaaaaaa\) into `main`/);
  });

  it('a burst for one branch is planned once, for every pull request it named', async () => {
    const { planner, previews, comments } = setup();
    planner.request({ kind: 'pull-request', branch: 'busy', sha: HEAD, number: 1, base: 'main' });
    // The first is being planned; the next three fold into one follow-up.
    planner.request({ kind: 'pull-request', branch: 'busy', sha: HEAD, number: 1, base: 'main' });
    planner.request({ kind: 'pull-request', branch: 'busy', sha: HEAD, number: 2, base: 'main' });
    planner.request({ kind: 'pull-request', branch: 'busy', sha: HEAD, number: 1, base: 'main' });
    await planner.idle();
    assert.ok(previews.length <= 2, `${previews.length} plans for one branch`);
    assert.deepEqual([...new Set(comments.map((c) => c.number))].sort(), [1, 2]);
  });

  it('a head that is not the commit the webhook names (a fork, a newer push) is not posted', async () => {
    const { planner, reporter, statuses, comments } = setup({ head: 'b'.repeat(40) });
    planner.request({ kind: 'pull-request', branch: 'forked', sha: HEAD, number: 9, base: 'main' });
    await planner.idle();
    await reporter.flush();
    assert.deepEqual([statuses.length, comments.length], [0, 0]);
  });
});
