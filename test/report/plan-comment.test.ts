import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planComment, planDescription, planMarker } from '../../src/forge/plan-comment.js';
import { partHeader } from '../../src/forge/comments.js';
import { planStatus, postPlan } from '../../src/forge/post-plan.js';
import type { Forge, StatusRequest } from '../../src/forge/types.js';
import { plan } from '../../src/plan/plan.js';
import type { LiveState } from '../../src/runtime/types.js';
import { liveOf } from '../support/fakes.js';
import { desiredOf } from '../support/desired.js';

const SECRET = 'hunter2-very-secret';
const EMPTY: LiveState = { env: 'production', containers: [], proxy: { env: 'production', routes: [] } };

const desired = (apps: Record<string, string>, secret = SECRET) => desiredOf(apps, secret);

describe('plan comments and plan statuses', () => {
  it('"2 to replace, 1 to create, 0 to remove"', () => {
    const before = desired({ web: '  replicas: 1\n', api: '  replicas: 1\n' });
    const after = desired({ web: '  replicas: 1\n  args: ["-v"]\n', api: '  replicas: 1\n  args: ["-v"]\n', docs: '  replicas: 1\n' });
    const live: LiveState = { ...EMPTY, containers: before.apps.map((a) => liveOf(a, 0)) };
    const p = plan(after, live);
    assert.equal(planDescription(p), '2 to replace, 1 to create, 0 to remove');
    const status = planStatus({ env: 'production', context: 'berth/production', branch: 'feature', sha: 'b'.repeat(40), plan: p });
    assert.deepEqual([status.context, status.state, status.description], ['berth/production/plan', 'success', '2 to replace, 1 to create, 0 to remove']);
  });

  it('a branch that does not render gets a failure status naming the first problem', () => {
    const s = planStatus({ env: 'production', context: 'berth/production', branch: 'f', sha: 'c'.repeat(40), problems: [{ code: 'schema', file: 'apps/web.yaml', line: 3, column: 5, message: 'replicas must be >= 0' }] });
    assert.equal(s.state, 'failure');
    assert.match(s.description, /^not valid: 1 problem\(s\); first: apps\/web\.yaml:3:5/);
  });

  it('a short plan is one comment with the plan as berth plan prints it; a secret never appears', () => {
    const p = plan(desired({ web: '  replicas: 2\n  env: { PW: { secretRef: db-password } }\n' }), EMPTY);
    const parts = planComment({ env: 'production', plan: p, branch: 'feature', sha: 'd'.repeat(40), into: 'main' }, 65536);
    assert.equal(parts.length, 1);
    assert.match(parts[0]!, /^### berth plan for `production`: 0 to replace, 1 to create, 0 to remove/);
    assert.match(parts[0]!, /Merging `feature` \(dddddddddddd\) into `main`/);
    assert.match(parts[0]!, /```diff\n[\s\S]*\+ web\s+create 2/);
    assert.doesNotMatch(parts[0]!, /<details>/);
  });

  it('a rotated secret is a replace whose comment shows neither value', () => {
    const app = { web: '  replicas: 1\n  env: { PW: { secretRef: db-password } }\n' };
    const before = desired(app, 'the-old-secret-value');
    const p = plan(desired(app), { ...EMPTY, containers: before.apps.map((a) => liveOf(a, 0)) });
    const text = planComment({ env: 'production', plan: p, branch: 'feature', sha: 'd'.repeat(40) }, 65536).join('');
    assert.match(text, /~ web\s+replace 1/);
    assert.match(text, /spec\.env\.PW/, 'the diff names the changed secret');
    for (const value of [SECRET, 'the-old-secret-value']) assert.ok(!text.includes(value), `${value} in the comment`);
  });

  it('a long plan is folded, and split under the forge limit with every part a closed code block', () => {
    const apps: Record<string, string> = {};
    for (let i = 0; i < 300; i++) apps[`app${String(i).padStart(3, '0')}`] = '  replicas: 1\n  env: { PW: { secretRef: db-password } }\n';
    const p = plan(desired(apps), EMPTY);
    const max = 8000;
    const parts = planComment({ env: 'production', plan: p, branch: 'feature', sha: 'e'.repeat(40) }, max - partHeader(planMarker('production'), 999).length);
    assert.ok(parts.length > 2, `${parts.length} parts`);
    for (const part of parts) {
      assert.ok(part.length + partHeader(planMarker('production'), parts.length).length <= max, `part of ${part.length} chars`);
      assert.match(part, /<details><summary>Plan \(\d+ lines\)<\/summary>/);
      assert.equal(part.split('```').length % 2, 1, 'code fences balanced');
    }
    const all = parts.join('\n');
    for (let i = 0; i < 300; i++) assert.ok(all.includes(`app${String(i).padStart(3, '0')}`), `app${i} in some part`);
    assert.ok(!all.includes(SECRET));
  });

  it('posts on the pull requests that merge into the planned branch only; builds no comment when there are none', async () => {
    const p = plan(desired({ web: '  replicas: 1\n' }), EMPTY);
    const statuses: StatusRequest[] = [];
    const commented: number[] = [];
    const forge: Forge = {
      name: 'github',
      maxCommentChars: 65536,
      setStatus: async (s) => void statuses.push(s),
      pullRequestsFor: async (branch) => (branch === 'feature' ? [{ number: 1, headBranch: 'feature', headSha: 'f'.repeat(40), baseBranch: 'main' }, { number: 2, headBranch: 'feature', headSha: 'f'.repeat(40), baseBranch: 'staging' }] : []),
      upsertComment: async (n) => (commented.push(n), { created: 1, updated: 0, deleted: 0, unchanged: 0 }),
    };
    const posted = await postPlan(forge, { env: 'production', context: 'berth/production', branch: 'feature', sha: 'f'.repeat(40), into: 'main', plan: p });
    assert.deepEqual(commented, [1], 'the pull request into staging is not commented with a plan of merging into main');
    assert.deepEqual(posted.comments.map((c) => c.number), [1]);
    const none = await postPlan(forge, { env: 'production', context: 'berth/production', branch: 'lonely', sha: 'f'.repeat(40), into: 'main', plan: p });
    assert.deepEqual([none.comments, commented.length, statuses.length], [[], 1, 2], 'the status is set; no comment without a pull request');
  });
});
