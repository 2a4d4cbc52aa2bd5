import { VERSION } from '../version.js';

/** Commit-status states berth reports (forges map them to their own words: GitLab says `failed`). */
export type CommitState = 'pending' | 'success' | 'failure' | 'error';

/** The forges berth reaches over HTTP: they have an API, tokens, pull requests and webhooks. */
export type RemoteForgeName = 'github' | 'gitea' | 'gitlab';

/** The forges berth speaks to; `local` keeps statuses as git notes in the config repo. */
export type ForgeName = RemoteForgeName | 'local';

/** One commit status to set. `description` is at most 140 characters, `context` at most 255. */
export interface StatusRequest {
  sha: string;
  context: string;
  state: CommitState;
  description: string;
  /** A link shown with the status (berth's API or dashboard), when `--external-url` is set. */
  targetUrl?: string;
}

/** An open pull (merge) request, as berth needs it for plan comments. */
export interface PullRequestRef {
  number: number;
  headBranch: string;
  headSha: string;
  baseBranch: string;
  url?: string;
}

/** What a verified webhook says, whichever forge sent it. */
export type WebhookEvent =
  /** `deleted`: the push removed the branch (`deleted: true`, or `after` all zeros). */
  | { kind: 'push'; branch: string; sha?: string; deleted: boolean }
  /** A pull/merge request opened, updated (new commits) or reopened; `closed` when it was closed or merged. */
  | { kind: 'pull-request'; action: string; number: number; headBranch: string; headSha: string; baseBranch: string; closed: boolean }
  | { kind: 'ping' }
  | { kind: 'other'; name: string };

export type WebhookVerdict = { ok: true; event: WebhookEvent } | { ok: false; status: 400 | 401; message: string };

/** Checks a webhook's signature over the raw body (constant time) and parses it; never trusts the body before that. */
export type WebhookParser = (headers: Headers, body: Buffer, secret: string) => WebhookVerdict;

/** What a comment sync did: comments created, updated in place, deleted (parts no longer needed), left as they were. */
export interface CommentSync {
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

/**
 * A forge's API as berth uses it. Implementations keep tokens to themselves: no token appears in an
 * error message, a log line or a returned value.
 */
export interface Forge {
  readonly name: ForgeName;
  /** The largest comment body the forge takes, in characters (parts are split under it). */
  readonly maxCommentChars: number;
  setStatus(status: StatusRequest): Promise<void>;
  /** Open pull requests whose head is `branch` in this repository. */
  pullRequestsFor(branch: string): Promise<PullRequestRef[]>;
  /**
   * Makes pull request `number` carry exactly `parts` as berth's comments marked `marker`: each
   * existing part is updated in place (only if it changed), missing ones are created, surplus ones
   * deleted. Comments are found by the hidden line `<!-- <marker> part <i> -->` that starts each body.
   */
  upsertComment(number: number, marker: string, parts: string[]): Promise<CommentSync>;
}

/** The User-Agent berth's forge clients send (forges ask API clients to name themselves). */
export const FORGE_USER_AGENT = `berth/${VERSION}`;

/** How long one forge API request may take before it counts as failed (transient). */
export const FORGE_TIMEOUT_MS = 10_000;

/** Where and as whom a remote forge client talks: what `selectForge` works out from the options. */
export interface ForgeClientOptions {
  /** The API base: https://api.github.com, https://HOST/api/v3, https://HOST/api/v1 (Gitea), https://HOST (GitLab). */
  baseUrl: string;
  /** `owner/name`; on GitLab the project's full path, nested groups included. */
  repo: string;
  /** Sent in the Authorization header only; never logged, never in an error. */
  token: string;
  timeoutMs?: number;
}
