/**
 * A real redis-server for tests, on a free 127.0.0.1 port with its own temp dir and no persistence:
 *
 *   let redis: TestRedis | undefined;
 *   before(async () => (redis = await startRedis()));
 *   after(() => redis?.stop());
 *   it('…', async (t) => {
 *     if (!requireRedis(t, redis)) return;   // skipped locally without redis-server, fails in CI
 *     … redis.url …
 *   });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { findBinary, requireBinary } from './services.js';
import { freePort } from './nginx.js';

export interface TestRedis {
  port: number;
  /** redis://127.0.0.1:<port> (no password in it, even when one is required). */
  url: string;
  password?: string;
  dir: string;
  /** Ends the server (SIGTERM) but keeps its port and dir: clients see Redis go away. */
  kill(): Promise<void>;
  /** Starts it again on the same port, after kill(). */
  restart(): Promise<void>;
  /** Ends the server and removes its dir. */
  stop(): Promise<void>;
}

const READY = /Ready to accept connections/;

function redisBinary(): string | undefined {
  return findBinary(['/usr/bin/redis-server', '/usr/local/bin/redis-server', 'redis-server']);
}

/**
 * Whether the test may go on with `redis`: without one (redis-server not installed) the test is
 * skipped locally and fails in CI, where the Redis plugins must be tested against the real server.
 */
export function requireRedis(t: TestContext, redis: TestRedis | undefined): redis is TestRedis {
  return requireBinary(t, redis && 'redis-server', { name: 'redis-server', apt: 'redis-server', purpose: 'the Redis plugin tests' });
}

async function launch(bin: string, port: number, dir: string, password: string | undefined): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(password ? ['--requirepass', password] : [])];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (!READY.test(output)) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve();
    };
    const onExit = (code: number | null): void => fail(new Error(`redis-server exited (${code}):\n${output}`));
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
  // Keep draining its output so the pipe never fills.
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

/** Starts a private redis-server; undefined when redis-server is not installed (see requireRedis). */
export async function startRedis(options: { password?: string } = {}): Promise<TestRedis | undefined> {
  const bin = redisBinary();
  if (!bin) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-redis-'));
  let lastError: Error | undefined;
  // freePort closes the port before redis binds it: another process may take it in between.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      let child = await launch(bin, port, dir, options.password);
      const kill = async (): Promise<void> => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      };
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        ...(options.password && { password: options.password }),
        dir,
        kill,
        restart: async () => {
          await kill();
          child = await launch(bin, port, dir, options.password);
        },
        stop: async () => {
          await kill();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      lastError = err as Error;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError ?? new Error('redis-server did not start');
}
