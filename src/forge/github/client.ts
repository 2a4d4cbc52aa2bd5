import { Octokit } from '@octokit/rest';
import { upsertWith } from '../comments.js';
import { forgeCaller, withTimeout, type ForgeCall } from '../errors.js';
import { FORGE_TIMEOUT_MS, FORGE_USER_AGENT, type Forge, type ForgeClientOptions, type PullRequestRef, type StatusRequest } from '../types.js';

export const GITHUB_API_URL = 'https://api.github.com';

/** Octokit logs deprecations to the console by default; berth's log has no place for it. */
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/**
 * GitHub (and GitHub Enterprise: baseUrl https://HOST/api/v3) through Octokit. No retry or throttle
 * plugin: berth's status queue retries with its own backoff, and a second layer would multiply waits.
 */
export class GitHubForge implements Forge {
  readonly name = 'github';
  readonly maxCommentChars = 65_536;
  readonly upsertComment: Forge['upsertComment'];
  readonly #octokit: Octokit;
  readonly #owner: string;
  readonly #repo: string;
  readonly #call: ForgeCall;

  constructor(options: ForgeClientOptions) {
    const [owner, repo] = options.repo.split('/');
    this.#owner = owner ?? '';
    this.#repo = repo ?? '';
    this.#call = forgeCaller(this.name, options.token, options.repo);
    const timeoutMs = options.timeoutMs ?? FORGE_TIMEOUT_MS;
    this.#octokit = new Octokit({
      auth: options.token,
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      userAgent: FORGE_USER_AGENT,
      log: quiet,
      // Octokit has no timeout of its own: each request gets one, on top of any signal it carries.
      request: { fetch: (url: string | URL, init: RequestInit = {}) => fetch(url, { ...init, signal: withTimeout(init.signal, timeoutMs) }) },
    });
    const where = { owner: this.#owner, repo: this.#repo };
    this.upsertComment = upsertWith(this.name, this.maxCommentChars, {
      self: () => this.#call('identify token user', () => this.#login()),
      list: (number) => this.#call('list comments', async () => (await this.#octokit.paginate(this.#octokit.rest.issues.listComments, { ...where, issue_number: number, per_page: 100 })).map((c) => ({ id: c.id, body: c.body ?? '', author: c.user?.login ?? '' })), { number }),
      create: (number, body) => this.#call('create comment', async () => void (await this.#octokit.rest.issues.createComment({ ...where, issue_number: number, body })), { number }),
      update: (number, id, body) => this.#call('update comment', async () => void (await this.#octokit.rest.issues.updateComment({ ...where, comment_id: id, body })), { number, comment: id }),
      remove: (number, id) => this.#call('delete comment', async () => void (await this.#octokit.rest.issues.deleteComment({ ...where, comment_id: id })), { number, comment: id }),
    });
  }

  /** The login the token comments as. */
  async #login(): Promise<string> {
    try {
      return (await this.#octokit.rest.users.getAuthenticated()).data.login;
    } catch (err) {
      // An installation token (Actions' GITHUB_TOKEN, a GitHub App's) may not read /user (403); GraphQL's viewer is its bot, `<app>[bot]`.
      if ((err as { status?: unknown }).status !== 403) throw err;
      return (await this.#octokit.graphql<{ viewer: { login: string } }>('query { viewer { login } }')).viewer.login;
    }
  }

  async setStatus(status: StatusRequest): Promise<void> {
    await this.#call(
      'set status',
      () =>
        this.#octokit.rest.repos.createCommitStatus({
          owner: this.#owner,
          repo: this.#repo,
          sha: status.sha,
          state: status.state,
          context: status.context,
          description: status.description,
          ...(status.targetUrl && { target_url: status.targetUrl }),
        }),
      { sha: status.sha, context: status.context },
    );
  }

  async pullRequestsFor(branch: string): Promise<PullRequestRef[]> {
    // `head` is owner:branch, so a fork's branch of the same name is not ours.
    const pulls = await this.#call('list pull requests', () => this.#octokit.paginate(this.#octokit.rest.pulls.list, { owner: this.#owner, repo: this.#repo, state: 'open', head: `${this.#owner}:${branch}`, per_page: 100 }), { branch });
    return pulls.map((p) => ({ number: p.number, headBranch: p.head.ref, headSha: p.head.sha, baseBranch: p.base.ref, url: p.html_url }));
  }
}
