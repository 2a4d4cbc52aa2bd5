import { Commits, MergeRequestNotes, MergeRequests, Users } from '@gitbeaker/rest';
import { upsertWith } from '../comments.js';
import { ForgeHttpError, forgeCaller, forgeMessage, withTimeout, type ForgeCall } from '../errors.js';
import { FORGE_TIMEOUT_MS, FORGE_USER_AGENT, type CommitState, type Forge, type ForgeClientOptions, type PullRequestRef, type StatusRequest } from '../types.js';

export const GITLAB_URL = 'https://gitlab.com';

/** GitLab's words for berth's states: berth's `pending` means "applying now", which GitLab calls running. */
const STATES = { pending: 'running', success: 'success', failure: 'failed', error: 'failed' } as const satisfies Record<CommitState, string>;

// gitbeaker's requester types live in @gitbeaker/requester-utils, which berth does not depend on directly.
type ResourceOptions = NonNullable<ConstructorParameters<typeof Commits>[0]>;
type RequesterFn = NonNullable<ResourceOptions['requesterFn']>;
type Requester = ReturnType<RequesterFn>;
type RequestOptions = NonNullable<Parameters<Requester['get']>[1]>;

const snake = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/** gitbeaker hands camelCase fields (`targetUrl`, `perPage`); GitLab reads snake_case. Berth's fields are flat. */
function snakeKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [snake(k), v]));
}

/**
 * A gitbeaker requester that sends each request once, with a timeout. gitbeaker's own requester
 * retries 429 and 502 ten times within a quarter of a second: berth's status queue retries with
 * real backoff instead, and sees every failure. Errors carry the status and GitLab's message only
 * (gitbeaker's error keeps the Request, token header included).
 */
function onceRequester(timeoutMs: number): RequesterFn {
  return (service) => {
    const send =
      (method: string) =>
      async (endpoint: string, options: RequestOptions = {}) => {
        const url = new URL(endpoint, service.url.endsWith('/') ? service.url : `${service.url}/`);
        for (const [k, v] of Object.entries(snakeKeys(options.searchParams ?? {}))) url.searchParams.set(k, String(v));
        const headers: Record<string, string> = { ...service.headers, accept: 'application/json', 'user-agent': FORGE_USER_AGENT };
        for (const [name, value] of Object.entries(service.authHeaders)) headers[name] = await value();
        const fields = options.body && !(options.body instanceof FormData) ? snakeKeys(options.body) : {};
        const hasBody = Object.keys(fields).length > 0;
        if (hasBody) headers['content-type'] = 'application/json';
        const res = await fetch(url, { method, headers, signal: withTimeout(options.signal, timeoutMs), ...(hasBody && { body: JSON.stringify(fields) }) });
        const text = res.status === 204 ? '' : await res.text();
        const body: unknown = text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text || null;
        if (!res.ok) throw new ForgeHttpError(res.status, forgeMessage(body));
        // The requester's generic return type is the caller's claim about the body; GitLab's JSON is what it is.
        return { body, headers: Object.fromEntries(res.headers), status: res.status } as never;
      };
    return { get: send('GET'), post: send('POST'), put: send('PUT'), patch: send('PATCH'), delete: send('DELETE') } satisfies Requester;
  };
}

/**
 * GitLab (gitlab.com or self-managed) through gitbeaker. The project is its full path (nested groups
 * allowed), which gitbeaker URL-encodes. The token goes in `Authorization: Bearer`, which GitLab takes
 * for personal, project and group access tokens alike.
 */
export class GitLabForge implements Forge {
  readonly name = 'gitlab';
  readonly maxCommentChars = 1_000_000;
  readonly upsertComment: Forge['upsertComment'];
  readonly #project: string;
  readonly #call: ForgeCall;
  readonly #commits: Commits<false>;
  readonly #mergeRequests: MergeRequests<false>;

  constructor(options: ForgeClientOptions) {
    this.#project = options.repo;
    this.#call = forgeCaller(this.name, options.token, options.repo);
    const config = {
      // gitbeaker adds /api/v4 itself: accept the API base too, as --forge-url says.
      host: options.baseUrl.replace(/\/+$/, '').replace(/\/api\/v4$/, ''),
      oauthToken: options.token,
      requesterFn: onceRequester(options.timeoutMs ?? FORGE_TIMEOUT_MS),
      queryTimeout: null,
    };
    this.#commits = new Commits<false>(config);
    this.#mergeRequests = new MergeRequests<false>(config);
    const users = new Users<false>(config);
    const notes = new MergeRequestNotes<false>(config);
    this.upsertComment = upsertWith(this.name, this.maxCommentChars, {
      // The user id, not the username: a username can be renamed, and notes name their author by both.
      self: () => this.#call('identify token user', async () => String((await users.showCurrentUser()).id)),
      list: (number) =>
        this.#call(
          'list comments',
          async () => {
            const all = await notes.all(this.#project, number, { perPage: 100 });
            // System notes ("added 1 commit") are GitLab's, never berth's.
            return all.filter((n) => !n.system).map((n) => ({ id: n.id, body: n.body ?? '', author: String(n.author?.id ?? '') }));
          },
          { number },
        ),
      create: (number, body) => this.#call('create comment', async () => void (await notes.create(this.#project, number, body)), { number }),
      update: (number, id, body) => this.#call('update comment', async () => void (await notes.edit(this.#project, number, id, { body })), { number, comment: id }),
      remove: (number, id) => this.#call('delete comment', async () => void (await notes.remove(this.#project, number, id)), { number, comment: id }),
    });
  }

  async setStatus(status: StatusRequest): Promise<void> {
    const state = STATES[status.state];
    const options = { name: status.context, description: status.description, ...(status.targetUrl && { targetUrl: status.targetUrl }) };
    await this.#call(
      'set status',
      async () => {
        try {
          await this.#commits.editStatus(this.#project, status.sha, state, options);
        } catch (err) {
          // GitLab refuses to move a status to the state it is in ("Cannot transition status via :run
          // from :running"): the status already says what berth wants, so that is done, not failed.
          if (err instanceof ForgeHttpError && err.status === 400 && new RegExp(`^Cannot transition status via :\\w+ from :${state}\\b`).test(err.detail)) return;
          throw err;
        }
      },
      { sha: status.sha, context: status.context },
    );
  }

  async pullRequestsFor(branch: string): Promise<PullRequestRef[]> {
    const found = await this.#call('list pull requests', () => this.#mergeRequests.all({ projectId: this.#project, state: 'opened', sourceBranch: branch, perPage: 100 }), { branch });
    // A fork's merge request into this project can have a source branch of the same name.
    return found
      .filter((mr) => mr.source_project_id === undefined || mr.source_project_id === mr.target_project_id)
      .map((mr) => ({ number: mr.iid, headBranch: mr.source_branch, headSha: mr.sha, baseBranch: mr.target_branch, ...(mr.web_url && { url: mr.web_url }) }));
  }
}
