import { BerthError } from '../errors.js';
import type { ForgeName } from './types.js';

/** What berth was doing when a forge call failed, for the error's context and message. */
export type ForgeOperation = 'set status' | 'list pull requests' | 'identify token user' | 'list comments' | 'create comment' | 'update comment' | 'delete comment' | 'sync comments';

export interface ForgeErrorContext {
  forge: ForgeName;
  operation: ForgeOperation;
  /** The HTTP status the forge answered; absent when no answer came (network, timeout). */
  status?: number;
  [key: string]: unknown;
}

/**
 * A forge API call that failed. `transient` says whether retrying can help (network trouble,
 * timeouts, 5xx, 429, 408) or not (bad token, unknown repository, invalid request). Its message and
 * cause never carry the token: anything a server echoes is redacted first.
 */
export class ForgeError extends BerthError {
  readonly transient: boolean;
  declare readonly context: ForgeErrorContext;

  constructor(message: string, context: ForgeErrorContext, options: { transient: boolean; cause?: Error }) {
    super('E_FORGE', message, context, options.cause);
    this.transient = options.transient;
  }
}

/**
 * An HTTP answer outside 2xx, thrown by berth's own request code (Gitea, GitLab's requester) and
 * turned into a ForgeError by `toForgeError`. `detail` is the forge's error message, not redacted yet.
 */
export class ForgeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`HTTP ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'ForgeHttpError';
  }
}

/** Statuses worth retrying: the server's trouble, rate limits and request timeouts. */
function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

const NETWORK = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND|ENETUNREACH|EHOSTUNREACH|UND_ERR|socket hang up|fetch failed|other side closed|timeout|aborted/i;

/** Replaces every secret (as is and percent-encoded) in `text`, so an echoed token never travels on. */
function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.replaceAll(form, '[REDACTED]');
  }
  return out;
}

function statusOf(err: unknown): number | undefined {
  const e = err as { status?: unknown; response?: { status?: unknown } } | undefined;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.response?.status === 'number' ? e.response.status : undefined;
  // Octokit reports a network failure as status 500 without a response: that is no answer at all.
  if (status === 500 && e && typeof e === 'object' && 'request' in e && !e.response) return undefined;
  return status;
}

function detailOf(err: unknown): string {
  if (err instanceof ForgeHttpError) return err.detail;
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? err.cause.message : typeof err.cause === 'string' ? err.cause : '';
    return cause && !err.message.includes(cause) ? `${err.message} (${cause})` : err.message;
  }
  return String(err);
}

/** What a permanent answer usually means, for the person reading the log. */
const HINTS: Record<number, string> = {
  401: ': the token was refused; check --forge-token (or the forge\'s *_TOKEN variable)',
  403: ': the token may not do this; it needs write access to commit statuses and pull request comments',
  404: ': no such repository or pull request for this token; check --forge-repo and --forge-url',
  422: ': the forge refused the request as invalid',
};

/**
 * Sorts a failure of a forge call at the edge where it happened: an HTTP status decides whether it
 * is transient; no status means no answer (network, timeout), which is. The library's error is not
 * kept (its request object holds the token): the cause is a plain Error with the redacted detail.
 */
function toForgeError(forge: ForgeName, operation: ForgeOperation, err: unknown, secrets: readonly (string | undefined)[], extra: Record<string, unknown> = {}): ForgeError {
  if (err instanceof ForgeError) return err;
  const status = statusOf(err);
  const detail = redact(detailOf(err), secrets).slice(0, 500);
  // GitHub answers an exhausted rate limit with 403 as often as with 429: waiting helps either way.
  const rateLimited = status === 403 && /rate limit/i.test(detail);
  const transient = status === undefined ? NETWORK.test(detail) || (err instanceof Error && /AbortError|TimeoutError/.test(err.name)) : isTransientStatus(status) || rateLimited;
  const what = status === undefined ? 'no answer' : `HTTP ${status}`;
  const cause = new Error(detail || what);
  // Reading its own user is the one call that needs no write access, so its 403 means something else.
  const hint = status === undefined ? '' : status === 403 && operation === 'identify token user' ? ": the token may not read its own user, which tells berth's comments from others' (Gitea: give it the read:user scope)" : (HINTS[status] ?? '');
  return new ForgeError(`${forge}: ${operation} failed (${what})${hint}`, { forge, operation, ...(status !== undefined && { status }), ...extra }, { transient, cause });
}

/** One forge API call as a client makes it: `run`, with what the call was about added to a failure's context. */
export type ForgeCall = <T>(operation: ForgeOperation, run: () => Promise<T>, context?: Record<string, unknown>) => Promise<T>;

/**
 * The call wrapper of one forge client: any failure of `run` becomes a ForgeError (`toForgeError`)
 * with `token` redacted and `repo` in its context, so no client catches and sorts errors itself.
 */
export function forgeCaller(forge: ForgeName, token: string, repo: string): ForgeCall {
  return async (operation, run, context = {}) => {
    try {
      return await run();
    } catch (err) {
      throw toForgeError(forge, operation, err, [token], { repo, ...context });
    }
  };
}

/** `signal` (when a library passes one) bounded by `ms`: forge requests never wait longer than that. */
export function withTimeout(signal: AbortSignal | null | undefined, ms: number): AbortSignal {
  return signal ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
}

/**
 * The message of a forge's error answer, given as text or parsed: `{ "message": ... }` (Gitea;
 * GitLab's is a string or field → errors) or `{ "error": "..." }` (GitLab); anything else as text, cut.
 */
export function forgeMessage(body: unknown): string {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      // not JSON: shown as text below
    }
  }
  if (parsed && typeof parsed === 'object') {
    const { message, error } = parsed as { message?: unknown; error?: unknown };
    const m = message ?? error;
    if (m !== undefined) return typeof m === 'string' ? m : JSON.stringify(m);
  }
  return typeof body === 'string' ? body.slice(0, 300) : '';
}
