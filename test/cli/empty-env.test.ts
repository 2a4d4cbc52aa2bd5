import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dropEmptyBerthVariables } from '../../src/cli/main.js';
import { EXAMPLE_REPO } from '../support/repo.js';
import { runBerth } from '../support/run.js';

describe('BERTH_ variables set to the empty string', () => {
  it('count as unset; other variables are left alone', () => {
    const env: NodeJS.ProcessEnv = { BERTH_ENV: '', BERTH_REPO: 'x', HOME: '', OTHER_BERTH_ENV: '' };
    dropEmptyBerthVariables(env);
    assert.deepEqual(env, { BERTH_REPO: 'x', HOME: '', OTHER_BERTH_ENV: '' });
  });

  it('reach no option: BERTH_ENV="" validates every environment, as without it', async () => {
    const r = await runBerth(['validate', '--repo', EXAMPLE_REPO], { BERTH_ENV: '', BERTH_EXTERNAL_URL: '', BERTH_PARALLELISM: '' });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout + r.stderr, /2 environments \(production, staging\)/);
  });
});
