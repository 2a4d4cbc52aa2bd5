import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../support/nginx.js';
import { BROKEN } from '../support/repo.js';
import { startBerthRun, waitFor } from '../support/run.js';

describe('berth run shutdown', () => {
  it('stops promptly on SIGTERM while an event-stream client is connected', async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-shutdown-'));
    // A repo that does not render: the controller never needs Docker or nginx.
    const run = await startBerthRun(['--repo', path.join(BROKEN, 'yaml-syntax'), '--env', 'production', '--interval', '1h'], { BERTH_STATE_DIR: stateDir, BERTH_NGINX_CONF_DIR: path.join(stateDir, 'conf') }, await freePort());
    let received = '';
    const req = http.get(`${run.api}/api/v1/events`, (res) => res.on('data', (d: Buffer) => (received += d.toString())));
    req.on('error', () => {});
    try {
      await waitFor(() => received.includes('retry:'), 5000, 'the event stream to open');
      const t0 = Date.now();
      const exited = run.stop('SIGTERM');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000).unref())]);
      assert.equal(code, 0, `berth run ${code === 'hung' ? 'was still running 5 s after SIGTERM' : `exited ${String(code)}`}`);
      assert.ok(Date.now() - t0 < 5000);
    } finally {
      req.destroy();
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
