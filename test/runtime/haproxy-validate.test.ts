import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configProblems, ignoredNginxOptions, routeProblems } from '../../src/runtime/haproxy/validate.js';
import type { ProxyRoute } from '../../src/runtime/types.js';

const ok: ProxyRoute = { app: 'web', host: 'web.test', path: '/', stripPrefix: false, proxyOptions: {}, servers: [{ address: '127.0.0.1:3000', containerId: 'c1' }] };
const fields = (r: ProxyRoute) => routeProblems(r).map((p) => p.field);

describe('HAProxy route validation', () => {
  it('accepts every route shape the App schema allows', () => {
    for (const host of ['web.test', '*.example.test', 'www.example.*', '_', 'a-1.b-2.test']) assert.deepEqual(fields({ ...ok, host }), [], host);
    for (const path of ['/', '/docs', '/api/v2/', '/a.b~c_d-e']) assert.deepEqual(fields({ ...ok, path }), [], path);
    assert.deepEqual(fields({ ...ok, servers: [{ address: '[::1]:80', containerId: 'a', weight: 300 }] }), []);
  });

  const bad: [string, ProxyRoute, string][] = [
    ['a host with a space (a second ACL word)', { ...ok, host: 'web.test evil' }, 'route.host'],
    ['a host with a brace', { ...ok, host: 'web}.test' }, 'route.host'],
    ['an upper-case host', { ...ok, host: 'Web.test' }, 'route.host'],
    ['a path with a space', { ...ok, path: '/a b' }, 'route.path'],
    ['a path with a regex character', { ...ok, path: '/a(b)' }, 'route.path'],
    ['a path with ..', { ...ok, path: '/a/../b' }, 'route.path'],
    ['a relative path', { ...ok, path: 'docs' }, 'route.path'],
    ['per-route options of an unknown proxy', { ...ok, proxyOptions: { haproxy: { timeout: '5s' } } as ProxyRoute['proxyOptions'] }, 'route.proxyOptions.haproxy'],
    ['an address that is not IP:port', { ...ok, servers: [{ address: 'web:80', containerId: 'a' }] }, 'servers[0].address'],
    ['a zero weight', { ...ok, servers: [{ address: '127.0.0.1:1', containerId: 'a', weight: 0 }] }, 'servers[0].weight'],
    ['a fractional weight', { ...ok, servers: [{ address: '127.0.0.1:1', containerId: 'a', weight: 1.5 }] }, 'servers[0].weight'],
    [
      'the same container and address twice',
      {
        ...ok,
        servers: [
          { address: '127.0.0.1:1', containerId: 'a' },
          { address: '127.0.0.1:1', containerId: 'a' },
        ],
      },
      'servers[1]',
    ],
  ];
  for (const [what, route, field] of bad) {
    it(`refuses ${what}, naming app and field`, () => {
      const problems = routeProblems(route);
      assert.deepEqual(
        problems.map((p) => [p.app, p.field]),
        [['web', field]],
      );
      assert.ok(problems[0]!.message.length > 20, 'says what is expected');
    });
  }

  it('refuses two apps on one host and path, naming the one that has it', () => {
    const problems = configProblems({ env: 'e', routes: [ok, { ...ok, app: 'site', path: '/' }, { ...ok, app: 'docs', path: '/docs/' }, { ...ok, app: 'docs2', path: '/docs' }] });
    assert.deepEqual(
      problems.map((p) => `${p.app}: ${p.message}`),
      ['site: host web.test path / is already routed to app "web"', 'docs2: host web.test path /docs is already routed to app "docs"'],
    );
  });

  it('names the nginx directives HAProxy ignores (they are nginx’s: a warning, not a refusal)', () => {
    assert.deepEqual(ignoredNginxOptions({ ...ok, proxyOptions: { nginx: { gzip: 'on', client_max_body_size: '1m' } } }), ['client_max_body_size', 'gzip']);
    assert.deepEqual(ignoredNginxOptions(ok), []);
    assert.deepEqual(fields({ ...ok, proxyOptions: { nginx: { gzip: 'on' } } }), []);
  });
});
