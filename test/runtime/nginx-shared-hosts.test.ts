import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderNginxConfig } from '../../src/runtime/nginx/config.js';
import { NginxDriver } from '../../src/runtime/nginx/driver.js';
import type { ProxyConfig, ProxyRoute } from '../../src/runtime/types.js';

// Hardening (#11 item 11): two environments on one nginx never route one host. `nginx -t` and the
// reload are `true` here (the real nginx run is test/integration/nginx-routes.test.ts); a unix
// listen address skips the wait for the status server.
const LISTEN = 'unix:/tmp/berth-shared-hosts.sock';

const route = (app: string, host: string): ProxyRoute => ({ app, host, path: '/', stripPrefix: false, proxyOptions: {}, servers: [{ address: '127.0.0.1:9000', containerId: app }] });

function setup(): { dir: string; driver: NginxDriver; warnings: string[]; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-shared-'));
  const warnings: string[] = [];
  const driver = new NginxDriver({ confDir: dir, listen: LISTEN, testCmd: ['true'], reloadCmd: ['true'], minReloadIntervalMs: 0, onWarning: (m) => warnings.push(m) });
  return { dir, driver, warnings, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('nginx driver: hosts shared across environments', () => {
  it('refuses a host another environment serves, naming both, and writes nothing', async () => {
    const { dir, driver, cleanup } = setup();
    await driver.apply({ env: 'staging', routes: [route('web', 'web.example.test')] });
    await assert.rejects(driver.apply({ env: 'production', routes: [route('web', 'web.example.test')] }), /host web\.example\.test is already served by environment "staging" .* environment "production" cannot route it too/);
    assert.equal(existsSync(path.join(dir, 'berth-production.conf')), false);
    await driver.apply({ env: 'production', routes: [route('web', 'web.example.com')] });
    cleanup();
  });

  it('allows the same host on another listen address, and the catch-all only once', async () => {
    const { dir, driver, cleanup } = setup();
    writeFileSync(path.join(dir, 'berth-other.conf'), renderNginxConfig({ env: 'other', routes: [route('web', 'web.example.test'), route('any', '_')] }, '127.0.0.1:81'));
    await driver.apply({ env: 'a', routes: [route('web', 'web.example.test'), route('any', '_')] });
    await assert.rejects(new NginxDriver({ confDir: dir, listen: LISTEN, testCmd: ['true'], reloadCmd: ['true'], minReloadIntervalMs: 0 }).apply({ env: 'b', routes: [route('any', '_')] }), /host _ is already served by environment "a"/);
    cleanup();
  });

  it('warns, without blocking, about a host both files already served (written before the check)', async () => {
    const { dir, driver, warnings, cleanup } = setup();
    const both: ProxyConfig = { env: 'staging', routes: [route('web', 'web.example.test')] };
    writeFileSync(path.join(dir, 'berth-staging.conf'), renderNginxConfig(both, LISTEN));
    writeFileSync(path.join(dir, 'berth-production.conf'), renderNginxConfig({ env: 'production', routes: [route('web', 'web.example.test')] }, LISTEN));
    await driver.apply({ env: 'production', routes: [route('web', 'web.example.test'), route('api', 'api.example.com')] });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /host web\.example\.test is served by both environment "production" and environment "staging"/);
    cleanup();
  });
});
