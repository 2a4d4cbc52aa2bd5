import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { EXAMPLE_REPO } from '../support/repo.js';
import { runBerth } from '../support/run.js';

// --env becomes part of file names (berth-<env>.conf, the lock, history): a name that is not an
// environment name (`../../nginx`) is a usage error before anything is read or removed.
describe('--env must be an environment name', () => {
  it('refuses a path-like name with exit 64, even with --prune-environment', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'berth-env-name-'));
    try {
      const r = await runBerth(['plan', '--repo', EXAMPLE_REPO, '--env', '/../../nginx', '--prune-environment', '--state-dir', state], {});
      assert.equal(r.code, 64, r.stderr);
      assert.match(r.stderr, /--env "\/\.\.\/\.\.\/nginx" is not an environment name: lower-case letters, digits and '-'/);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
