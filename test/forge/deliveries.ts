import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RemoteForgeName } from '../../src/forge/types.js';
import { ROOT } from '../support/repo.js';

export interface Delivery {
  headers: Headers;
  body: Buffer;
}

const hmac = (algorithm: 'sha1' | 'sha256', secret: string, data: Buffer): string => createHmac(algorithm, secret).update(data).digest('hex');

/** A fixture's JSON payload as bytes (test/fixtures/webhooks/<forge>/<name>.json). */
export function payload(forge: RemoteForgeName, name: string): Buffer {
  return readFileSync(path.join(ROOT, 'test/fixtures/webhooks', forge, `${name}.json`));
}

/**
 * A delivery of fixture `name` as the forge sends it: its headers, the body (JSON, or
 * `application/x-www-form-urlencoded` with the JSON in `payload`, spaces as `+`, as GitHub and
 * Gitea encode forms) and the signature each forge computes: GitHub over the raw body, Gitea over
 * the JSON payload whatever the body, GitLab's token as is.
 */
export function delivery(forge: RemoteForgeName, name: string, options: { secret?: string; form?: boolean; json?: Buffer } = {}): Delivery {
  const secret = options.secret ?? 's3cret';
  const json = options.json ?? payload(forge, name);
  const headers = new Headers(JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/webhooks', forge, `${name}.headers.json`), 'utf8')) as Record<string, string>);
  const body = options.form ? Buffer.from(new URLSearchParams({ payload: json.toString('utf8') }).toString()) : json;
  if (options.form) headers.set('content-type', 'application/x-www-form-urlencoded');
  if (forge === 'github') {
    headers.set('x-hub-signature', `sha1=${hmac('sha1', secret, body)}`);
    headers.set('x-hub-signature-256', `sha256=${hmac('sha256', secret, body)}`);
  } else if (forge === 'gitea') {
    const signature = hmac('sha256', secret, json);
    headers.set('x-gitea-signature', signature);
    headers.set('x-gogs-signature', signature);
    headers.set('x-hub-signature', `sha1=${hmac('sha1', secret, json)}`);
    headers.set('x-hub-signature-256', `sha256=${signature}`);
  } else {
    headers.set('x-gitlab-token', secret);
  }
  return { headers, body };
}
