import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseNginxState, renderNginxConfig, upstreamName } from '../../src/runtime/nginx/config.js';
import type { ProxyConfig } from '../../src/runtime/types.js';

const config: ProxyConfig = {
  env: 'prod',
  routes: [
    { app: 'web', host: 'web.test', path: '/', stripPrefix: false, proxyOptions: { nginx: { client_max_body_size: '1m' } }, servers: [{ address: '127.0.0.1:3001', containerId: 'a' }, { address: '127.0.0.1:3000', containerId: 'b', weight: 3 }] },
    { app: 'docs', host: 'web.test', path: '/docs', stripPrefix: true, proxyOptions: {}, servers: [] },
  ],
};

describe('nginx config rendering', () => {
  const text = renderNginxConfig(config, '127.0.0.1:8080');
  it('writes one upstream per app with least_conn, keepalive and sorted servers', () => {
    assert.match(text, /upstream berth_prod_web \{\n  least_conn;\n  server 127\.0\.0\.1:3000 max_fails=1 fail_timeout=2s weight=3;\n  server 127\.0\.0\.1:3001 max_fails=1 fail_timeout=2s;\n  keepalive 16;\n\}/);
  });
  it('keeps an app with no replica valid for nginx (a down placeholder)', () => {
    assert.match(text, /upstream berth_prod_docs \{\n  least_conn;\n  server 127\.0\.0\.1:9 down;/);
  });
  it('groups routes of one host into one server; strips prefixes when asked', () => {
    assert.equal(text.match(/server_name web\.test;/g)?.length, 1);
    assert.match(text, /location \/docs\/ \{\n    proxy_pass http:\/\/berth_prod_docs\/;/);
    assert.match(text, /location = \/docs \{/);
    assert.match(text, /client_max_body_size 1m;/);
    assert.match(text, /listen 127\.0\.0\.1:8080;/);
  });
  it('round-trips its model, so observe reads back exactly what apply wrote', () => {
    assert.deepEqual(parseNginxState(text)?.routes.map((r) => r.app).sort(), ['docs', 'web']);
    assert.equal(parseNginxState('server {}'), undefined);
  });
  it('is byte-identical for the same model (no spurious reloads)', () => {
    const shuffled = { ...config, routes: [...config.routes].reverse() };
    assert.equal(renderNginxConfig(shuffled, '127.0.0.1:8080'), text);
  });
  it('names upstreams safely', () => assert.equal(upstreamName('my-env', 'my-app'), 'berth_my_env_my_app'));
});
