import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planComment, planDescription, planMarker } from '../../src/forge/plan-comment.js';
import { planStatus } from '../../src/forge/post-plan.js';
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
    assert.ok(!parts.join('').includes(SECRET));
  });

  it('a long plan is folded, and split under the forge limit with every part a closed code block', () => {
    const apps: Record<string, string> = {};
    for (let i = 0; i < 300; i++) apps[`app${String(i).padStart(3, '0')}`] = '  replicas: 1\n  env: { PW: { secretRef: db-password } }\n';
    const p = plan(desired(apps), EMPTY);
    const max = 8000;
    const parts = planComment({ env: 'production', plan: p, branch: 'feature', sha: 'e'.repeat(40) }, max);
    assert.ok(parts.length > 2, `${parts.length} parts`);
    for (const part of parts) {
      assert.ok(part.length + `<!-- ${planMarker('production')} part 10 -->\n`.length <= max, `part of ${part.length} chars`);
      assert.match(part, /<details><summary>Plan \(\d+ lines\)<\/summary>/);
      assert.equal(part.split('```').length % 2, 1, 'code fences balanced');
    }
    const all = parts.join('\n');
    for (let i = 0; i < 300; i++) assert.ok(all.includes(`app${String(i).padStart(3, '0')}`), `app${i} in some part`);
    assert.ok(!all.includes(SECRET));
  });
});
