import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configDrift, parseNginxState, renderNginxConfig, upstreamName } from '../../src/runtime/nginx/config.js';
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
    assert.match(text, /upstream berth_prod_web_[0-9a-f]{10} \{\n  least_conn;\n  server 127\.0\.0\.1:3000 max_fails=1 fail_timeout=2s weight=3;\n  server 127\.0\.0\.1:3001 max_fails=1 fail_timeout=2s;\n  keepalive 16;\n\}/);
  });
  it('keeps an app with no replica valid for nginx (a down placeholder)', () => {
    assert.match(text, /upstream berth_prod_docs_[0-9a-f]{10} \{\n  least_conn;\n  server 127\.0\.0\.1:9 down;/);
  });
  it('groups routes of one host into one server; strips prefixes when asked', () => {
    assert.equal(text.match(/server_name web\.test;/g)?.length, 1);
    assert.match(text, /location \/docs\/ \{\n    proxy_pass http:\/\/berth_prod_docs_[0-9a-f]{10}\/;/);
    assert.match(text, /location = \/docs \{/);
    assert.match(text, /client_max_body_size "1m";/);
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
  it('names upstreams safely and injectively (#11 item 8)', () => {
    assert.match(upstreamName('my-env', 'my-app'), /^berth_my_env_my_app_[0-9a-f]{10}$/);
    assert.notEqual(upstreamName('a-b', 'c'), upstreamName('a', 'b-c'));
    assert.equal(upstreamName('a-b', 'c'), upstreamName('a-b', 'c'));
  });
});

function manyRoutes(n: number): ProxyConfig {
  return {
    env: 'prod',
    routes: Array.from({ length: n }, (_, i) => ({
      app: `app-${String(i).padStart(4, '0')}`,
      host: `app-${i}.example.test`,
      path: '/',
      stripPrefix: false,
      proxyOptions: { nginx: { client_max_body_size: '2m', proxy_read_timeout: '30s' } },
      servers: [{ address: `127.0.0.1:${20000 + i}`, containerId: `${'c'.repeat(60)}${String(i).padStart(4, '0')}` }],
    })),
  };
}

describe('nginx state at scale', () => {
  it('keeps every line of a 1,000-route config under nginx 4 KiB token limit and reads it back exactly', () => {
    const config = manyRoutes(1000);
    const text = renderNginxConfig(config, '127.0.0.1:8080');
    const longest = Math.max(...text.split('\n').map((l) => Buffer.byteLength(l)));
    assert.ok(longest < 4096, `longest line is ${longest} bytes`);
    const t0 = performance.now();
    const back = parseNginxState(text);
    const ms = performance.now() - t0;
    assert.deepEqual(back?.routes, [...config.routes].sort((a, b) => (a.app < b.app ? -1 : 1)));
    assert.ok(ms < 200, `reading 1,000 routes back took ${ms.toFixed(1)} ms`);
    assert.equal(configDrift(text, back!, '127.0.0.1:8080'), undefined);
  });

  it('writes non-ASCII values as escapes, so no state line splits a character', () => {
    const config: ProxyConfig = { env: 'prod', routes: [{ ...manyRoutes(1).routes[0]!, proxyOptions: { nginx: { add_header: `X-Note "${'é€😀'.repeat(600)}"` } } }] };
    const text = renderNginxConfig(config, '80');
    for (const line of text.split('\n').filter((l) => l.startsWith('# berth-state: '))) assert.match(line, /^[\x20-\x7e]*$/);
    assert.deepEqual(parseNginxState(text)?.routes[0]?.proxyOptions, config.routes[0]!.proxyOptions);
  });

  it('still reads the single long state line of files written by earlier versions', () => {
    const old = `# Managed by berth for environment "prod": rewritten on every apply; do not edit.\n# berth-state: ${JSON.stringify({ env: 'prod', routes: [{ app: 'web', host: 'w.test', path: '/', stripPrefix: false, options: { client_max_body_size: '1m' }, servers: [] }] })}\n\nupstream x {}\n`;
    const back = parseNginxState(old);
    assert.deepEqual(back?.routes[0]?.proxyOptions, { nginx: { client_max_body_size: '1m' } });
    // Written by an older berth: rewritten at the next apply, never reported as a hand edit.
    assert.equal(configDrift(old, back!, '80'), undefined);
  });

  it('names the first line a hand edit changed', () => {
    const text = renderNginxConfig(config, '127.0.0.1:8080');
    const edited = text.replace('proxy_connect_timeout 2s;', 'proxy_connect_timeout 9s;');
    const drift = configDrift(edited, parseNginxState(edited)!, '127.0.0.1:8080');
    assert.match(drift ?? '', /^nginx file edited: line \d+ is "proxy_connect_timeout 9s;", berth wrote "proxy_connect_timeout 2s;"$/);
    assert.match(configDrift(text.slice(text.indexOf('\n') + 1), config, '127.0.0.1:8080') ?? '', /^nginx file edited: line 1 is "# berth-state: /);
    assert.match(configDrift(text.slice(0, text.indexOf('upstream')), config, '127.0.0.1:8080') ?? '', /is end of file, berth wrote "/);
    assert.match(configDrift(text + 'server { listen 81; }\n', config, '127.0.0.1:8080') ?? '', /line \d+ is "server \{ listen 81; \}", berth wrote end of file$/);
  });
});
