import { createHmac, timingSafeEqual } from 'node:crypto';

export type Forge = 'github' | 'gitea' | 'gitlab';

export type WebhookVerdict =
  | { ok: true; event: 'push'; branch: string; sha?: string }
  | { ok: true; event: 'ping' }
  | { ok: true; event: 'other'; name: string }
  | { ok: false; status: 401 | 400; message: string };

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  // timingSafeEqual needs equal lengths; comparing against itself keeps the time constant.
  return x.length === y.length ? timingSafeEqual(x, y) : (timingSafeEqual(x, x), false);
}

function hmac(secret: string, body: Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * Checks a forge's signature over the raw body (HMAC-SHA256 for GitHub and Gitea, the shared token
 * for GitLab), in constant time, then reads the pushed branch. Never trusts the body before that.
 */
export function verifyWebhook(forge: Forge, headers: Headers, body: Buffer, secret: string): WebhookVerdict {
  let signed = false;
  if (forge === 'github') {
    const sig = headers.get('x-hub-signature-256') ?? '';
    signed = sig.startsWith('sha256=') && safeEqual(sig.slice(7), hmac(secret, body));
  } else if (forge === 'gitea') {
    const sig = headers.get('x-gitea-signature') ?? headers.get('x-hub-signature-256')?.replace(/^sha256=/, '') ?? '';
    signed = sig !== '' && safeEqual(sig, hmac(secret, body));
  } else {
    signed = safeEqual(headers.get('x-gitlab-token') ?? '', secret);
  }
  if (!signed) return { ok: false, status: 401, message: `invalid or missing ${forge} webhook signature` };

  const event = headers.get('x-github-event') ?? headers.get('x-gitea-event') ?? headers.get('x-gitlab-event') ?? '';
  if (event === 'ping') return { ok: true, event: 'ping' };
  if (!/^(push|Push Hook)$/.test(event)) return { ok: true, event: 'other', name: event };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, status: 400, message: 'push payload is not JSON' };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, status: 400, message: 'push payload is not a JSON object' };
  const payload = parsed as { ref?: unknown; after?: unknown; checkout_sha?: unknown };
  if (typeof payload.ref !== 'string' || !payload.ref.startsWith('refs/heads/')) return { ok: true, event: 'other', name: `push to ${String(payload.ref)}` };
  const sha = typeof payload.after === 'string' ? payload.after : typeof payload.checkout_sha === 'string' ? payload.checkout_sha : undefined;
  return { ok: true, event: 'push', branch: payload.ref.slice('refs/heads/'.length), ...(sha && { sha }) };
}
