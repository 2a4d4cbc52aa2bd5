import { safeEqual } from '../../util/safe-equal.js';
import { formPayload, githubStylePullRequest, githubStylePush, hmacHex, isForm, jsonObject } from '../github/webhook.js';
import type { WebhookParser } from '../types.js';

/** Gitea says `synchronized` where GitHub says `synchronize`. */
const PULL_ACTIONS = new Set(['opened', 'reopened', 'synchronized', 'closed']);

/**
 * Gitea (and Forgejo): the payload is GitHub-shaped, but the signature is not over the body. Gitea
 * signs the JSON payload content (services/webhook/deliver.go: the HMAC is written over
 * `t.PayloadContent`), and a form-encoded delivery sends that content as the `payload` field. So
 * the signed bytes are the body for JSON and the decoded `payload` field for a form; decoding the
 * form only finds the bytes to check, nothing in them is used before the check passes.
 * X-Gitea-Signature is bare hex; X-Hub-Signature-256 (`sha256=` + the same hex) is read when the
 * former is missing. Gitea also sends X-GitHub-Event and X-Gogs-Event with the same event name.
 * A deleted branch comes as a `delete` event, not as a push.
 */
export const parseGiteaWebhook: WebhookParser = (headers, body, secret) => {
  const signed = isForm(headers) ? formPayload(body) : body;
  const signature = headers.get('x-gitea-signature') || headers.get('x-hub-signature-256')?.replace(/^sha256=/, '') || '';
  if (!signed || !signature || !safeEqual(signature, hmacHex(secret, signed))) {
    return { ok: false, status: 401, message: 'invalid or missing gitea webhook signature (X-Gitea-Signature)' };
  }
  const event = headers.get('x-gitea-event') ?? headers.get('x-gogs-event') ?? headers.get('x-github-event') ?? '';
  if (event !== 'push' && event !== 'pull_request') return { ok: true, event: { kind: 'other', name: event || '(no X-Gitea-Event)' } };
  const parsed = jsonObject(signed, event);
  if (!parsed.ok) return parsed;
  return event === 'push' ? { ok: true, event: githubStylePush(parsed.payload) } : githubStylePullRequest(parsed.payload, event, PULL_ACTIONS);
};
