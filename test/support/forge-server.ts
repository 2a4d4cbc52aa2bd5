/**
 * A fake GitHub, Gitea or GitLab API on 127.0.0.1, for tests of what berth sends to a forge.
 *
 *   const forge = await startForgeServer('github');
 *   forge.addPullRequest({ number: 7, headBranch: 'feature', headSha: sha, baseBranch: 'main' });
 *   // berth … --forge github --forge-url ${forge.url} --forge-repo ${forge.repo} --forge-token ${forge.token}
 *   forge.statuses(sha)   // [{ state: 'pending', context: 'berth/production', … }, …] in the order set
 *   forge.comments(7)     // [{ id, body, author }] as they stand
 *   forge.addComment(7, '<!-- berth-plan:production part 1 -->', 'mallory') // someone else comments
 *   forge.failNext(2, 502) // the next two requests fail (retries)
 *   await forge.stop();
 *
 * It answers the endpoints berth uses as each forge documents them: paths, status codes, JSON
 * shapes, pagination (Link headers; GitLab's x-next-page and friends), GitHub's 65,536-character
 * comment limit, GitLab's 400 "Cannot transition status" when a pending/running status is set to
 * the state it has. A request without the right token gets the forge's 401. The token belongs to
 * one user (`GET /user`), who writes every comment made through the API.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RemoteForgeName } from '../../src/forge/types.js';

export interface RecordedRequest {
  method: string;
  /** As sent, percent-encoding kept (GitLab's project id is `group%2Fproject`), without the query. */
  path: string;
  query: Record<string, string>;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** Parsed JSON when the request was JSON, else the raw text ('' for none). */
  body: unknown;
}

export interface SeededPullRequest {
  number: number;
  headBranch: string;
  headSha: string;
  baseBranch: string;
  /** Opened from a fork (its head is in another repository). */
  fork?: boolean;
}

export interface StoredComment {
  id: number;
  body: string;
  /** Who wrote it: a login (GitLab: the username). */
  author: string;
}

/** A status as the forge stored it, in its own words (GitLab: `running`, `failed`; `context` is GitLab's `name`). */
export interface StoredStatus {
  state: string;
  context: string;
  description?: string;
  targetUrl?: string;
}

export interface ForgeServer {
  readonly kind: RemoteForgeName;
  /** The API base, for --forge-url: …/api/v3 (GitHub Enterprise's layout), …/api/v1 (Gitea), …/api/v4 (GitLab). */
  readonly url: string;
  /** The one repository served, for --forge-repo: `acme/config`; GitLab `acme/platform/config` (a subgroup). */
  readonly repo: string;
  /** The token the server accepts. */
  readonly token: string;
  /** The login of the token's user (GitLab: its username): the author of the comments berth writes. */
  readonly login: string;
  /** Every request, in order of arrival (failed ones included). */
  readonly requests: RecordedRequest[];
  addPullRequest(pr: SeededPullRequest): void;
  /** The user comments of pull request `pr` (GitLab's system notes left out), oldest first. */
  comments(pr: number): StoredComment[];
  /** A comment on pull request `pr` by `author`, another user than the token's (as a reviewer posts one). */
  addComment(pr: number, body: string, author: string): StoredComment;
  /** Every status set on `sha`, in the order set. */
  statuses(sha: string): StoredStatus[];
  /** Answers the next `n` requests with `status` (and `body`, else the forge's error JSON) instead of serving them. */
  failNext(n: number, status: number, body?: unknown): void;
  stop(): Promise<void>;
}

const PREFIX: Record<RemoteForgeName, string> = { github: '/api/v3', gitea: '/api/v1', gitlab: '/api/v4' };
/** Documented page sizes: [default, maximum]. */
const PAGES: Record<RemoteForgeName, [number, number]> = { github: [30, 100], gitea: [30, 50], gitlab: [20, 100] };
const MAX_COMMENT: Record<RemoteForgeName, number> = { github: 65_536, gitea: Number.POSITIVE_INFINITY, gitlab: 1_000_000 };

interface ForgeUser {
  id: number;
  login: string;
}

/** A comment as the server keeps it; `system` marks GitLab's own notes. */
type Kept = Omit<StoredComment, 'author'> & { author: ForgeUser; system?: boolean; created: string; updated: string };

class HttpAnswer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

const now = (): string => new Date().toISOString();

/**
 * `appToken`: the token is a GitHub App installation token (as Actions' GITHUB_TOKEN): `GET /user`
 * answers 403, and only GraphQL's `viewer` tells who it is, the app's bot `berth-app[bot]`.
 */
export async function startForgeServer(kind: RemoteForgeName, options: { repo?: string; token?: string; maxPerPage?: number; appToken?: boolean } = {}): Promise<ForgeServer> {
  const repo = options.repo ?? (kind === 'gitlab' ? 'acme/platform/config' : 'acme/config');
  const token = options.token ?? `${kind}-test-token-0123456789`;
  const projectId = 4242;
  const [defaultPage, maxPage] = [PAGES[kind][0], options.maxPerPage ?? PAGES[kind][1]];
  const requests: RecordedRequest[] = [];
  const pulls = new Map<number, SeededPullRequest>();
  const comments = new Map<number, Kept[]>();
  const statuses = new Map<string, StoredStatus[]>();
  const failures: { status: number; body: unknown }[] = [];
  let nextId = kind === 'github' ? 1_900_000_001 : 501;
  let base = '';

  const error = (status: number, message: string): HttpAnswer => {
    if (kind === 'github') return new HttpAnswer(status, { message, documentation_url: 'https://docs.github.com/rest', status: String(status) });
    if (kind === 'gitea') return new HttpAnswer(status, { message, url: 'https://gitea.example.com/api/swagger' });
    return new HttpAnswer(status, { message });
  };
  const notFound = (): HttpAnswer => error(404, kind === 'github' ? 'Not Found' : kind === 'gitea' ? "The target couldn't be found." : '404 Not found');

  const authorized = (h: Record<string, string>): boolean => {
    const auth = h.authorization ?? '';
    if (kind === 'gitlab') return h['private-token'] === token || auth === `Bearer ${token}`;
    return auth === `token ${token}` || auth === `Bearer ${token}`;
  };

  /** One page of `items` and the headers that say where the others are. */
  const page = <T>(items: T[], req: RecordedRequest): HttpAnswer => {
    const sizeParam = kind === 'gitea' ? 'limit' : 'per_page';
    const size = Math.min(maxPage, Math.max(1, Number(req.query[sizeParam] ?? defaultPage) || defaultPage));
    const current = Math.max(1, Number(req.query.page ?? 1) || 1);
    const pages = Math.max(1, Math.ceil(items.length / size));
    const link = (n: number): string => {
      const q = new URLSearchParams({ ...req.query, page: String(n), [sizeParam]: String(size) });
      return `${base}${req.path}?${q}`;
    };
    const links = [current < pages && `<${link(current + 1)}>; rel="next"`, current < pages && `<${link(pages)}>; rel="last"`, current > 1 && `<${link(1)}>; rel="first"`, current > 1 && `<${link(current - 1)}>; rel="prev"`].filter(Boolean);
    const headers: Record<string, string> = links.length ? { link: links.join(', ') } : {};
    if (kind === 'gitea') headers['x-total-count'] = String(items.length);
    if (kind === 'gitlab') Object.assign(headers, { 'x-page': String(current), 'x-per-page': String(size), 'x-total': String(items.length), 'x-total-pages': String(pages), 'x-next-page': current < pages ? String(current + 1) : '', 'x-prev-page': current > 1 ? String(current - 1) : '' });
    return new HttpAnswer(200, items.slice((current - 1) * size, current * size), headers);
  };

  const self: ForgeUser = options.appToken ? { id: 41_898_282, login: 'berth-app[bot]' } : { id: 7, login: 'berth-bot' };
  const others = new Map<string, ForgeUser>();
  const userJson = (u: ForgeUser): Record<string, unknown> => {
    if (kind === 'gitlab') return { id: u.id, username: u.login, name: u.login, state: 'active', web_url: `https://gitlab.example.com/${u.login}` };
    if (kind === 'gitea') return { id: u.id, login: u.login, full_name: '', email: `${u.login}@noreply.example.com`, is_admin: false };
    return { id: u.id, login: u.login, node_id: `U_${u.id}`, type: u.login.endsWith('[bot]') ? 'Bot' : 'User', site_admin: false };
  };
  const user = userJson(self);
  const headRepo = (pr: SeededPullRequest): string => (pr.fork ? `someone-else/${repo.split('/').pop()}` : repo);
  const pullJson = (pr: SeededPullRequest): unknown => {
    if (kind === 'gitlab') {
      return { id: 90_000 + pr.number, iid: pr.number, project_id: projectId, title: `Change ${pr.headBranch}`, state: 'opened', source_branch: pr.headBranch, target_branch: pr.baseBranch, source_project_id: pr.fork ? projectId + 1 : projectId, target_project_id: projectId, sha: pr.headSha, draft: false, merge_status: 'can_be_merged', web_url: `https://gitlab.example.com/${repo}/-/merge_requests/${pr.number}` };
    }
    const side = (ref: string, sha: string, full: string) => ({ label: kind === 'github' ? `${full.split('/')[0]}:${ref}` : ref, ref, sha, repo: { full_name: full, name: full.split('/')[1] } });
    return { id: 80_000 + pr.number, number: pr.number, state: 'open', title: `Change ${pr.headBranch}`, html_url: `https://${kind}.example.com/${repo}/pull/${pr.number}`, user, head: side(pr.headBranch, pr.headSha, headRepo(pr)), base: side(pr.baseBranch, '0'.repeat(40), repo), draft: false, ...(kind === 'gitea' ? { merged: false, mergeable: true } : { merged_at: null }) };
  };
  const commentJson = (c: Kept, pr: number): unknown => {
    const author = userJson(c.author);
    if (kind === 'gitlab') return { id: c.id, type: null, body: c.body, attachment: null, author, created_at: c.created, updated_at: c.updated, system: c.system === true, noteable_id: 90_000 + pr, noteable_type: 'MergeRequest', noteable_iid: pr, resolvable: false, confidential: false, internal: false };
    return { id: c.id, html_url: `https://${kind}.example.com/${repo}/pull/${pr}#issuecomment-${c.id}`, issue_url: `${base}/repos/${repo}/issues/${pr}`, user: author, body: c.body, created_at: c.created, updated_at: c.updated, ...(kind === 'github' ? { node_id: `IC_${c.id}`, author_association: 'NONE' } : { assets: [] }) };
  };
  const findComment = (id: number): { pr: number; list: Kept[]; index: number } | undefined => {
    for (const [pr, list] of comments) {
      const index = list.findIndex((c) => c.id === id && !c.system);
      if (index >= 0) return { pr, list, index };
    }
    return undefined;
  };
  const commentBody = (req: RecordedRequest): string | HttpAnswer => {
    const body = (req.body as { body?: unknown } | undefined)?.body;
    if (typeof body !== 'string' || body === '') return kind === 'gitlab' ? new HttpAnswer(400, { error: 'body is missing' }) : error(422, 'Validation Failed');
    if (body.length > MAX_COMMENT[kind]) return kind === 'github' ? new HttpAnswer(422, { message: 'Validation Failed', errors: [{ resource: 'IssueComment', code: 'unprocessable', field: 'data', message: `Body is too long (maximum is ${MAX_COMMENT.github} characters)` }], documentation_url: 'https://docs.github.com/rest', status: '422' }) : new HttpAnswer(400, { message: { note: ['is too long (maximum is 1000000 characters)'] } });
    return body;
  };

  /** GitLab's commit status state machine, as far as a status berth sets can go. */
  const EVENT: Record<string, string> = { pending: 'enqueue', running: 'run', success: 'success', failed: 'drop', canceled: 'cancel' };
  const setGitLabStatus = (sha: string, next: StoredStatus): HttpAnswer => {
    const list = statuses.get(sha) ?? [];
    const current = [...list].reverse().find((s) => s.context === next.context);
    if (current && (current.state === 'pending' || current.state === 'running')) {
      const allowed = current.state === 'pending' ? ['running', 'success', 'failed', 'canceled'] : ['success', 'failed', 'canceled'];
      if (!allowed.includes(next.state)) return new HttpAnswer(400, { message: `Cannot transition status via :${EVENT[next.state]} from :${current.state}` });
    }
    statuses.set(sha, [...list, next]);
    return new HttpAnswer(201, { id: nextId++, sha, ref: null, status: next.state, name: next.context, target_url: next.targetUrl ?? null, description: next.description ?? null, created_at: now(), started_at: next.state === 'running' ? now() : null, finished_at: null, allow_failure: false, coverage: null, pipeline_id: 1, author: user });
  };

  const route = (req: RecordedRequest): HttpAnswer => {
    const unauthorized = (): HttpAnswer => error(401, kind === 'github' ? 'Bad credentials' : kind === 'gitea' ? 'user does not exist [uid: 0, name: ]' : '401 Unauthorized');
    // GitHub Enterprise serves GraphQL beside /api/v3; berth asks it only who an app token is.
    if (kind === 'github' && req.method === 'POST' && req.path === '/api/graphql') {
      if (!authorized(req.headers)) return unauthorized();
      if (!/\bviewer\s*\{\s*login\s*\}/.test(String((req.body as { query?: unknown } | undefined)?.query))) return new HttpAnswer(200, { errors: [{ message: 'this fake answers only viewer { login }' }] });
      return new HttpAnswer(200, { data: { viewer: { login: self.login } } });
    }
    if (!req.path.startsWith(`${PREFIX[kind]}/`)) return notFound();
    if (!authorized(req.headers)) return unauthorized();
    const segs = req.path.slice(PREFIX[kind].length + 1).split('/').map((s) => decodeURIComponent(s));
    const m = req.method;

    if (m === 'GET' && segs.length === 1 && segs[0] === 'user') {
      if (options.appToken) return new HttpAnswer(403, { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest/users/users#get-the-authenticated-user', status: '403' });
      return new HttpAnswer(200, user);
    }

    if (kind === 'gitlab') {
      if (segs[0] !== 'projects' || (segs[1] !== repo && segs[1] !== String(projectId))) return notFound();
      const rest = segs.slice(2);
      if (m === 'POST' && rest[0] === 'statuses' && rest.length === 2) {
        const b = (req.body ?? {}) as Record<string, unknown>;
        const state = String(b.state ?? '');
        if (!EVENT[state]) return new HttpAnswer(400, { error: 'state does not have a valid value' });
        return setGitLabStatus(rest[1]!, { state, context: String(b.name ?? b.context ?? 'default'), ...(typeof b.description === 'string' && { description: b.description }), ...(typeof b.target_url === 'string' && { targetUrl: b.target_url }) });
      }
      if (m === 'GET' && rest[0] === 'merge_requests' && rest.length === 1) {
        const wanted = [...pulls.values()].filter((pr) => (req.query.state ?? 'all') !== 'closed' && (req.query.source_branch === undefined || pr.headBranch === req.query.source_branch));
        return page(wanted.map(pullJson), req);
      }
      if (rest[0] === 'merge_requests' && rest[2] === 'notes') {
        const iid = Number(rest[1]);
        if (!pulls.has(iid)) return notFound();
        if (m === 'GET' && rest.length === 3) return page((comments.get(iid) ?? []).map((c) => commentJson(c, iid)), req);
        if (m === 'POST' && rest.length === 3) return createComment(iid, req);
        if ((m === 'PUT' || m === 'DELETE') && rest.length === 4) return changeComment(Number(rest[3]), req, iid);
      }
      return notFound();
    }

    if (segs[0] !== 'repos' || `${segs[1]}/${segs[2]}` !== repo) return notFound();
    const rest = segs.slice(3);
    if (m === 'POST' && rest[0] === 'statuses' && rest.length === 2) {
      const b = (req.body ?? {}) as Record<string, unknown>;
      const state = String(b.state ?? '');
      const states = kind === 'gitea' ? ['pending', 'success', 'error', 'failure', 'warning'] : ['pending', 'success', 'error', 'failure'];
      if (!states.includes(state)) return kind === 'github' ? new HttpAnswer(422, { message: 'Validation Failed', errors: [{ resource: 'Status', code: 'custom', field: 'state', message: 'state is not included in the list' }], documentation_url: 'https://docs.github.com/rest/commits/statuses#create-a-commit-status', status: '422' }) : error(422, `invalid state "${state}"`);
      const sha = rest[1]!;
      if (!/^[0-9a-f]{7,64}$/.test(sha)) return error(422, `No commit found for SHA: ${sha}`);
      const stored: StoredStatus = { state, context: String(b.context ?? 'default'), ...(typeof b.description === 'string' && { description: b.description }), ...(typeof b.target_url === 'string' && { targetUrl: b.target_url }) };
      statuses.set(sha, [...(statuses.get(sha) ?? []), stored]);
      const json = { id: nextId++, url: `${base}/repos/${repo}/statuses/${sha}`, context: stored.context, description: stored.description ?? null, target_url: stored.targetUrl ?? null, created_at: now(), updated_at: now(), creator: user };
      return new HttpAnswer(201, kind === 'github' ? { ...json, state } : { ...json, status: state });
    }
    if (m === 'GET' && rest[0] === 'pulls' && rest.length === 1) {
      let wanted = [...pulls.values()];
      if (kind === 'github' && req.query.head) {
        const [headOwner, ...branch] = req.query.head.split(':');
        wanted = wanted.filter((pr) => headRepo(pr).split('/')[0] === headOwner && pr.headBranch === branch.join(':'));
      }
      if ((req.query.state ?? 'open') === 'closed') wanted = [];
      return page(wanted.map(pullJson), req);
    }
    if (rest[0] === 'issues' && rest[1] === 'comments' && rest.length === 3 && (m === 'PATCH' || m === 'DELETE')) return changeComment(Number(rest[2]), req);
    if (rest[0] === 'issues' && rest[2] === 'comments' && rest.length === 3) {
      const n = Number(rest[1]);
      if (!pulls.has(n)) return notFound();
      // Gitea lists an issue's comments in one answer; GitHub pages them.
      if (m === 'GET') return kind === 'github' ? page((comments.get(n) ?? []).map((c) => commentJson(c, n)), req) : new HttpAnswer(200, (comments.get(n) ?? []).map((c) => commentJson(c, n)));
      if (m === 'POST') return createComment(n, req);
    }
    return notFound();
  };

  const createComment = (pr: number, req: RecordedRequest): HttpAnswer => {
    const body = commentBody(req);
    if (body instanceof HttpAnswer) return body;
    const c: Kept = { id: nextId++, body, author: self, created: now(), updated: now() };
    comments.set(pr, [...(comments.get(pr) ?? []), c]);
    return new HttpAnswer(201, commentJson(c, pr));
  };
  const changeComment = (id: number, req: RecordedRequest, pr?: number): HttpAnswer => {
    const found = findComment(id);
    if (!found || (pr !== undefined && found.pr !== pr)) return notFound();
    // Only its author may edit a comment (a maintainer may still delete it).
    if (req.method !== 'DELETE' && found.list[found.index]!.author !== self) return error(403, kind === 'gitlab' ? '403 Forbidden' : 'Must have admin rights to Repository.');
    if (req.method === 'DELETE') {
      found.list.splice(found.index, 1);
      return new HttpAnswer(204, undefined);
    }
    const body = commentBody(req);
    if (body instanceof HttpAnswer) return body;
    const c = found.list[found.index]!;
    c.body = body;
    c.updated = now();
    return new HttpAnswer(200, commentJson(c, found.pr));
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake.invalid');
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      if (text && /json/.test(req.headers['content-type'] ?? '')) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const recorded: RecordedRequest = { method: req.method ?? 'GET', path: (req.url ?? '/').replace(/[?#].*$/, ''), query: Object.fromEntries(url.searchParams), headers, body };
      requests.push(recorded);
      const failure = failures.shift();
      let answer: HttpAnswer;
      if (failure) {
        const fallback = error(failure.status, failure.status >= 500 ? 'Server Error' : 'Request failed');
        answer = new HttpAnswer(failure.status, failure.body ?? fallback.body, failure.status === 429 ? { 'retry-after': '1' } : {});
      } else {
        answer = route(recorded);
      }
      const payload = answer.body === undefined ? '' : JSON.stringify(answer.body);
      res.writeHead(answer.status, { ...(payload && { 'content-type': 'application/json; charset=utf-8' }), ...answer.headers });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    kind,
    url: `${base}${PREFIX[kind]}`,
    repo,
    token,
    login: self.login,
    requests,
    addPullRequest(pr) {
      pulls.set(pr.number, { ...pr });
      // GitLab writes its own notes on a merge request; berth must leave them alone.
      if (kind === 'gitlab' && !comments.has(pr.number)) comments.set(pr.number, [{ id: nextId++, body: 'added 1 commit\n\n<ul><li>abc1234 - change</li></ul>', author: self, system: true, created: now(), updated: now() }]);
    },
    comments: (pr) => (comments.get(pr) ?? []).filter((c) => !c.system).map((c) => ({ id: c.id, body: c.body, author: c.author.login })),
    addComment(pr, body, author) {
      if (author === self.login) throw new Error(`addComment is for other users than the token's (${author})`);
      if (!others.has(author)) others.set(author, { id: 9_000 + others.size, login: author });
      const c: Kept = { id: nextId++, body, author: others.get(author)!, created: now(), updated: now() };
      comments.set(pr, [...(comments.get(pr) ?? []), c]);
      return { id: c.id, body: c.body, author };
    },
    statuses: (sha) => (statuses.get(sha) ?? []).map((s) => ({ ...s })),
    failNext(n, status, body) {
      for (let i = 0; i < n; i++) failures.push({ status, body });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
