import { safeEqual } from '../../util/safe-equal.js';
import { isNullSha, jsonObject, pick, text, type JsonObject } from '../github/webhook.js';
import type { WebhookEvent, WebhookParser, WebhookVerdict } from '../types.js';

/** Merge request actions that change what a plan shows; approvals and the like do not. */
const MR_ACTIONS = new Set(['open', 'reopen', 'update', 'close', 'merge']);

/** `Push Hook`: `after` and `checkout_sha`; a deleted branch has `after` all zeros and `checkout_sha: null`. */
function push(payload: JsonObject): WebhookEvent {
  const ref = text(payload.ref);
  if (!ref?.startsWith('refs/heads/')) return { kind: 'other', name: `push to ${ref ?? 'an unnamed ref'}` };
  const after = text(payload.after);
  const deleted = isNullSha(after) || (after === undefined && payload.checkout_sha === null);
  const sha = after ?? text(payload.checkout_sha);
  return { kind: 'push', branch: ref.slice('refs/heads/'.length), deleted, ...(sha && !deleted && { sha }) };
}

/** `Merge Request Hook`: what happened is `object_attributes.action`; the head commit is `last_commit.id`. */
function mergeRequest(payload: JsonObject): WebhookVerdict {
  const attrs = payload.object_attributes;
  const action = text(pick(attrs, 'action')) ?? '';
  if (!MR_ACTIONS.has(action)) return { ok: true, event: { kind: 'other', name: `merge request ${action || '(no action)'}` } };
  const number = pick(attrs, 'iid');
  const headBranch = text(pick(attrs, 'source_branch'));
  const baseBranch = text(pick(attrs, 'target_branch'));
  const headSha = text(pick(attrs, 'last_commit', 'id'));
  if (typeof number !== 'number' || !headBranch || !baseBranch || !headSha) return { ok: false, status: 400, message: 'merge request payload lacks object_attributes.iid, source_branch, target_branch or last_commit.id' };
  return { ok: true, event: { kind: 'pull-request', action, number, headBranch, headSha, baseBranch, closed: action === 'close' || action === 'merge' } };
}

/**
 * GitLab sends the secret token itself in X-Gitlab-Token (no HMAC): compared in constant time before
 * the body is read. A system hook (X-Gitlab-Event: System Hook) says what it is in `object_kind`.
 */
export const parseGitLabWebhook: WebhookParser = (headers, body, secret) => {
  if (!safeEqual(headers.get('x-gitlab-token') ?? '', secret)) return { ok: false, status: 401, message: 'invalid or missing gitlab webhook token (X-Gitlab-Token)' };
  const header = headers.get('x-gitlab-event') ?? '';
  const known: Record<string, string> = { 'Push Hook': 'push', 'Merge Request Hook': 'merge_request' };
  if (header !== 'System Hook' && !known[header]) return { ok: true, event: { kind: 'other', name: header || '(no X-Gitlab-Event)' } };
  const parsed = jsonObject(body, header === 'System Hook' ? 'system hook' : known[header] === 'push' ? 'push' : 'merge request');
  if (!parsed.ok) return parsed;
  const kind = known[header] ?? text(parsed.payload.object_kind);
  if (kind === 'push') return { ok: true, event: push(parsed.payload) };
  if (kind === 'merge_request') return mergeRequest(parsed.payload);
  return { ok: true, event: { kind: 'other', name: `${header} ${kind ?? ''}`.trim() } };
};
