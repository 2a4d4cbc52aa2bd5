import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Command } from 'commander';
import { addDriverOptions, createDrivers, type DriverOptions } from '../../src/cli/drivers.js';
import { haproxyServers, parseHaproxyState } from '../../src/runtime/haproxy/config.js';
import { HaproxyDriver, type HaproxyOptions } from '../../src/runtime/haproxy/driver.js';
import { backendName } from '../../src/runtime/haproxy/names.js';
import type { RuntimeApi } from '../../src/runtime/haproxy/runtime-api.js';
import type { ProxyConfig, ProxyRoute } from '../../src/runtime/types.js';

interface FakeServer {
  ip: string;
  port: number;
  admin: number;
  weight: number;
  /** Sessions under way; each `show stat` ends one. */
  sessions: number;
}

/**
 * HAProxy as its Runtime API and its reload behave, in memory: a reload loads the model berth
 * embedded in the file (a new worker pid), and the Runtime API edits what runs.
 */
class FakeHaproxy implements RuntimeApi {
  pid = 100;
  up = true;
  readonly backends = new Map<string, Map<string, FakeServer>>();
  readonly sent: string[] = [];
  /** Sessions a server about to be drained still has (by server name). */
  readonly busy = new Map<string, number>();

  constructor(readonly file: string) {}

  reload(): void {
    this.pid++;
    this.backends.clear();
    const model = parseHaproxyState(readFileSync(this.file, 'utf8'));
    for (const r of model?.routes ?? []) {
      this.backends.set(backendName(model!.env, r.app), new Map(haproxyServers(r.servers).map((s) => [s.name, { ip: s.ip, port: s.port, admin: 0, weight: s.weight, sessions: 0 }])));
    }
  }

  async send(command: string): Promise<string> {
    if (!this.up) throw new Error('HAProxy admin socket /run/haproxy/admin.sock: connect ECONNREFUSED');
    this.sent.push(command);
    if (command === 'show info') return `Name: HAProxy\nPid: ${this.pid}`;
    if (command === 'show backend') return ['# name', ...this.backends.keys()].join('\n');
    if (command === 'show servers state') {
      const rows = [...this.backends].flatMap(([be, servers]) => [...servers].map(([name, s], i) => `1 ${be} ${i + 1} ${name} ${s.ip} 2 ${s.admin} ${s.weight} ${s.weight} 0 1 0 2 0 0 0 0 - ${s.port} - 0 0 - - 0`));
      return ['1', '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port', ...rows].join('\n');
    }
    let m = /^show stat (\S+) 4 -1$/.exec(command);
    if (m) {
      const rows = [...(this.backends.get(m[1]!) ?? [])].map(([name, s]) => {
        const row = `${m![1]},${name},0,0,${s.sessions}`;
        if (s.sessions > 0) s.sessions--;
        return row;
      });
      return ['# pxname,svname,qcur,qmax,scur', ...rows].join('\n');
    }
    m = /^add server (\S+)\/(\S+) (\S+):(\d+) weight (\d+)$/.exec(command);
    if (m) {
      this.backends.get(m[1]!)!.set(m[2]!, { ip: m[3]!, port: Number(m[4]), admin: 1, weight: Number(m[5]), sessions: 0 });
      return 'New server registered.';
    }
    m = /^(set server|del server|shutdown sessions server) (\S+)\/(\S+)(?: (state|weight) (\S+))?$/.exec(command);
    const server = m && this.backends.get(m[2]!)?.get(m[3]!);
    if (!m || !server) return 'No such server.';
    if (m[1] === 'del server') {
      if (!(server.admin & 1)) return 'Only servers in maintenance mode can be deleted.';
      if (server.sessions > 0) return 'Server still has connections attached to it, cannot remove it.';
      this.backends.get(m[2]!)!.delete(m[3]!);
      return 'Server deleted.';
    }
    if (m[1] === 'shutdown sessions server') server.sessions = 0;
    else if (m[4] === 'weight') server.weight = Number(m[5]);
    else if (m[5] === 'drain') {
      server.admin = 8;
      server.sessions = this.busy.get(m[3]!) ?? 0;
    } else server.admin = m[5] === 'maint' ? 1 : 0;
    return '';
  }
}

const server = (n: number) => ({ address: `127.0.0.1:${3000 + n}`, containerId: `c${n}${'0'.repeat(20)}` });
const web = (...n: number[]): ProxyRoute => ({ app: 'web', host: 'web.test', path: '/', stripPrefix: false, proxyOptions: {}, servers: n.map(server) });
const docs: ProxyRoute = { app: 'docs', host: 'web.test', path: '/docs', stripPrefix: true, proxyOptions: {}, servers: [server(9)] };

describe('HaproxyDriver (fake HAProxy: Runtime API and reloads in memory)', () => {
  let dir: string;
  let file: string;
  let haproxy: FakeHaproxy;
  let commands: string[];
  let checkResult: { ok: boolean; output: string };
  let reloadResult: { ok: boolean; output: string };
  let warnings: string[];
  let clock: number;

  const driver = (extra: Partial<HaproxyOptions> = {}) =>
    new HaproxyDriver({
      configFile: file,
      socket: '/run/haproxy/admin.sock',
      bind: '127.0.0.1:8080',
      checkCmd: ['haproxy', '-c', '-f', '{config}'],
      reloadCmd: ['reload'],
      api: haproxy,
      minReloadIntervalMs: 0,
      runCommand: async (argv) => {
        commands.push(argv.join(' '));
        if (argv[0] === 'reload' && reloadResult.ok) haproxy.reload();
        return argv[0] === 'reload' ? reloadResult : checkResult;
      },
      now: () => clock,
      sleep: async (ms) => void (clock += ms),
      onWarning: (m) => warnings.push(m),
      ...extra,
    });
  const config = (...routes: ProxyRoute[]): ProxyConfig => ({ env: 'prod', routes });
  const mutations = () => haproxy.sent.filter((c) => !c.startsWith('show '));

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-haproxy-unit-'));
    file = path.join(dir, 'berth.cfg');
    haproxy = new FakeHaproxy(file);
    commands = [];
    checkResult = { ok: true, output: 'Configuration file is valid' };
    reloadResult = { ok: true, output: '' };
    warnings = [];
    clock = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a new route is written, tested with {config} filled in, and reloaded; re-applying it changes nothing', async () => {
    const d = driver();
    assert.deepEqual(await d.apply(config(web(1))), { changed: true });
    assert.deepEqual(commands, [`haproxy -c -f ${file}`, 'reload']);
    assert.equal(d.reloads, 1);
    assert.equal(haproxy.pid, 101);
    assert.deepEqual(await d.read('prod'), { ...config(web(1)), present: true });
    assert.deepEqual(await d.apply(config(web(1))), { changed: false });
    assert.equal(d.reloads, 1);
    assert.deepEqual(mutations(), []);
  });

  it('a rolling step (add one, remove one) goes through the Runtime API without a reload, and the file follows', async () => {
    const d = driver();
    await d.apply(config(web(1, 2)));
    haproxy.sent.length = 0;
    commands = [];
    const be = backendName('prod', 'web');
    const [s1, s3] = haproxyServers([server(1), server(3)]).sort((a, b) => a.port - b.port);
    haproxy.busy.set(s1!.name, 3);
    assert.deepEqual(await d.apply(config(web(2, 3))), { changed: true });
    assert.equal(d.reloads, 1, 'no reload');
    assert.equal(d.runtimeUpdates, 1);
    assert.equal(haproxy.pid, 101, 'the same worker');
    assert.deepEqual(commands, [`haproxy -c -f ${file}`], 'tested, not reloaded');
    assert.deepEqual(mutations(), [
      `add server ${be}/${s3!.name} 127.0.0.1:3003 weight 1`,
      `set server ${be}/${s3!.name} state ready`,
      `set server ${be}/${s1!.name} state drain`,
      `set server ${be}/${s1!.name} state maint`,
      `del server ${be}/${s1!.name}`,
    ]);
    // Deleted only once its sessions ended: three polls saw it busy.
    const drained = haproxy.sent.indexOf(`set server ${be}/${s1!.name} state maint`);
    assert.equal(haproxy.sent.slice(0, drained).filter((c) => c.startsWith('show stat')).length, 4);
    assert.deepEqual([...haproxy.backends.get(be)!.keys()].sort(), haproxyServers([server(2), server(3)]).map((s) => s.name).sort());
    assert.deepEqual(await d.read('prod'), { ...config(web(2, 3)), present: true }, 'the file says what runs: no drift');
  });

  it('weights change at runtime (scaled into 256)', async () => {
    const d = driver();
    await d.apply(config(web(1, 2)));
    const weighted = web(1, 2);
    weighted.servers[0]!.weight = 500;
    weighted.servers[1]!.weight = 100;
    await d.apply(config(weighted));
    assert.equal(d.reloads, 1);
    assert.deepEqual([...haproxy.backends.get(backendName('prod', 'web'))!.values()].map((s) => s.weight).sort((a, b) => a - b), [51, 256]);
  });

  it('a server whose sessions outlast the drain timeout has them shut, then goes', async () => {
    const d = driver({ drainTimeoutMs: 1000 });
    await d.apply(config(web(1, 2)));
    const [s1] = haproxyServers([server(1)]);
    haproxy.busy.set(s1!.name, 1_000_000);
    await d.apply(config(web(2)));
    assert.ok(clock >= 1000, 'waited for the drain timeout');
    assert.ok(mutations().some((c) => c.startsWith('shutdown sessions server')));
    assert.equal(haproxy.backends.get(backendName('prod', 'web'))!.has(s1!.name), false);
  });

  it('refuses a config haproxy -c rejects: the old file comes back, nothing reloads, haproxy’s words are in the error', async () => {
    const d = driver();
    await d.apply(config(web(1)));
    const before = readFileSync(file, 'utf8');
    checkResult = { ok: false, output: "[ALERT] (1) : config : parsing [berth.cfg:40] : unknown keyword 'bogus'" };
    await assert.rejects(d.apply(config(web(1), docs)), (err: Error & { code?: string; context?: Record<string, unknown> }) => {
      assert.equal(err.code, 'E_NGINX_CONFIG');
      assert.match(err.message, /unknown keyword 'bogus'/);
      assert.equal(err.context?.file, file);
      return true;
    });
    assert.equal(readFileSync(file, 'utf8'), before);
    assert.equal(d.reloads, 1);
  });

  it('a failed reload restores the old file and is E_NGINX_COMMAND (not a refusal)', async () => {
    const d = driver();
    await d.apply(config(web(1)));
    const before = readFileSync(file, 'utf8');
    reloadResult = { ok: false, output: 'Failed to reload haproxy.service: Unit haproxy.service not loaded.' };
    await assert.rejects(d.apply(config(web(1), docs)), { code: 'E_NGINX_COMMAND' });
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  it('refuses a route HAProxy cannot serve before writing anything, naming app and field', async () => {
    const d = driver();
    await assert.rejects(d.apply(config({ ...web(1), host: 'web.test evil' })), (err: Error & { code?: string; context?: Record<string, unknown> }) => {
      assert.equal(err.code, 'E_NGINX_CONFIG');
      assert.equal(err.context?.app, 'web');
      assert.equal(err.context?.field, 'route.host');
      return true;
    });
    assert.deepEqual(commands, []);
    assert.throws(() => readFileSync(file));
  });

  it('warns once that route.nginx is ignored (those directives are nginx’s)', async () => {
    const d = driver();
    const withNginx = { ...web(1), proxyOptions: { nginx: { client_max_body_size: '1m' } } };
    await d.apply(config(withNginx));
    await d.apply(config({ ...withNginx, servers: [server(2)] }));
    assert.deepEqual(warnings, ['haproxy ignores route.nginx of app "web" in environment "prod" (client_max_body_size): those are nginx directives']);
  });

  it('reloads instead when the Runtime API cannot be used, and says why', async () => {
    const d = driver();
    await d.apply(config(web(1)));
    haproxy.up = false;
    await d.apply(config(web(2)));
    haproxy.up = true;
    assert.equal(d.reloads, 2);
    assert.match(warnings[0] ?? '', /reloading instead of using the Runtime API for environment "prod": HAProxy admin socket .* ECONNREFUSED/);
  });

  it('reports servers changed through the socket by hand as drift; the next apply puts them back without a reload', async () => {
    const d = driver();
    await d.apply(config(web(1, 2)));
    const [s1] = haproxyServers([server(1)]);
    await haproxy.send(`set server ${backendName('prod', 'web')}/${s1!.name} state maint`);
    const read = await d.read('prod');
    assert.match(read.drift ?? '', /^haproxy runtime differs from berth's file: app web: server .* is in maintenance/);
    assert.deepEqual(await d.apply({ env: 'prod', routes: read.routes }), { changed: true });
    assert.equal(d.reloads, 1);
    assert.equal((await d.read('prod')).drift, undefined);
  });

  it('reports a hand edit of the file as drift, and the next apply rewrites it with a reload', async () => {
    const d = driver();
    await d.apply(config(web(1)));
    writeFileSync(file, readFileSync(file, 'utf8').replace('balance leastconn', 'balance roundrobin'));
    const read = await d.read('prod');
    assert.match(read.drift ?? '', /^haproxy file edited: line \d+ is "balance roundrobin", berth wrote "balance leastconn"/);
    await d.apply({ env: 'prod', routes: read.routes });
    assert.equal(d.reloads, 2);
    assert.equal((await d.read('prod')).drift, undefined);
  });

  it('one file, one environment: another environment is refused while this one has routes, welcome once it is removed', async () => {
    const d = driver();
    await d.apply(config(web(1)));
    await assert.rejects(d.apply({ env: 'staging', routes: [web(2)] }), (err: Error & { code?: string }) => err.code === 'E_NGINX_CONFIG' && /holds environment "prod"/.test(err.message));
    assert.match((await d.read('staging')).drift ?? '', /holds environment "prod"/);
    assert.deepEqual(await d.remove('prod'), { changed: true });
    assert.deepEqual(await d.read('prod'), { env: 'prod', routes: [], present: false });
    assert.deepEqual(await d.remove('prod'), { changed: false });
    assert.deepEqual(await d.apply({ env: 'staging', routes: [web(2)] }), { changed: true });
  });

  it('reads a file berth did not write as drift, and no file or an empty one as absent', async () => {
    const d = driver();
    assert.deepEqual(await d.read('prod'), { env: 'prod', routes: [], present: false });
    writeFileSync(file, 'frontend mine\n  bind :80\n');
    assert.match((await d.read('prod')).drift ?? '', /has no readable berth state/);
    // The empty placeholder an operator creates so HAProxy starts before the first apply: nothing yet.
    writeFileSync(file, '');
    assert.deepEqual(await d.read('prod'), { env: 'prod', routes: [], present: false });
  });

  it('watch reports a hand edit of the file, not the driver’s own writes', async () => {
    const d = driver();
    const ac = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const change of d.watch('prod', ac.signal)) seen.push(change.file);
    })();
    await new Promise((r) => setTimeout(r, 100));
    await d.apply(config(web(1)));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(seen, [], 'its own write');
    writeFileSync(file, readFileSync(file, 'utf8') + '# a note\n');
    for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await watching;
    assert.equal(seen[0], file);
  });

  it('never interleaves two applies', async () => {
    const d = driver();
    await d.apply(config(web(1)));
    await Promise.all([d.apply(config(web(1, 2))), d.apply(config(web(2, 3)))]);
    assert.deepEqual(await d.read('prod'), { ...config(web(2, 3)), present: true });
    assert.deepEqual([...haproxy.backends.get(backendName('prod', 'web'))!.keys()].sort(), haproxyServers([server(2), server(3)]).map((s) => s.name).sort());
  });
});

describe('HAProxy selected by the CLI options (--proxy, BERTH_PROXY)', () => {
  const parse = (args: string[], env: NodeJS.ProcessEnv = {}): DriverOptions => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const cmd = addDriverOptions(new Command('apply')).exitOverride().configureOutput({ writeErr: () => {} });
      cmd.parse(args, { from: 'user' });
      return cmd.opts<DriverOptions>();
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  };

  it('defaults to nginx, as before', () => {
    const opts = parse([]);
    assert.equal(opts.proxy, 'nginx');
    assert.equal(createDrivers(opts).proxy.name, 'nginx');
  });

  it('--proxy haproxy builds the HAProxy driver with its options and defaults', () => {
    const opts = parse(['--proxy', 'haproxy', '--haproxy-config', '/tmp/x/berth.cfg', '--haproxy-bind', '127.0.0.1:8081']);
    assert.deepEqual(
      { proxy: opts.proxy, config: opts.haproxyConfig, socket: opts.haproxySocket, bind: opts.haproxyBind, check: opts.haproxyCheckCmd, reload: opts.haproxyReloadCmd, drain: opts.haproxyDrainTimeout },
      { proxy: 'haproxy', config: '/tmp/x/berth.cfg', socket: '/run/haproxy/admin.sock', bind: '127.0.0.1:8081', check: 'haproxy -c -f /etc/haproxy/haproxy.cfg -f {config}', reload: 'systemctl reload haproxy', drain: 30 },
    );
    const proxy = createDrivers(opts).proxy;
    assert.ok(proxy instanceof HaproxyDriver);
    assert.equal(proxy.file(), '/tmp/x/berth.cfg');
  });

  it('reads BERTH_PROXY and BERTH_HAPROXY_* like every option', () => {
    const opts = parse([], { BERTH_PROXY: 'haproxy', BERTH_HAPROXY_SOCKET: '/tmp/a.sock', BERTH_HAPROXY_DRAIN_TIMEOUT: '5' });
    assert.equal(opts.proxy, 'haproxy');
    assert.equal(opts.haproxySocket, '/tmp/a.sock');
    assert.equal(opts.haproxyDrainTimeout, 5);
  });

  it('refuses an unknown proxy, a bind that would add config lines, and a bad drain timeout', () => {
    assert.throws(() => parse(['--proxy', 'traefik']));
    assert.throws(() => parse(['--haproxy-drain-timeout', '-1']), /--haproxy-drain-timeout/);
    assert.throws(() => createDrivers(parse(['--proxy', 'haproxy', '--haproxy-bind', ':80\n  use_backend x'])), (err: Error & { code?: string }) => err.code === 'E_USAGE');
  });
});
