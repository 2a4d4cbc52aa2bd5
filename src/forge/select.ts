import { redactUrl } from '../source/git.js';
import { GiteaForge } from './gitea/client.js';
import { GITHUB_API_URL, GitHubForge } from './github/client.js';
import { GITLAB_URL, GitLabForge } from './gitlab/client.js';
import { GitNotesForge, type NotesStore } from './local/git-notes.js';
import type { Forge, ForgeClientOptions, ForgeName, RemoteForgeName } from './types.js';

export interface SelectForgeOptions {
  /** --repo as given: a URL (https://, ssh://, git@host:path) or a directory. */
  repo: string;
  /** The config repo's Git access, when it is a Git repository; `remote` when berth cloned it. */
  git?: NotesStore & { readonly remote?: boolean };
  forge?: ForgeName;
  /** The forge's API base, when it is not where the repo URL says (tests, GitHub Enterprise, a sub-path). */
  forgeUrl?: string;
  /** owner/name (GitLab: the project path), when the repo URL is not the forge's. */
  forgeRepo?: string;
  forgeToken?: string;
  timeoutMs?: number;
}

export interface ForgeSelection {
  /** Undefined: no commit statuses or pull request comments (the note says why and how to turn them on). */
  forge?: Forge;
  /** One line for the log and the user: which forge, which repository, or why none. Never the token. */
  note: string;
}

const TOKEN_VARS = { github: 'GITHUB_TOKEN', gitea: 'GITEA_TOKEN', gitlab: 'GITLAB_TOKEN' } as const satisfies Record<RemoteForgeName, string>;
const TITLES = { github: 'GitHub', gitea: 'Gitea', gitlab: 'GitLab' } as const satisfies Record<RemoteForgeName, string>;

/** Host and path of a Git URL (https://, ssh://, scp-like git@host:path); undefined for a directory. */
export function parseRepoUrl(repo: string): { host: string; path: string } | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo)) {
    try {
      const u = new URL(repo);
      return { host: u.hostname.toLowerCase(), path: decodeURIComponent(u.pathname) };
    } catch {
      return undefined;
    }
  }
  const scp = /^(?:[^@/:]+@)?([^/:]+):(?!\/\/)(.+)$/.exec(repo);
  // A Windows drive (C:\x) is a directory, not a host called C.
  return scp && scp[1]!.length > 1 ? { host: scp[1]!.toLowerCase(), path: `/${scp[2]!}` } : undefined;
}

/** github.com → github; gitlab.com → gitlab; codeberg.org or a host named like Gitea → gitea. */
function forgeOfHost(host: string): RemoteForgeName | undefined {
  if (host === 'github.com' || host === 'www.github.com') return 'github';
  if (host === 'gitlab.com' || host === 'www.gitlab.com') return 'gitlab';
  if (host === 'codeberg.org' || host.includes('gitea')) return 'gitea';
  return undefined;
}

/** The repository path of a URL path: `owner/name` (GitHub, Gitea: the last two segments), the full path on GitLab; no `.git`. */
function repoOfPath(kind: RemoteForgeName, urlPath: string): string | undefined {
  const segments = urlPath.replace(/\.git\/?$/, '').split('/').filter(Boolean);
  if (segments.length < 2) return undefined;
  return kind === 'gitlab' ? segments.join('/') : segments.slice(-2).join('/');
}

/**
 * A repository path as a forge names it, or undefined when it is none: `owner/name` (with `kind`
 * github or gitea, exactly that), GitLab's `group/subgroup/project`; slashes around it and a
 * trailing `.git` dropped; no empty, `.` or `..` segment. Checks --forge-repo and picks the repo.
 */
export function normalizeRepoPath(value: string, kind?: RemoteForgeName): string | undefined {
  const segments = value.replace(/^\/+|\/+$/g, '').replace(/\.git$/, '').split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return undefined;
  const fits = kind === 'github' || kind === 'gitea' ? segments.length === 2 : segments.length >= 2;
  return fits ? segments.join('/') : undefined;
}

/** The API base of a forge on `host` (no --forge-url): GitHub.com or Enterprise, Gitea's /api/v1, GitLab's host. */
function defaultApiUrl(kind: RemoteForgeName, host: string | undefined): string | undefined {
  if (kind === 'github') return !host || host === 'github.com' || host === 'www.github.com' ? GITHUB_API_URL : `https://${host}/api/v3`;
  if (kind === 'gitlab') return host ? `https://${host}` : GITLAB_URL;
  return host ? `https://${host}/api/v1` : undefined;
}

const CLIENTS: Record<RemoteForgeName, (options: ForgeClientOptions) => Forge> = {
  github: (o) => new GitHubForge(o),
  gitea: (o) => new GiteaForge(o),
  gitlab: (o) => new GitLabForge(o),
};

/**
 * Picks where commit statuses and pull request comments go: the `forge` option, else the repo URL's
 * host, else git notes for a local Git repository, else nowhere. A remote forge needs a token
 * (--forge-token, else GITHUB_TOKEN / GITEA_TOKEN / GITLAB_TOKEN); without one statuses are off, and
 * the note says how to turn them on.
 */
export function selectForge(options: SelectForgeOptions, env: NodeJS.ProcessEnv = process.env): ForgeSelection {
  const url = parseRepoUrl(options.repo);
  const localGit = options.git && !options.git.remote ? options.git : undefined;
  const kind: ForgeName | undefined = options.forge ?? (url ? forgeOfHost(url.host) : undefined) ?? (localGit ? 'local' : undefined);

  if (!kind) {
    const where = url ? `${url.host} is not a forge berth recognises` : `${options.repo} is not a Git repository`;
    return { note: `commit statuses off: ${where}; pass --forge github|gitea|gitlab (with --forge-url and --forge-repo) to report to a forge` };
  }
  if (kind === 'local') {
    if (!localGit) return { note: 'commit statuses off: --forge local writes git notes into a local Git repository, and --repo is not one' };
    return { forge: new GitNotesForge(localGit), note: 'commit statuses as git notes in refs/notes/berth of the config repo (git notes --ref berth show <sha>)' };
  }

  const title = TITLES[kind];
  const given = options.forgeRepo ?? (url ? repoOfPath(kind, url.path) : undefined);
  const repo = given === undefined ? undefined : normalizeRepoPath(given, kind);
  if (!repo) {
    const shape = kind === 'gitlab' ? 'group/project (subgroups allowed)' : 'owner/name';
    return { note: `commit statuses off: berth cannot tell which ${title} repository this is${given ? ` (${JSON.stringify(given)} is not ${shape})` : ''}; pass --forge-repo ${shape}` };
  }
  const baseUrl = options.forgeUrl ?? defaultApiUrl(kind, url?.host);
  if (!baseUrl) return { note: `commit statuses off: berth does not know where the ${title} API is; pass --forge-url https://HOST/api/v1` };
  if (!/^https?:\/\/[^/]/i.test(baseUrl)) return { note: `commit statuses off: --forge-url must be an http(s) URL` };

  const tokenVar = TOKEN_VARS[kind];
  const token = options.forgeToken || env[tokenVar];
  if (!token) return { note: `commit statuses off: no ${title} token; set --forge-token (or BERTH_FORGE_TOKEN) or ${tokenVar} to report to ${repo} on ${title}` };
  const forge = CLIENTS[kind]({ baseUrl, repo, token, ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }) });
  const from = options.forgeToken ? '--forge-token' : tokenVar;
  // URL writes a bare origin with a trailing slash; the note shows the base as it was given.
  return { forge, note: `commit statuses and pull request comments on ${title}: ${repo} via ${redactUrl(baseUrl).replace(/\/$/, '')} (token from ${from})` };
}
