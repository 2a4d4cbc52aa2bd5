import { mkdir, readFile, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { createExclusive } from '../util/exclusive.js';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

export interface LockOptions {
  /** Take over a lock held by a process on another host (berth cannot tell whether it still runs). */
  force?: boolean;
}

/** A breaker lock older than this was left by a process that died while breaking a stale lock. */
const BREAKER_STALE_MS = 10_000;
/** An unreadable lock file older than this is stale (a fresh one may be mid-write by another tool). */
const UNREADABLE_STALE_MS = 5_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

async function readHolder(file: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockInfo;
  } catch {
    return undefined;
  }
}

/**
 * An exclusive lock per environment in the state dir, so two applies never run at once. A lock left
 * by a process of this host that no longer exists (a killed berth) is taken over; one of another
 * host only with `force`. Taking over is itself serialised (a breaker lock), so two processes that
 * both find the same stale lock never both win.
 */
export async function acquireLock(stateDir: string, env: string, options: LockOptions = {}): Promise<{ release(): Promise<void> }> {
  const dir = path.join(stateDir, 'locks');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${env}.lock`);
  const me: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      createExclusive(file, JSON.stringify(me), 0o644);
      return { release: () => unlink(file).catch(() => {}) };
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
    }
    const holder = await readHolder(file);
    if (!holder) {
      // Gone (released between our try and the read), or unreadable: berth never writes it empty, so
      // only a crash of an older berth or of the file system leaves one; once old, it is stale.
      const age = Date.now() - (await stat(file).then((s) => s.mtimeMs, () => 0));
      if (age > UNREADABLE_STALE_MS) await breakStale(file, undefined);
      else await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const stale = holder.host === me.host ? !alive(holder.pid) : options.force === true;
    if (!stale) {
      const hint = holder.host === me.host ? 'wait for it' : `if that host's berth is gone, run again with --force to take the lock over`;
      throw new BerthError('E_LOCKED', `another berth is applying environment "${env}" (pid ${holder.pid} on ${holder.host} since ${holder.started}); ${hint}`, { env, file });
    }
    await breakStale(file, holder);
  }
  throw new BerthError('E_LOCKED', `could not take the lock ${file}: it is being created or changed hands repeatedly (an unreadable lock file is taken over once it is ${UNREADABLE_STALE_MS / 1000} s old); try again`, { env, file });
}

/** Removes `file` if it still names `holder` (undefined: is still unreadable), under a breaker lock so only one process breaks it. */
async function breakStale(file: string, holder: LockInfo | undefined): Promise<void> {
  const breaker = `${file}.break`;
  try {
    createExclusive(breaker, String(process.pid), 0o644);
  } catch (err) {
    if (code(err) !== 'EEXIST') throw err;
    const age = Date.now() - (await stat(breaker).then((s) => s.mtimeMs, () => Date.now()));
    if (age > BREAKER_STALE_MS) await unlink(breaker).catch(() => {});
    else await new Promise((r) => setTimeout(r, 20));
    return;
  }
  try {
    const now = await readHolder(file);
    const same = holder === undefined ? now === undefined : now !== undefined && now.pid === holder.pid && now.host === holder.host && now.started === holder.started;
    if (same) await unlink(file).catch(() => {});
  } finally {
    await unlink(breaker).catch(() => {});
  }
}
