import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, rmSync, writeSync } from 'node:fs';

/**
 * Creates `file` holding `data`, atomically, or throws EEXIST when it exists: the data is written
 * (and synced) to a private temp file first and hard-linked into place, so nobody ever sees the file
 * empty or half-written, and of two processes racing exactly one wins. Used for locks and for the
 * secret digest key.
 */
export function createExclusive(file: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    linkSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}
