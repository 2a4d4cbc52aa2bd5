import { createHmac } from 'node:crypto';
import { safeEqual } from '../../util/safe-equal.js';
import type { WebhookEvent, WebhookParser, WebhookVerdict } from '../types.js';

// GitHub's webhook format is the one Gitea copies (and GitLab's payloads share its JSON helpers),
// so the helpers for the three parsers live here, with the format they come from.

/** Hex HMAC-SHA256 of `data`: GitHub's X-Hub-Signature-256 (after `sha256=`) and Gitea's X-Gitea-Signature. */
export function hmacHex(secret: string, data: Buffer): string {
  return createHmac('sha256', secret).update(data).digest('hex');
}

/** True when the forge sent `application/x-www-form-urlencoded` (the payload is then the `payload` field). */
export function isForm(headers: Headers): boolean {
  return /^application\/x-www-form-urlencoded\b/i.test(headers.get('content-type') ?? '');
}

/** The `payload` field of a form-encoded body, as the bytes of its JSON text; undefined when absent. */
export function formPayload(body: Buffer): Buffer | undefined {
  const payload = new URLSearchParams(body.toString('utf8')).get('payload');
  return payload === null ? undefined : Buffer.from(payload, 'utf8');
}

export type JsonObject = Record<string, unknown>;

/** The verified payload's JSON object, or the 400 that says why there is none. */
export function jsonObject(bytes: Buffer, event: string): { ok: true; payload: JsonObject } | { ok: false; status: 400; message: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, status: 400, message: `${event} payload is not JSON` };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, status: 400, message: `${event} payload is not a JSON object` };
  return { ok: true, payload: parsed as JsonObject };
}

/** `obj.a.b.c` when every step is an object, else undefined. */
export function pick(obj: unknown, ...path: string[]): unknown {
  let at = obj;
  for (const key of path) {
    if (!at || typeof at !== 'object') return undefined;
    at = (at as JsonObject)[key];
  }
  return at;
}

export const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Git's null object id (40 zeros, or 64 in a SHA-256 repository): the ref did not exist before, or no longer does. */
export const isNullSha = (sha: string | undefined): boolean => sha !== undefined && /^0+$/.test(sha);

/**
 * A push in GitHub's shape (GitHub, Gitea): `ref`, `after`, and GitHub's `deleted`. A push of a tag
 * is not a branch push; a push that deletes the branch says so (its `after` is the null id).
 */
export function githubStylePush(payload: JsonObject): WebhookEvent {
  const ref = text(payload.ref);
  if (!ref?.startsWith('refs/heads/')) return { kind: 'other', name: `push to ${ref ?? 'an unnamed ref'}` };
  const after = text(payload.after);
  const deleted = payload.deleted === true || isNullSha(after);
  return { kind: 'push', branch: ref.slice('refs/heads/'.length), deleted, ...(after && !deleted && { sha: after }) };
}

/**
 * A pull request in GitHub's shape (GitHub, Gitea). Only the actions in `actions` matter to a plan
 * (opened, new commits, reopened, closed); labels, reviews and edits are `other`.
 */
export function githubStylePullRequest(payload: JsonObject, event: string, actions: ReadonlySet<string>): WebhookVerdict {
  const action = text(payload.action) ?? '';
  if (!actions.has(action)) return { ok: true, event: { kind: 'other', name: `${event} ${action || '(no action)'}` } };
  const pr = payload.pull_request;
  const number = pick(pr, 'number') ?? payload.number;
  const headBranch = text(pick(pr, 'head', 'ref'));
  const headSha = text(pick(pr, 'head', 'sha'));
  const baseBranch = text(pick(pr, 'base', 'ref'));
  if (typeof number !== 'number' || !headBranch || !headSha || !baseBranch) return { ok: false, status: 400, message: `${event} payload lacks pull_request.number, head.ref, head.sha or base.ref` };
  return { ok: true, event: { kind: 'pull-request', action, number, headBranch, headSha, baseBranch, closed: action === 'closed' } };
}

const PULL_ACTIONS = new Set(['opened', 'reopened', 'synchronize', 'ready_for_review', 'closed']);

/**
 * GitHub: X-Hub-Signature-256 is the HMAC of the raw body as delivered, whether JSON or
 * `application/x-www-form-urlencoded` (`payload=<JSON>`, the content type GitHub preselects).
 */
export const parseGitHubWebhook: WebhookParser = (headers, body, secret) => {
  const signature = headers.get('x-hub-signature-256') ?? '';
  if (!signature.startsWith('sha256=') || !safeEqual(signature.slice('sha256='.length), hmacHex(secret, body))) {
    return { ok: false, status: 401, message: 'invalid or missing github webhook signature (X-Hub-Signature-256)' };
  }
  const event = headers.get('x-github-event') ?? '';
  if (event === 'ping') return { ok: true, event: { kind: 'ping' } };
  if (event !== 'push' && event !== 'pull_request') return { ok: true, event: { kind: 'other', name: event || '(no X-GitHub-Event)' } };
  const json = isForm(headers) ? formPayload(body) : body;
  if (!json) return { ok: false, status: 400, message: `${event} form body has no payload field` };
  const parsed = jsonObject(json, event);
  if (!parsed.ok) return parsed;
  return event === 'push' ? { ok: true, event: githubStylePush(parsed.payload) } : githubStylePullRequest(parsed.payload, event, PULL_ACTIONS);
};
