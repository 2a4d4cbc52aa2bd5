import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export interface GitServer {
  root: string;
  port: number;
  url(repo: string): string;
  /** Stops accepting connections (the Git server is "unreachable") until start(). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** Real `git http-backend` (smart HTTP, push enabled) behind node:http on 127.0.0.1. Optional token auth. */
export async function startGitServer(options: { token?: string } = {}): Promise<GitServer> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-git-'));
  const execPath = execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim();
  const handler: http.RequestListener = (req, res) => {
    if (options.token) {
      const auth = req.headers.authorization ?? '';
      const [, b64] = /^Basic (.+)$/.exec(auth) ?? [];
      const password = b64 ? Buffer.from(b64, 'base64').toString().split(':').slice(1).join(':') : '';
      if (password !== options.token) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('unauthorized');
        return;
      }
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const child = spawn(path.join(execPath, 'git-http-backend'), [], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-length'] && { CONTENT_LENGTH: req.headers['content-length'] }),
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_USER: 'berth-test',
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else res.setHeader(name, value);
      }
      res.statusCode = status;
      res.write(head.subarray(end + 4));
    });
    child.stdout.on('end', () => res.end());
    child.on('error', () => res.writeHead(500).end());
  };
  let server = http.createServer(handler);
  const listen = (port: number) => new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  await listen(0);
  const port = (server.address() as { port: number }).port;
  const close = () => new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });
  return {
    root,
    port,
    url: (repo) => `http://127.0.0.1:${port}/${repo}`,
    pause: close,
    resume: async () => {
      server = http.createServer(handler);
      await listen(port);
    },
    stop: async () => {
      await close().catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const run = promisify(execFile);

/**
 * Runs git with a fixed identity; returns stdout as it is. Asynchronous on purpose: the Git server
 * runs in this same process, and a synchronous call would block it from answering.
 */
export async function gitRaw(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-c', 'user.name=berth-test', '-c', 'user.email=test@berth.invalid', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' });
  return stdout;
}

/** gitRaw with its output trimmed: a sha, a ref, a list of lines. */
export async function gitCmd(cwd: string, ...args: string[]): Promise<string> {
  return (await gitRaw(cwd, ...args)).trim();
}

/** Commits everything in the work tree `dir` (empty commits allowed); returns the new sha. */
export async function commitAll(dir: string, message: string): Promise<string> {
  await gitCmd(dir, 'add', '-A');
  await gitCmd(dir, 'commit', '-q', '--allow-empty', '-m', message);
  return gitCmd(dir, 'rev-parse', 'HEAD');
}

/** The bare repository `<name>.git` on the server, push enabled: a bare clone of `from`, else empty on `main`. Returns its path. */
export async function serveBare(server: GitServer, name: string, from?: string): Promise<string> {
  const bare = path.join(server.root, `${name}.git`);
  if (from) {
    await gitCmd(server.root, 'clone', '-q', '--bare', from, bare);
  } else {
    await gitCmd(server.root, 'init', '-q', '--bare', bare);
    await gitCmd(bare, 'symbolic-ref', 'HEAD', 'refs/heads/main');
  }
  await gitCmd(bare, 'config', 'http.receivepack', 'true');
  return bare;
}

/** A bare repo `name.git` on the server holding `files` (path → content) on `main`, plus a work clone. */
export async function seedRepo(server: GitServer, name: string, fromDir: string, remoteUrl?: string): Promise<{ work: string; commit(message: string): Promise<string>; push(message: string, branch?: string): Promise<string> }> {
  await serveBare(server, name);
  const work = mkdtempSync(path.join(os.tmpdir(), 'berth-work-'));
  execFileSync('cp', ['-r', `${fromDir}/.`, work]);
  await gitCmd(work, 'init', '-q', '-b', 'main');
  await gitCmd(work, 'remote', 'add', 'origin', remoteUrl ?? server.url(`${name}.git`));
  const commit = (message: string): Promise<string> => commitAll(work, message);
  const push = async (message: string, branch = 'main'): Promise<string> => {
    const sha = await commit(message);
    await gitCmd(work, 'push', '-q', 'origin', `HEAD:${branch}`);
    return sha;
  };
  return { work, commit, push };
}
