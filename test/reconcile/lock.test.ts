import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock } from '../../src/reconcile/lock.js';

const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'berth-lock-'));

describe('environment lock', () => {
  it('never has two holders at once: 100 simultaneous tries in 20 rounds', async () => {
    const dir = tmp();
    let holders = 0;
    let most = 0;
    let wins = 0;
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 5 }, async () => {
          const lock = await acquireLock(dir, 'prod').catch(() => undefined);
          if (!lock) return;
          wins++;
          most = Math.max(most, ++holders);
          await new Promise((r) => setTimeout(r, 5));
          holders--;
          await lock.release();
        }),
      );
    }
    assert.equal(most, 1);
    assert.ok(wins >= 20, `${wins} wins`);
    rmSync(dir, { recursive: true, force: true });
  });

  it('never has two holders across processes racing for a stale lock', async () => {
    const dir = tmp();
    const locks = path.join(dir, 'locks');
    mkdirSync(locks);
    const script = path.join(dir, 'race.mts');
    writeFileSync(
      script,
      `import { appendFileSync } from 'node:fs';
import { acquireLock } from ${JSON.stringify(path.resolve('src/reconcile/lock.ts'))};
const log = ${JSON.stringify(path.join(dir, 'log'))};
const lock = await acquireLock(${JSON.stringify(dir)}, 'prod').catch(() => undefined);
if (lock) {
  appendFileSync(log, 'in ' + process.pid + '\\n');
  await new Promise((r) => setTimeout(r, 300));
  appendFileSync(log, 'out ' + process.pid + '\\n');
  await lock.release();
}
`,
    );
    // A lock of a process that is gone (pid far beyond pid_max), which every racer finds stale.
    writeFileSync(path.join(locks, 'prod.lock'), JSON.stringify({ pid: 2 ** 30, host: os.hostname(), started: 'then' }));
    await Promise.all(
      Array.from({ length: 6 }, () => new Promise((resolve) => spawn(process.execPath, ['--import', 'tsx', script], { stdio: 'inherit' }).on('exit', resolve))),
    );
    const events = readFileSync(path.join(dir, 'log'), 'utf8').trim().split('\n');
    let inside = 0;
    for (const e of events) {
      inside += e.startsWith('in ') ? 1 : -1;
      assert.ok(inside <= 1, `two holders at once: ${events.join(', ')}`);
    }
    assert.ok(events.length >= 2);
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves a fresh empty lock file alone (its creator is mid-write) and takes over an old one', async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'locks'));
    const file = path.join(dir, 'locks/prod.lock');
    writeFileSync(file, '');
    await assert.rejects(acquireLock(dir, 'prod'), (err: Error & { code?: string }) => err.code === 'E_LOCKED');
    assert.equal(readFileSync(file, 'utf8'), '', 'the fresh lock file was not deleted');
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    const lock = await acquireLock(dir, 'prod');
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid);
    await lock.release();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes over a lock of another host only with force', async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'locks'));
    writeFileSync(path.join(dir, 'locks/prod.lock'), JSON.stringify({ pid: 1, host: 'elsewhere', started: 'then' }));
    await assert.rejects(acquireLock(dir, 'prod'), /pid 1 on elsewhere.*--force/);
    const lock = await acquireLock(dir, 'prod', { force: true });
    assert.equal(JSON.parse(readFileSync(path.join(dir, 'locks/prod.lock'), 'utf8')).pid, process.pid);
    await lock.release();
    rmSync(dir, { recursive: true, force: true });
  });
});
