import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { RemoteForgeName, WebhookEvent, WebhookVerdict } from '../../src/forge/types.js';
import { WEBHOOK_PARSERS } from '../../src/forge/webhooks.js';
import { delivery, payload } from './deliveries.js';

const SECRET = 's3cret';
const AFTER = '4f2a9e1b7c3d5e6f8a0b1c2d3e4f5a6b7c8d9e0f';
const PR_HEAD = '7e3b2a1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f';
const PR_HEAD2 = 'b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0';

function parse(forge: RemoteForgeName, d: { headers: Headers; body: Buffer }, secret = SECRET): WebhookVerdict {
  return WEBHOOK_PARSERS[forge](d.headers, d.body, secret);
}
function eventOf(v: WebhookVerdict): WebhookEvent {
  assert.ok(v.ok, v.ok ? '' : `${v.status} ${v.message}`);
  return v.event;
}
const mainPush: WebhookEvent = { kind: 'push', branch: 'main', sha: AFTER, deleted: false };

describe('webhook signatures (checked before the body is read)', () => {
  const cases: [string, RemoteForgeName, (d: { headers: Headers; body: Buffer }) => void, boolean][] = [
    ['github signed', 'github', () => {}, true],
    ['github wrong key', 'github', (d) => d.headers.set('x-hub-signature-256', delivery('github', 'push', { secret: 'other' }).headers.get('x-hub-signature-256')!), false],
    ['github missing', 'github', (d) => (d.headers.delete('x-hub-signature-256'), d.headers.delete('x-hub-signature')), false],
    ['github sha1 only (not accepted)', 'github', (d) => d.headers.delete('x-hub-signature-256'), false],
    ['github truncated', 'github', (d) => d.headers.set('x-hub-signature-256', d.headers.get('x-hub-signature-256')!.slice(0, 20)), false],
    ['gitea signed', 'gitea', () => {}, true],
    ['gitea X-Hub-Signature-256 only', 'gitea', (d) => d.headers.delete('x-gitea-signature'), true],
    ['gitea wrong key', 'gitea', (d) => (d.headers.set('x-gitea-signature', 'ab'.repeat(32)), d.headers.delete('x-hub-signature-256')), false],
    ['gitea missing', 'gitea', (d) => (d.headers.delete('x-gitea-signature'), d.headers.delete('x-hub-signature-256')), false],
    ['gitlab token', 'gitlab', () => {}, true],
    ['gitlab wrong token', 'gitlab', (d) => d.headers.set('x-gitlab-token', `${SECRET}x`), false],
    ['gitlab missing token', 'gitlab', (d) => d.headers.delete('x-gitlab-token'), false],
  ];
  for (const [name, forge, spoil, ok] of cases) {
    it(name, () => {
      const d = delivery(forge, 'push');
      spoil(d);
      const v = parse(forge, d);
      assert.equal(v.ok, ok, v.ok ? '' : v.message);
      if (!v.ok) assert.equal(v.status, 401);
    });
  }

  it('a signed body that is tampered with fails (every forge that signs)', () => {
    for (const forge of ['github', 'gitea'] as const) {
      const d = delivery(forge, 'push');
      const v = parse(forge, { headers: d.headers, body: Buffer.from(d.body.toString().replace('refs/heads/main', 'refs/heads/prod')) });
      assert.deepEqual([v.ok, !v.ok && v.status], [false, 401]);
    }
  });

  it('a signed payload that is JSON but not an object is 400 (each forge)', () => {
    for (const text of ['null', '[]', '"x"', '3']) {
      const v = parse('github', delivery('github', 'push', { json: Buffer.from(text) }));
      assert.deepEqual(v, { ok: false, status: 400, message: 'push payload is not a JSON object' });
      assert.deepEqual(parse('gitea', delivery('gitea', 'push', { json: Buffer.from(text) })), { ok: false, status: 400, message: 'push payload is not a JSON object' });
      assert.deepEqual(parse('gitlab', delivery('gitlab', 'push', { json: Buffer.from(text) })), { ok: false, status: 400, message: 'push payload is not a JSON object' });
    }
    assert.deepEqual(parse('github', delivery('github', 'push', { json: Buffer.from('{"ref":') })), { ok: false, status: 400, message: 'push payload is not JSON' });
  });
});

describe('github deliveries', () => {
  it('push as JSON', () => assert.deepEqual(eventOf(parse('github', delivery('github', 'push'))), mainPush));

  it('push as application/x-www-form-urlencoded (GitHub\'s preselected type), signed over the raw body', () => {
    const d = delivery('github', 'push', { form: true });
    assert.match(d.body.toString().slice(0, 40), /^payload=%7B%0A\+\+%22ref%22/);
    assert.deepEqual(eventOf(parse('github', d)), mainPush);
  });

  it('a form whose signature covers only the JSON (not what GitHub does) is refused', () => {
    const d = delivery('github', 'push', { form: true });
    d.headers.set('x-hub-signature-256', `sha256=${createHmac('sha256', SECRET).update(payload('github', 'push')).digest('hex')}`);
    assert.equal(parse('github', d).ok, false);
  });

  it('a form without a payload field is 400', () => {
    const body = Buffer.from('hello=world');
    const headers = delivery('github', 'push').headers;
    headers.set('content-type', 'application/x-www-form-urlencoded');
    headers.set('x-hub-signature-256', `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`);
    assert.deepEqual(parse('github', { headers, body }), { ok: false, status: 400, message: 'push form body has no payload field' });
  });

  it('a push that deletes the branch says so, with no sha', () => {
    assert.deepEqual(eventOf(parse('github', delivery('github', 'push-delete'))), { kind: 'push', branch: 'feature/web-1.4.3', deleted: true });
  });

  it('a tag push is not a branch push', () => assert.deepEqual(eventOf(parse('github', delivery('github', 'push-tag'))), { kind: 'other', name: 'push to refs/tags/v2025.03.01' }));
  it('ping', () => assert.deepEqual(eventOf(parse('github', delivery('github', 'ping'))), { kind: 'ping' }));

  it('pull_request opened, synchronize, closed; labeled is not a plan', () => {
    const pr = { kind: 'pull-request', number: 42, headBranch: 'feature/web-1.4.3', baseBranch: 'main' } as const;
    assert.deepEqual(eventOf(parse('github', delivery('github', 'pull_request-opened'))), { ...pr, action: 'opened', headSha: PR_HEAD, closed: false });
    assert.deepEqual(eventOf(parse('github', delivery('github', 'pull_request-synchronize', { form: true }))), { ...pr, action: 'synchronize', headSha: PR_HEAD2, closed: false });
    assert.deepEqual(eventOf(parse('github', delivery('github', 'pull_request-closed'))), { ...pr, action: 'closed', headSha: PR_HEAD2, closed: true });
    assert.deepEqual(eventOf(parse('github', delivery('github', 'pull_request-labeled'))), { kind: 'other', name: 'pull_request labeled' });
  });

  it('other events are other', () => {
    const d = delivery('github', 'push');
    d.headers.set('x-github-event', 'issues');
    assert.deepEqual(eventOf(parse('github', d)), { kind: 'other', name: 'issues' });
  });
});

describe('gitea deliveries', () => {
  it('push as JSON', () => assert.deepEqual(eventOf(parse('gitea', delivery('gitea', 'push'))), mainPush));

  it('push form-encoded: X-Gitea-Signature is over the JSON payload, not the form body (deliver.go)', () => {
    const d = delivery('gitea', 'push', { form: true });
    assert.notEqual(d.body.toString(), payload('gitea', 'push').toString());
    assert.deepEqual(eventOf(parse('gitea', d)), mainPush);
  });

  it('a form signed over the form body (not what Gitea does) is refused', () => {
    const d = delivery('gitea', 'push', { form: true });
    const overBody = createHmac('sha256', SECRET).update(d.body).digest('hex');
    d.headers.set('x-gitea-signature', overBody);
    d.headers.set('x-hub-signature-256', `sha256=${overBody}`);
    assert.equal(parse('gitea', d).ok, false);
  });

  it('a deleted branch comes as a delete event, which is not a push', () => {
    assert.deepEqual(eventOf(parse('gitea', delivery('gitea', 'delete'))), { kind: 'other', name: 'delete' });
  });

  it('pull_request opened, synchronized (Gitea\'s word), closed', () => {
    const pr = { kind: 'pull-request', number: 7, headBranch: 'feature/web-1.4.3', baseBranch: 'main' } as const;
    assert.deepEqual(eventOf(parse('gitea', delivery('gitea', 'pull_request-opened'))), { ...pr, action: 'opened', headSha: PR_HEAD, closed: false });
    assert.deepEqual(eventOf(parse('gitea', delivery('gitea', 'pull_request-synchronized', { form: true }))), { ...pr, action: 'synchronized', headSha: PR_HEAD2, closed: false });
    assert.deepEqual(eventOf(parse('gitea', delivery('gitea', 'pull_request-closed'))), { ...pr, action: 'closed', headSha: PR_HEAD2, closed: true });
  });

  it('reads the event from X-Gogs-Event or X-GitHub-Event when X-Gitea-Event is missing', () => {
    const d = delivery('gitea', 'push');
    d.headers.delete('x-gitea-event');
    assert.deepEqual(eventOf(parse('gitea', d)), mainPush);
    d.headers.delete('x-gogs-event');
    assert.deepEqual(eventOf(parse('gitea', d)), mainPush);
  });
});

describe('gitlab deliveries', () => {
  it('Push Hook', () => assert.deepEqual(eventOf(parse('gitlab', delivery('gitlab', 'push'))), mainPush));

  it('a push that deletes the branch (after all zeros, checkout_sha null)', () => {
    assert.deepEqual(eventOf(parse('gitlab', delivery('gitlab', 'push-delete'))), { kind: 'push', branch: 'feature/web-1.4.3', deleted: true });
  });

  it('Merge Request Hook open, update, merge; approved is not a plan', () => {
    const mr = { kind: 'pull-request', number: 9, headBranch: 'feature/web-1.4.3', baseBranch: 'main' } as const;
    assert.deepEqual(eventOf(parse('gitlab', delivery('gitlab', 'merge_request-open'))), { ...mr, action: 'open', headSha: PR_HEAD, closed: false });
    assert.deepEqual(eventOf(parse('gitlab', delivery('gitlab', 'merge_request-update'))), { ...mr, action: 'update', headSha: PR_HEAD2, closed: false });
    assert.deepEqual(eventOf(parse('gitlab', delivery('gitlab', 'merge_request-merge'))), { ...mr, action: 'merge', headSha: PR_HEAD2, closed: true });
    assert.deepEqual(eventOf(parse('gitlab', delivery('gitlab', 'merge_request-approved'))), { kind: 'other', name: 'merge request approved' });
  });

  it('a System Hook says what it is in object_kind', () => {
    const d = delivery('gitlab', 'push');
    d.headers.set('x-gitlab-event', 'System Hook');
    assert.deepEqual(eventOf(parse('gitlab', d)), mainPush);
  });

  it('other hooks are other', () => {
    const d = delivery('gitlab', 'push');
    d.headers.set('x-gitlab-event', 'Tag Push Hook');
    assert.deepEqual(eventOf(parse('gitlab', d)), { kind: 'other', name: 'Tag Push Hook' });
  });
});
