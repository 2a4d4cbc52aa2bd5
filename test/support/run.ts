import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { ROOT } from './repo.js';

export interface RunningBerth {
  child: ChildProcess;
  api: string;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * node's arguments that run berth's CLI: the source under tests (with berth's own tsx, so any `cwd`
 * works), the compiled JavaScript under the benchmarks.
 */
export function berthEntry(): string[] {
  const ts = path.join(ROOT, 'src/cli/main.ts');
  return existsSync(ts) ? ['--import', import.meta.resolve('tsx'), ts] : [path.join(ROOT, 'src/cli/main.js')];
}

/** Starts the real `berth run` in a child process (in `cwd`, default berth's root) and waits for /healthz. */
export async function startBerthRun(args: string[], env: NodeJS.ProcessEnv, apiPort: number, options: { cwd?: string } = {}): Promise<RunningBerth> {
  const child = spawn(process.execPath, [...berthEntry(), 'run', ...args, '--listen', `127.0.0.1:${apiPort}`], { env: { ...process.env, ...env, NO_COLOR: '1' }, cwd: options.cwd ?? ROOT });
  let logs = '';
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const api = `http://127.0.0.1:${apiPort}`;
  await waitFor(async () => (await fetch(`${api}/healthz`).then((r) => r.ok, () => false)) || child.exitCode !== null, 20_000, 'berth run to serve /healthz');
  if (child.exitCode !== null) throw new Error(`berth run exited ${child.exitCode}:\n${logs}`);
  return {
    child,
    api,
    logs: () => logs,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls `check` every 50 ms until it is truthy; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T> | T, timeoutMs: number, what: string): Promise<Exclude<T, undefined | null | false | '' | 0>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as Exclude<T, undefined | null | false | '' | 0>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends a GitHub-style push webhook, signed with `secret` (or a wrong signature). */
export async function pushWebhook(api: string, branch: string, sha: string, secret: string, options: { forge?: 'github' | 'gitea' | 'gitlab'; badSignature?: boolean } = {}): Promise<Response> {
  const forge = options.forge ?? 'github';
  const body = JSON.stringify({ ref: `refs/heads/${branch}`, after: sha, checkout_sha: sha });
  const sig = createHmac('sha256', options.badSignature ? 'wrong' : secret).update(body).digest('hex');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (forge === 'github') Object.assign(headers, { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${sig}` });
  if (forge === 'gitea') Object.assign(headers, { 'x-gitea-event': 'push', 'x-gitea-signature': sig });
  if (forge === 'gitlab') Object.assign(headers, { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': options.badSignature ? 'wrong' : secret });
  return fetch(`${api}/api/v1/webhooks/${forge}`, { method: 'POST', headers, body });
}

/** Runs the real CLI to completion (source under tests, compiled JavaScript under the benchmarks). */
export function runBerth(args: string[], env: NodeJS.ProcessEnv, options: { cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...berthEntry(), ...args], { env: { ...process.env, ...env, NO_COLOR: '1' }, cwd: options.cwd ?? ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
