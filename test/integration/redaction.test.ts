import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { seedRepo, startGitServer, type GitServer } from '../support/git-server.js';
import { EXAMPLE_REPO } from '../support/repo.js';
import { runBerth } from '../support/run.js';

// Hardening (#11 item 14): a token in a repo URL never reaches the output (real git http-backend).
describe('repo URLs with credentials are printed redacted', () => {
  const TOKEN = 's3cr3t-token-value';
  let git: GitServer;
  let stateDir: string;
  before(async () => {
    git = await startGitServer({ token: TOKEN });
    await (await seedRepo(git, 'cfg', EXAMPLE_REPO, `http://ci:${TOKEN}@127.0.0.1:${git.port}/cfg.git`)).push('initial');
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-redact-'));
  });
  after(async () => {
    await git.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('berth validate --repo https://x-access-token:TOKEN@host/… names the repo without the token', async () => {
    const url = git.url('cfg.git').replace('://', `://x-access-token:${TOKEN}@`);
    const r = await runBerth(['validate', '--repo', url], { BERTH_STATE_DIR: stateDir, BERTH_SECRET_DB_PASSWORD: 'x' });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(TOKEN), `token printed: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`✔ ${git.url('cfg.git').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is valid`));
  });
});
