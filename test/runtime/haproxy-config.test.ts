import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configDrift, fileHeader, haproxyServers, HAPROXY_CONFIG_FORMAT, parseHaproxyState, renderHaproxyConfig, renderRetired, sameStructure } from '../../src/runtime/haproxy/config.js';
import { backendName, fallbackName, formatAddress, frontendName, parseAddress, serverName } from '../../src/runtime/haproxy/names.js';
import type { ProxyConfig, ProxyRoute } from '../../src/runtime/types.js';

const BIND = '127.0.0.1:8080';
const route = (app: string, host: string, path = '/', extra: Partial<ProxyRoute> = {}): ProxyRoute => ({
  app,
  host,
  path,
  stripPrefix: false,
  proxyOptions: {},
  servers: [{ address: '127.0.0.1:3000', containerId: `${app}0123456789abcdef` }],
  ...extra,
});

const config: ProxyConfig = {
  env: 'prod',
  routes: [
    route('web', 'web.test', '/', {
      proxyOptions: { nginx: { client_max_body_size: '1m' } },
      servers: [
        { address: '127.0.0.1:3001', containerId: 'aaaaaaaaaaaaaaaa' },
        { address: '127.0.0.1:3000', containerId: 'bbbbbbbbbbbbbbbb', weight: 3 },
      ],
    }),
    route('docs', 'web.test', '/docs.v2/', { stripPrefix: true }),
  ],
};

/** The lines of a section, from its header up to the blank line that ends it. */
function section(text: string, head: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(head);
  assert.notEqual(start, -1, `no section "${head}" in:\n${text}`);
  const end = lines.indexOf('', start);
  return lines.slice(start, end);
}

describe('HAProxy config rendering', () => {
  const text = renderHaproxyConfig(config, BIND);

  it('writes one frontend on the bind address and a 404 fallback, all from its own named defaults', () => {
    const fe = section(text, `frontend ${frontendName('prod')} from berth-defaults_${frontendName('prod').slice(6)}`);
    assert.ok(fe.includes(`  bind ${BIND}`));
    assert.ok(fe.includes(`  default_backend ${fallbackName('prod')}`));
    assert.deepEqual(section(text, `backend ${fallbackName('prod')} from berth-defaults_${frontendName('prod').slice(6)}`).slice(1), ['  http-request return status 404']);
  });

  it('writes one leastconn backend per app, servers named by container and sorted, weights only when not 1', () => {
    const be = section(text, `backend ${backendName('prod', 'web')} from berth-defaults_${frontendName('prod').slice(6)}`);
    assert.equal(be[1], '  balance leastconn');
    const servers = be.filter((l) => l.startsWith('  server '));
    assert.deepEqual(servers.sort(), [`  server ${serverName({ containerId: 'aaaaaaaaaaaaaaaa', address: '127.0.0.1:3001' })} 127.0.0.1:3001`, `  server ${serverName({ containerId: 'bbbbbbbbbbbbbbbb', address: '127.0.0.1:3000' })} 127.0.0.1:3000 weight 3`].sort());
  });

  it("matches a prefix as nginx's location /p/ and = /p, longest first, and strips it when asked ('.' literal)", () => {
    const fe = text.split('\n').filter((l) => l.startsWith('  use_backend '));
    assert.deepEqual(fe, [
      `  use_backend ${backendName('prod', 'docs')} if { var(txn.berth_site) -m str web.test } { path -m str /docs.v2 } || { var(txn.berth_site) -m str web.test } { path -m beg /docs.v2/ }`,
      `  use_backend ${backendName('prod', 'web')} if { var(txn.berth_site) -m str web.test }`,
    ]);
    assert.ok(section(text, `backend ${backendName('prod', 'docs')} from berth-defaults_${frontendName('prod').slice(6)}`).includes('  http-request replace-path ^/docs[.]v2/?(.*)$ /\\1'));
    assert.ok(!section(text, `backend ${backendName('prod', 'web')} from berth-defaults_${frontendName('prod').slice(6)}`).some((l) => l.includes('replace-path')));
  });

  it("picks the site as nginx's server_name does: exact, longest *.suffix, longest prefix.*, then _", () => {
    const hosts = ['_', 'www.example.*', '*.example.test', '*.a.example.test', 'api.example.test', 'w.*'];
    const text = renderHaproxyConfig({ env: 'e', routes: hosts.map((h, i) => route(`app${i}`, h)) }, BIND);
    const sites = text.split('\n').filter((l) => l.includes('set-var(txn.berth_site)'));
    assert.deepEqual(sites, [
      '  http-request set-var(txn.berth_site) str(api.example.test) if { var(txn.berth_host) -m str api.example.test }',
      '  http-request set-var(txn.berth_site) str(*.a.example.test) if !{ var(txn.berth_site) -m found } { var(txn.berth_host) -m end .a.example.test }',
      '  http-request set-var(txn.berth_site) str(*.example.test) if !{ var(txn.berth_site) -m found } { var(txn.berth_host) -m end .example.test }',
      '  http-request set-var(txn.berth_site) str(www.example.*) if !{ var(txn.berth_site) -m found } { var(txn.berth_host) -m beg www.example. }',
      '  http-request set-var(txn.berth_site) str(w.*) if !{ var(txn.berth_site) -m found } { var(txn.berth_host) -m beg w. }',
      '  http-request set-var(txn.berth_site) str(_) if !{ var(txn.berth_site) -m found }',
    ]);
    // The Host header is compared without its port and in lower case, as nginx does.
    assert.match(text, /set-var\(txn\.berth_host\) req\.hdr\(host\),field\(1,:\),lower/);
  });

  it('round-trips its model, so read() returns exactly what apply wrote', () => {
    const parsed = parseHaproxyState(text);
    assert.deepEqual(parsed, { env: 'prod', routes: [...config.routes].sort((a, b) => (a.app < b.app ? -1 : 1)) });
    assert.equal(parseHaproxyState('frontend x\n  bind :80\n'), undefined);
    assert.equal(parseHaproxyState('# berth-state: {not json\n'), undefined);
  });

  it('is byte-identical for the same model in any order (no spurious writes)', () => {
    assert.equal(renderHaproxyConfig({ ...config, routes: [...config.routes].reverse() }, BIND), text);
  });

  it('writes a large model, with non-ASCII, as short ASCII comment lines and reads it back exactly', () => {
    const big: ProxyConfig = {
      env: 'prod',
      routes: Array.from({ length: 500 }, (_, i) => route(`app-${String(i).padStart(3, '0')}`, `app-${i}.example.test`, '/', { proxyOptions: { nginx: { add_header: ['X-Note', `café ✓ ${i}`] } } })),
    };
    const out = renderHaproxyConfig(big, BIND);
    for (const line of out.split('\n')) {
      assert.ok(line.length <= 1100, `line of ${line.length} characters`);
      assert.match(line, /^[\x20-\x7e]*$/);
    }
    assert.deepEqual(parseHaproxyState(out), big);
  });

  it('names a file it did not write in its own format as no drift (rewritten, with a reload, at the next apply)', () => {
    assert.equal(configDrift(text, parseHaproxyState(text)!, BIND), undefined);
    const edited = text.replace('  balance leastconn', '  balance roundrobin');
    assert.match(configDrift(edited, parseHaproxyState(edited)!, BIND) ?? '', /^haproxy file edited: line \d+ is "balance roundrobin", berth wrote "balance leastconn"$/);
    const truncated = text.slice(0, text.lastIndexOf('  server '));
    assert.match(configDrift(truncated, parseHaproxyState(truncated)!, BIND) ?? '', /is end of file, berth wrote "server /);
    const older = text.replace(`(haproxy config format ${HAPROXY_CONFIG_FORMAT})`, '(haproxy config format 0)').replace('balance leastconn', 'balance first');
    assert.equal(configDrift(older, parseHaproxyState(older)!, BIND), undefined);
    assert.match(configDrift(text, parseHaproxyState(text)!, '127.0.0.1:9090') ?? '', /bind 127\.0\.0\.1:8080", berth wrote "bind 127\.0\.0\.1:9090"/);
  });

  it('a retired environment leaves a stub HAProxy still loads, recognised as such', () => {
    assert.deepEqual(fileHeader(renderRetired('prod')), { env: 'prod', format: HAPROXY_CONFIG_FORMAT, retired: true });
    assert.deepEqual(fileHeader(text), { env: 'prod', format: HAPROXY_CONFIG_FORMAT, retired: false });
    assert.equal(fileHeader('global\n'), undefined);
  });
});

describe('HAProxy structure: what needs a reload', () => {
  const moved = (c: ProxyConfig, f: (r: ProxyRoute) => ProxyRoute): ProxyConfig => ({ ...c, routes: c.routes.map(f) });
  const cases: { name: string; next: ProxyConfig; same: boolean }[] = [
    { name: 'a server added', next: moved(config, (r) => ({ ...r, servers: [...r.servers, { address: '127.0.0.1:4000', containerId: 'new' }] })), same: true },
    { name: 'every server replaced', next: moved(config, (r) => ({ ...r, servers: [{ address: '127.0.0.1:4001', containerId: 'x' }] })), same: true },
    { name: 'a weight changed', next: moved(config, (r) => ({ ...r, servers: r.servers.map((s) => ({ ...s, weight: 7 })) })), same: true },
    { name: 'nginx options changed (HAProxy ignores them)', next: moved(config, (r) => ({ ...r, proxyOptions: { nginx: { gzip: 'on' } } })), same: true },
    { name: 'a host changed', next: moved(config, (r) => (r.app === 'web' ? { ...r, host: 'www.test' } : r)), same: false },
    { name: 'a path changed', next: moved(config, (r) => (r.app === 'docs' ? { ...r, path: '/documentation' } : r)), same: false },
    { name: 'stripPrefix changed', next: moved(config, (r) => ({ ...r, stripPrefix: !r.stripPrefix })), same: false },
    { name: 'a route added', next: { ...config, routes: [...config.routes, route('api', 'api.test')] }, same: false },
    { name: 'a route removed', next: { ...config, routes: config.routes.slice(1) }, same: false },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.same ? 'Runtime API' : 'reload'}`, () => assert.equal(sameStructure(config, c.next, BIND), c.same));
  }
});

describe('HAProxy names, addresses and weights', () => {
  it('names backends readably and injectively', () => {
    assert.match(backendName('my-env', 'my-app'), /^berth_my_env_my_app_[0-9a-f]{10}$/);
    assert.notEqual(backendName('a-b', 'c'), backendName('a', 'b-c'));
    assert.notEqual(fallbackName('e'), backendName('e', 'no-route'));
  });

  it('names a server by its container and address: the same container on another port is another server', () => {
    const a = serverName({ containerId: '3f2a9c1b0d4e5f6a7b8c', address: '127.0.0.1:32768' });
    assert.match(a, /^3f2a9c1b0d4e-[0-9a-f]{8}$/);
    assert.notEqual(a, serverName({ containerId: '3f2a9c1b0d4e5f6a7b8c', address: '127.0.0.1:32769' }));
    assert.match(serverName({ containerId: '', address: '127.0.0.1:1' }), /^srv-[0-9a-f]{8}$/);
  });

  const addresses: [string, { ip: string; port: number } | undefined][] = [
    ['127.0.0.1:32768', { ip: '127.0.0.1', port: 32768 }],
    ['[::1]:8080', { ip: '::1', port: 8080 }],
    ['::1:8080', { ip: '::1', port: 8080 }],
    ['localhost:80', undefined],
    ['127.0.0.1', undefined],
    ['127.0.0.1:0', undefined],
    ['127.0.0.1:65536', undefined],
    ['127.0.0.1:80 weight 9', undefined],
  ];
  for (const [text, want] of addresses) it(`reads ${JSON.stringify(text)} as ${JSON.stringify(want)}`, () => assert.deepEqual(parseAddress(text), want));

  it('writes IPv6 in brackets', () => {
    assert.equal(formatAddress({ ip: '::1', port: 80 }), '[::1]:80');
    assert.equal(formatAddress({ ip: '10.0.0.1', port: 80 }), '10.0.0.1:80');
  });

  it('keeps relative weights, scaled into 1..256 when a canary asks for more', () => {
    const servers = (weights: (number | undefined)[]) => weights.map((weight, i) => ({ address: `127.0.0.1:${3000 + i}`, containerId: `c${i}`, ...(weight !== undefined && { weight }) }));
    const w = (weights: (number | undefined)[]) => haproxyServers(servers(weights)).sort((a, b) => a.port - b.port).map((s) => s.weight);
    assert.deepEqual(w([undefined, undefined]), [1, 1]);
    assert.deepEqual(w([3, 1]), [3, 1]);
    assert.deepEqual(w([500, 50]), [256, 26]);
    assert.deepEqual(w([100_000, 1]), [256, 1]);
  });
});
