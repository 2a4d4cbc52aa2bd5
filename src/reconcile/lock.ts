import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../errors.js';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock per environment in the state dir, so two applies never run at once.
 * A lock left by a process that no longer exists (killed berth) is detected and taken over.
 */
export async function acquireLock(stateDir: string, env: string): Promise<{ release(): Promise<void> }> {
  const dir = path.join(stateDir, 'locks');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${env}.lock`);
  const me: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(JSON.stringify(me));
      await handle.close();
      return { release: () => unlink(file).catch(() => {}) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: LockInfo | undefined;
    try {
      holder = JSON.parse(await readFile(file, 'utf8')) as LockInfo;
    } catch {
      holder = undefined; // empty or torn: the writer died between create and write
    }
    if (holder && (holder.host !== me.host || alive(holder.pid))) {
      throw new BerthError('E_LOCKED', `another berth is applying environment "${env}" (pid ${holder.pid} on ${holder.host} since ${holder.started}); wait for it, or remove ${file} if that process is gone`, { env, file });
    }
    await unlink(file).catch(() => {}); // stale: its process is gone
  }
  throw new BerthError('E_LOCKED', `could not take the lock ${file}`, { env, file });
}
