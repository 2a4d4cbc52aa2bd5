import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { execIn } from '../../src/runtime/factory.js';
import { runLocal } from '../../src/runtime/nginx/driver.js';
import { scriptedRuntime } from '../support/fakes.js';

describe('nginx commands in a container (--nginx-container)', () => {
  it('passes on exit code 0 and fails with the output otherwise', async () => {
    const results = [{ exitCode: 0, output: 'syntax is ok' }, { exitCode: 1, output: 'nginx: [emerg] unknown directive "prox_pass"' }, { exitCode: 2, output: '' }];
    const run = execIn(scriptedRuntime({ exec: (n) => results[n]! }), 'edge-nginx');
    assert.deepEqual(await run(['nginx', '-t']), { ok: true, output: 'syntax is ok' });
    assert.deepEqual(await run(['nginx', '-t']), { ok: false, output: 'nginx: [emerg] unknown directive "prox_pass"' });
    assert.deepEqual(await run(['nginx', '-s', 'reload']), { ok: false, output: 'exit code 2' });
  });

  it('names the container and the command when Docker cannot run it', async () => {
    const runtime = { ...scriptedRuntime({}), exec: async () => Promise.reject(new Error('no such container: edge-nginx')) };
    const r = await execIn(runtime, 'edge-nginx')(['nginx', '-t']);
    assert.equal(r.ok, false);
    assert.equal(r.output, 'could not run "nginx -t" in container edge-nginx: no such container: edge-nginx');
  });

  it('a local command that is not installed says so, and points at --nginx-container', async () => {
    const r = await runLocal(['berth-no-such-command-here', '-t']);
    assert.equal(r.ok, false);
    assert.match(r.output, /^berth-no-such-command-here: command not found .*--nginx-container/);
  });
});
