import { execFile } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './repo.js';
import { findBinary, requireBinary } from './services.js';

const exec = promisify(execFile);

/** The base made by scripts/base-image.sh: Debian bookworm (debootstrap) + Node 20 from the npm registry. */
export const BASE_IMAGE = process.env.BERTH_BASE_IMAGE ?? 'berth-base/node:20-bookworm';
export const CONTROLLER_IMAGE = 'berth:test';
export const NGINX_IMAGE = 'berth-test/nginx:latest';

/** Runs a command with the test's DOCKER_HOST; on failure, the error carries its output's tail. */
export async function run(cmd: string, args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  try {
    const r = await exec(cmd, args, { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
    return r.stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const tail = `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message.split('\n')[0]}\n${tail}`);
  }
}

/** True when `bin` is on PATH; otherwise skips the test locally and fails it in CI (CI must install it). */
export function requireTool(t: TestContext, bin: string, pkg: string): boolean {
  return requireBinary(t, findBinary([bin]) && bin, { name: bin, apt: pkg, purpose: 'the container image test' });
}

/**
 * Builds the controller image from the repository's Dockerfile on the locally made base (made first
 * when missing: about a minute), and nginx from the same base. Docker's layer cache makes a rebuild of
 * an unchanged tree take seconds.
 */
export async function buildImages(): Promise<void> {
  await run(path.join(ROOT, 'scripts/base-image.sh'), [], { timeoutMs: 600_000, env: { BERTH_BASE_IMAGE: BASE_IMAGE } });
  await run('docker', ['build', '-q', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '-t', CONTROLLER_IMAGE, '.'], { timeoutMs: 600_000 });
  const fixtures = path.join(ROOT, 'test/fixtures/images');
  await run('docker', ['build', '-q', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '-f', path.join(fixtures, 'nginx.Dockerfile'), '-t', NGINX_IMAGE, fixtures], { timeoutMs: 600_000 });
}
