import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { commitAll, gitCmd, gitRaw, serveBare, type GitServer } from './git-server.js';

/** The message of commit `sha` in the repository at `cwd` exactly as stored (gitCmd trims output). */
export async function rawMessage(cwd: string, sha: string): Promise<string> {
  const commit = await gitRaw(cwd, 'cat-file', 'commit', sha);
  return commit.slice(commit.indexOf('\n\n') + 2);
}

/** Path → content; null deletes the file. */
export type FileChanges = Record<string, string | null>;

function writeFiles(dir: string, files: FileChanges): void {
  for (const [file, content] of Object.entries(files)) {
    const p = path.join(dir, file);
    if (content === null) {
      rmSync(p, { force: true });
      continue;
    }
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
}

/** A non-bare repository made with the git CLI, on branch `main`. */
export interface WorkRepo {
  dir: string;
  git(...args: string[]): Promise<string>;
  /** Writes `files`, commits everything (empty commits allowed); returns the new sha. */
  commit(files: FileChanges, message: string): Promise<string>;
  head(ref?: string): Promise<string>;
  /** `<ref>^{tree}`. */
  tree(ref: string): Promise<string>;
}

export function workRepoAt(dir: string): WorkRepo {
  const run = (...args: string[]) => gitCmd(dir, ...args);
  return {
    dir,
    git: run,
    commit: (files, message) => {
      writeFiles(dir, files);
      return commitAll(dir, message);
    },
    head: (ref = 'HEAD') => run('rev-parse', ref),
    tree: (ref) => run('rev-parse', `${ref}^{tree}`),
  };
}

/** A new non-bare repository in a temp dir (removed by `cleanup`), with one commit of `files` on main. */
export async function newWorkRepo(files: FileChanges, cleanup: string[]): Promise<WorkRepo> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-write-'));
  cleanup.push(dir);
  await gitCmd(dir, 'init', '-q', '-b', 'main');
  const repo = workRepoAt(dir);
  await repo.commit(files, 'initial');
  return repo;
}

/** A bare copy of `work` (every branch), for berth to write into as a local bare repository. */
export async function bareCopy(work: WorkRepo, cleanup: string[]): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bare-'));
  cleanup.push(dir);
  await gitCmd(os.tmpdir(), 'clone', '-q', '--bare', work.dir, dir);
  return dir;
}

/** Publishes every branch of `work` as `<name>.git` on the server (push enabled); returns its URL. */
export async function publish(server: GitServer, name: string, work: WorkRepo): Promise<string> {
  await serveBare(server, name, work.dir);
  return server.url(`${name}.git`);
}

/** A git command on the server's bare repository `<name>.git` (to check what berth pushed). */
export function onServer(server: GitServer, name: string): (...args: string[]) => Promise<string> {
  return (...args) => gitCmd(path.join(server.root, `${name}.git`), ...args);
}

/** Where in a push another client's push lands first. */
type RaceAt = 'discovery' | 'pack';

/**
 * An HTTP proxy in front of `server` that runs `race` before forwarding a push: before the ref
 * discovery (`GET info/refs?service=git-receive-pack`: the client sees the moved branch) or before
 * the pack (`POST git-receive-pack`: the server refuses the stale update). `times` pushes are raced.
 */
export async function racingProxy(server: GitServer, race: () => Promise<void>, options: { at: RaceAt; times: number }): Promise<{ url(repo: string): string; races(): number; close(): Promise<void> }> {
  let races = 0;
  const proxy = http.createServer((req, res) => {
    const isPushStep = options.at === 'discovery' ? req.method === 'GET' && (req.url ?? '').includes('service=git-receive-pack') : req.method === 'POST' && (req.url ?? '').endsWith('/git-receive-pack');
    const forward = () => {
      const upstream = http.request({ host: '127.0.0.1', port: server.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
    };
    if (isPushStep && races < options.times) {
      races++;
      req.pause();
      race().then(forward, (err: unknown) => res.writeHead(500).end(String(err)));
      return;
    }
    forward();
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const port = (proxy.address() as { port: number }).port;
  return {
    url: (repo) => `http://127.0.0.1:${port}/${repo}`,
    races: () => races,
    close: () =>
      new Promise<void>((r) => {
        proxy.close(() => r());
        proxy.closeAllConnections();
      }),
  };
}
