import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { NginxDriver } from '../../src/runtime/nginx/driver.js';
import type { ProxyConfig, ProxyRoute } from '../../src/runtime/types.js';
import { get, request, startNginx, type TestNginx } from '../support/nginx.js';

/** A backend on 127.0.0.1 that answers 200 and echoes the request headers it got as JSON. */
async function echoServer(): Promise<{ address: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.headers));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const route = (app: string, host: string, server: string, nginx?: ProxyRoute['proxyOptions']['nginx']): ProxyRoute => ({
  app,
  host,
  path: '/',
  stripPrefix: false,
  proxyOptions: nginx ? { nginx } : {},
  servers: [{ address: server, containerId: `${app}-1` }],
});

describe('nginx routes on a real nginx', () => {
  let nginx: TestNginx | undefined;
  let backend: Awaited<ReturnType<typeof echoServer>>;
  let driver: NginxDriver;

  before(async (t) => {
    nginx = await startNginx(t as unknown as TestContext);
    backend = await echoServer();
    if (nginx) driver = new NginxDriver({ confDir: nginx.confDir, listen: nginx.listen, testCmd: nginx.testCmd, reloadCmd: nginx.reloadCmd, minReloadIntervalMs: 0 });
  });
  after(async () => {
    nginx?.stop();
    await backend?.close();
  });

  it('writes every route.nginx argument quoted: quotes, ";", backslashes and spaces reach the client as written', async (t) => {
    if (!nginx) return t.skip('no nginx');
    const config: ProxyConfig = {
      env: 'quoting',
      routes: [
        route('web', 'quoting.test', backend.address, {
          // A lone quote once made the generated location sit inside a header value.
          add_header: [
            ['X-A', "'"],
            ['Content-Security-Policy', "default-src 'self'; img-src * {x} #y"],
          ],
          proxy_set_header: ['X-Custom', 'a"b\\c'],
          // Also set by berth: the route's value replaces berth's line instead of duplicating it.
          proxy_connect_timeout: '5s',
          client_max_body_size: '1m',
        }),
      ],
    };
    await driver.apply(config);
    const res = await request(nginx.port, 'quoting.test');
    assert.equal(res.status, 200, 'the route answers from the backend');
    assert.equal(res.headers['x-a'], "'");
    assert.equal(res.headers['content-security-policy'], "default-src 'self'; img-src * {x} #y");
    const seen = JSON.parse(res.body) as Record<string, string>;
    assert.equal(seen['x-custom'], 'a"b\\c');
    assert.equal(seen.host, 'quoting.test', "berth's own proxy headers stay");
  });

  it('refuses a host another environment already serves on the same nginx, naming both, and leaves that environment serving', async (t) => {
    if (!nginx) return t.skip('no nginx');
    await driver.apply({ env: 'first', routes: [route('web', 'shared.test', backend.address)] });
    assert.equal((await get(nginx.port, 'shared.test')).status, 200);
    await assert.rejects(driver.apply({ env: 'second', routes: [route('site', 'shared.test', backend.address), route('other', 'own.test', backend.address)] }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_NGINX_CONFIG');
      assert.match(err.message, /host shared\.test is already served by environment "first"/);
      assert.match(err.message, /environment "second" cannot route it too/);
      return true;
    });
    assert.equal(existsSync(path.join(nginx.confDir, 'berth-second.conf')), false, 'nothing of the refused environment is left behind');
    // The second environment's other hosts still apply once the shared one is gone.
    await driver.apply({ env: 'second', routes: [route('other', 'own.test', backend.address)] });
    assert.equal((await get(nginx.port, 'own.test')).status, 200);
    assert.equal((await get(nginx.port, 'shared.test')).status, 200);
  });
});
