import { upsertWith } from '../comments.js';
import { ForgeHttpError, forgeCaller, forgeMessage, withTimeout, type ForgeCall, type ForgeOperation } from '../errors.js';
import { FORGE_TIMEOUT_MS, FORGE_USER_AGENT, type Forge, type ForgeClientOptions, type PullRequestRef, type StatusRequest } from '../types.js';

/** Gitea's largest page by default (MAX_RESPONSE_ITEMS). */
const PAGE = 50;
/** A repository with more open pull requests than this is beyond what berth comments on. */
const MAX_PAGES = 40;

interface GiteaPull {
  number: number;
  html_url?: string;
  head: { ref: string; sha: string; repo?: { full_name?: string } | null };
  base: { ref: string };
}

interface GiteaComment {
  id: number;
  body?: string;
  user?: { login?: string } | null;
}

interface RequestOptions {
  query?: Record<string, string | number>;
  body?: unknown;
  context?: Record<string, unknown>;
}

/**
 * Gitea (and Forgejo, Codeberg) over plain fetch: the API berth needs is a handful of endpoints, and
 * there is no well-kept client library for it (gitea-js is generated from the swagger file and lags releases).
 */
export class GiteaForge implements Forge {
  readonly name = 'gitea';
  /** Gitea stores comments as LONGTEXT and sets no limit; GitHub's keeps a plan readable and a page light. */
  readonly maxCommentChars = 65_536;
  readonly upsertComment: Forge['upsertComment'];
  readonly #base: string;
  /** `owner/name`, as pull requests name their head repository. */
  readonly #repo: string;
  /** The repository's API path: `repos/<owner>/<name>`, each segment encoded. */
  readonly #repoPath: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #call: ForgeCall;

  constructor(options: ForgeClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#repo = options.repo;
    this.#repoPath = `repos/${options.repo.split('/').map(encodeURIComponent).join('/')}`;
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? FORGE_TIMEOUT_MS;
    this.#call = forgeCaller(this.name, options.token, options.repo);
    const comments = (number: number): string => `${this.#repoPath}/issues/${number}/comments`;
    const comment = (id: number): string => `${this.#repoPath}/issues/comments/${id}`;
    this.upsertComment = upsertWith(this.name, this.maxCommentChars, {
      self: async () => (await this.#request<{ login: string }>('identify token user', 'GET', 'user')).login,
      // This endpoint is not paginated: it answers every comment of the issue.
      list: async (number) => (await this.#request<GiteaComment[]>('list comments', 'GET', comments(number), { context: { number } })).map((c) => ({ id: c.id, body: c.body ?? '', author: c.user?.login ?? '' })),
      create: async (number, body) => void (await this.#request('create comment', 'POST', comments(number), { body: { body }, context: { number } })),
      update: async (number, id, body) => void (await this.#request('update comment', 'PATCH', comment(id), { body: { body }, context: { number, comment: id } })),
      remove: async (number, id) => void (await this.#request('delete comment', 'DELETE', comment(id), { context: { number, comment: id } })),
    });
  }

  async #request<T>(operation: ForgeOperation, method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.#send<T>(operation, method, path, options)).data;
  }

  #send<T>(operation: ForgeOperation, method: string, path: string, options: RequestOptions = {}): Promise<{ data: T; headers: Headers }> {
    const url = new URL(`${this.#base}/${path}`);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, String(v));
    return this.#call(
      operation,
      async () => {
        const res = await fetch(url, {
          method,
          headers: { authorization: `token ${this.#token}`, accept: 'application/json', 'user-agent': FORGE_USER_AGENT, ...(options.body !== undefined && { 'content-type': 'application/json' }) },
          ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
          signal: withTimeout(undefined, this.#timeoutMs),
        });
        const text = await res.text();
        if (!res.ok) throw new ForgeHttpError(res.status, forgeMessage(text));
        return { data: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
      },
      options.context,
    );
  }

  async setStatus(status: StatusRequest): Promise<void> {
    const body = { state: status.state, context: status.context, description: status.description, ...(status.targetUrl && { target_url: status.targetUrl }) };
    await this.#request('set status', 'POST', `${this.#repoPath}/statuses/${encodeURIComponent(status.sha)}`, { body, context: { sha: status.sha, context: status.context } });
  }

  async pullRequestsFor(branch: string): Promise<PullRequestRef[]> {
    const repo = this.#repo.toLowerCase();
    const out: PullRequestRef[] = [];
    // Gitea cannot filter open pull requests by head branch: read them page by page and pick.
    for (let page = 1; page <= MAX_PAGES; page++) {
      const { data: pulls, headers } = await this.#send<GiteaPull[]>('list pull requests', 'GET', `${this.#repoPath}/pulls`, { query: { state: 'open', page, limit: PAGE }, context: { branch } });
      for (const p of pulls) {
        const fromFork = p.head.repo?.full_name !== undefined && p.head.repo.full_name.toLowerCase() !== repo;
        if (p.head.ref === branch && !fromFork) out.push({ number: p.number, headBranch: p.head.ref, headSha: p.head.sha, baseBranch: p.base.ref, ...(p.html_url && { url: p.html_url }) });
      }
      // Gitea links the next page; a server whose MAX_RESPONSE_ITEMS is below PAGE answers shorter pages.
      const link = headers.get('link');
      if (link ? !/rel="next"/.test(link) : pulls.length < PAGE) break;
    }
    return out;
  }
}
