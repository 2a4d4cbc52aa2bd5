import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { harness, stage, type copyExampleRepo, type Stage } from '../support/env.js';
import { get, type TestNginx } from '../support/nginx.js';
import { ROOT } from '../support/repo.js';

/** Runs the real CLI (`berth apply`) in a child process; resolves when `until` appears on stderr or it exits. */
function berth(args: string[], env: NodeJS.ProcessEnv, until?: RegExp): Promise<{ code: number | null; stderr: string; kill(): void; exited: Promise<number | null> }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { env: { ...process.env, ...env, NO_COLOR: '1' }, cwd: ROOT });
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const handle = { code: null as number | null, get stderr() { return stderr; }, kill: () => child.kill('SIGKILL'), exited };
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (until?.test(stderr)) resolve(handle);
    });
    void exited.then((code) => {
      handle.code = code;
      resolve(handle);
    });
  });
}

describe('berth apply is resumable and locked (real CLI, Docker, nginx)', () => {
  let st: Stage | undefined;
  let docker: Docker | undefined;
  let nginx: TestNginx | undefined;
  let repo: ReturnType<typeof copyExampleRepo>;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  before(async (t) => {
    st = await stage(t as never);
    if (!st) return;
    ({ docker, nginx, repo } = st);
    stateDir = st.stateDir;
    env = {
      BERTH_REPO: repo.dir,
      BERTH_ENV: repo.env,
      ...st.cliEnv,
    };
  });
  after(async () => {
    await st?.teardown();
  });

  it('plan exits 2 with changes pending, apply converges, plan then exits 0', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const planned = await berth(['plan'], env);
    assert.equal(planned.code, 2, planned.stderr);
    const applied = await berth(['apply'], env);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stderr, /Succeeded: 4 succeeded/);
    assert.equal((await berth(['plan'], env)).code, 0);
  });

  it('SIGKILL mid-apply, then apply again: converges with no orphans or duplicates', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const file = path.join(repo.dir, 'apps/web.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('APP_VERSION: "1.0"', 'APP_VERSION: "2.0"'));
    // Kill it as soon as it has started a new replica and is waiting for it.
    const first = await berth(['apply'], env, /web\s+wait/);
    first.kill();
    await first.exited;
    // The lock of the killed process is stale: the next apply takes it over.
    const lockFile = path.join(stateDir, 'locks', `${repo.env}.lock`);
    assert.ok(readFileSync(lockFile, 'utf8').includes('"pid"'), 'the killed apply left its lock');
    const second = await berth(['apply'], env);
    assert.equal(second.code, 0, second.stderr);

    const h = harness(repo.dir, repo.env, nginx, stateDir);
    const desired = await h.render();
    const web = desired.apps.find((a) => a.name === 'web')!;
    const live = (await h.runtime.list(repo.env)).filter((c) => c.app === 'web');
    assert.equal(live.length, 2, live.map((c) => `${c.name} ${c.state}`).join(', '));
    assert.ok(live.every((c) => c.specHash === web.specHash && c.state === 'running'));
    assert.deepEqual(live.map((c) => c.replica).sort(), [0, 1], 'one container per replica');
    assert.deepEqual(await get(nginx.port, 'web.example.test'), { status: 200, body: 'web 2.0\n' });
    assert.equal((await h.planOnly()).empty, true);
  });

  it('refuses a second apply while one holds the lock', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const lockFile = path.join(stateDir, 'locks', `${repo.env}.lock`);
    writeFileSync(lockFile, JSON.stringify({ pid: process.pid, host: os.hostname(), started: new Date().toISOString() }));
    try {
      const r = await berth(['apply'], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /another berth is applying environment/);
    } finally {
      const { unlinkSync } = await import('node:fs');
      unlinkSync(lockFile);
    }
  });
});
