import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { probeOnce } from '../../src/health/probe.js';
import { decodeHealthCheckResponse, encodeHealthCheckRequest } from '../../src/health/providers/grpc.js';
import { BUILTIN_PROTOCOLS, HealthProviders, healthProviders, type HealthCheckProvider, type HealthCheckTarget } from '../../src/health/providers/index.js';
import type { BerthError } from '../../src/errors.js';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource, MASK, SecretValue } from '../../src/render/secrets.js';
import type { HealthCheckSpec } from '../../src/render/types.js';
import type { ExecResult, LiveContainer } from '../../src/runtime/types.js';
import { scriptedRuntime } from '../support/fakes.js';
import { startGrpcHealthServer, type GrpcHealthServer } from '../support/grpc-health.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

// Every protocol against a real local server: http and tcp (node), gRPC (@grpc/grpc-js), Redis (redis-server).

type Replica = Pick<LiveContainer, 'id' | 'name' | 'ports'>;

/** A replica whose container port `containerPort` is published at 127.0.0.1:`hostPort`. */
function replica(containerPort: number, hostPort: number): Replica {
  return { id: 'c1', name: 'env-app-0-abc', ports: [{ containerPort, hostPort, hostIp: '127.0.0.1', protocol: 'tcp' }] };
}

/** A health check spec with the thresholds filled in. */
function spec(check: Partial<HealthCheckSpec>, timeoutSeconds = 1): HealthCheckSpec {
  return { intervalSeconds: 1, timeoutSeconds, failureThreshold: 1, successThreshold: 1, startPeriodSeconds: 0, timeoutTotalSeconds: 10, ...check };
}

const runtime = scriptedRuntime({});

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await close(s);
  return port;
}

describe('health-check providers: the registry', () => {
  it('holds the five built-ins, in the process default too', () => {
    assert.deepEqual([...BUILTIN_PROTOCOLS].sort(), ['exec', 'grpc', 'http', 'redis', 'tcp']);
    assert.deepEqual(healthProviders.list().map((p) => [p.protocol, p.owner]), [['exec', 'builtin'], ['grpc', 'builtin'], ['http', 'builtin'], ['redis', 'builtin'], ['tcp', 'builtin']]);
  });

  it('adds a plugin provider, and takes it away again', () => {
    const providers = new HealthProviders();
    const amqp: HealthCheckProvider = { protocol: 'amqp', check: async () => ({ status: 'healthy', latencyMs: 1, message: 'ok' }) };
    const remove = providers.register(amqp, 'mq');
    assert.equal(providers.get('amqp'), amqp);
    assert.deepEqual(providers.list().find((p) => p.protocol === 'amqp'), { protocol: 'amqp', owner: 'mq' });
    assert.equal(providers.describePlugins(), 'mq (amqp)');
    remove();
    assert.equal(providers.get('amqp'), undefined);
    assert.equal(providers.describePlugins(), 'none');
  });

  it('refuses a plugin taking a built-in protocol or another plugin\'s, and bad names', () => {
    const providers = new HealthProviders();
    const fake = (protocol: string): HealthCheckProvider => ({ protocol, check: async () => ({ status: 'healthy', latencyMs: 0, message: '' }) });
    for (const name of BUILTIN_PROTOCOLS) {
      assert.throws(() => providers.register(fake(name), 'evil'), (err: BerthError) => err.code === 'E_CONFLICT' && /built-in protocol/.test(err.message));
      assert.equal(providers.list().find((p) => p.protocol === name)?.owner, 'builtin', `${name} is still the built-in`);
    }
    providers.register(fake('amqp'), 'mq');
    assert.throws(() => providers.register(fake('amqp'), 'other'), (err: BerthError) => err.code === 'E_CONFLICT' && /already provided by plugin "mq"/.test(err.message));
    assert.throws(() => providers.register(fake('Bad Name'), 'mq'), (err: BerthError) => err.code === 'E_USAGE');
    assert.throws(() => providers.register(fake('x'), 'builtin'), (err: BerthError) => err.code === 'E_USAGE');
  });
});

describe('health-check providers: the probe picks and bounds the provider', () => {
  it('a protocol nobody provides fails, naming the plugins there are', async () => {
    const providers = new HealthProviders();
    const hc = spec({ provider: { protocol: 'amqp', port: 5672, config: {} } });
    let r = await probeOnce(hc, replica(5672, 1), runtime, providers);
    assert.equal(r.ok, false);
    assert.equal(r.message, 'no health-check provider for protocol "amqp" (plugins enabled: none)');
    providers.register({ protocol: 'mqtt', check: async () => ({ status: 'healthy', latencyMs: 0, message: '' }) }, 'broker');
    r = await probeOnce(hc, replica(5672, 1), runtime, providers);
    assert.equal(r.message, 'no health-check provider for protocol "amqp" (plugins enabled: broker (mqtt))');
  });

  it('hands a plugin provider the published address, its config and the timeout', async () => {
    const providers = new HealthProviders();
    const seen: HealthCheckTarget[] = [];
    providers.register({ protocol: 'amqp', check: async (t) => (seen.push(t), { status: 'unhealthy', latencyMs: 3, message: 'queue full' }) }, 'mq');
    const r = await probeOnce(spec({ provider: { protocol: 'amqp', port: 5672, config: { vhost: '/' } } }, 2), replica(5672, 40123), runtime, providers);
    assert.deepEqual(r, { ok: false, message: 'queue full', latencyMs: 3 });
    assert.equal(seen.length, 1);
    const t = seen[0]!;
    assert.deepEqual({ host: t.host, port: t.port, containerPort: t.containerPort, config: t.config, timeoutMs: t.timeoutMs, container: t.container }, { host: '127.0.0.1', port: 40123, containerPort: 5672, config: { vhost: '/' }, timeoutMs: 2000, container: { id: 'c1', name: 'env-app-0-abc' } });
  });

  it('a provider that throws, answers nonsense or never answers is a failed check, not a stuck one', async () => {
    const providers = new HealthProviders();
    providers.register({ protocol: 'boom', check: async () => Promise.reject(new Error('kaput')) }, 'p');
    providers.register({ protocol: 'odd', check: async () => ({ status: 'fine' as never, latencyMs: NaN, message: 'hm' }) }, 'p');
    providers.register({ protocol: 'hang', check: () => new Promise(() => {}) }, 'p');
    const on = (protocol: string) => probeOnce(spec({ provider: { protocol, config: {} } }, 0.1), replica(1, 1), runtime, providers);
    assert.deepEqual(await on('boom').then((r) => [r.ok, r.message]), [false, 'boom check failed: kaput']);
    const odd = await on('odd');
    assert.equal(odd.ok, false);
    assert.ok(Number.isFinite(odd.latencyMs), 'latency measured by the probe instead');
    const started = performance.now();
    const hang = await on('hang');
    assert.equal(hang.ok, false);
    assert.match(hang.message, /hang check timed out after 100 ms \(the provider did not answer\)/);
    assert.ok(performance.now() - started < 3000);
  });

  it('a port the replica does not publish fails before any provider runs', async () => {
    const r = await probeOnce(spec({ grpc: { port: 50051, service: '' } }), replica(8080, 1), runtime);
    assert.deepEqual(r, { ok: false, message: 'port 50051 is not published by env-app-0-abc', latencyMs: 0 });
  });
});

describe('health-check providers: http, tcp, exec', () => {
  let server: http.Server;
  let port: number;
  before(async () => {
    server = http.createServer((req, res) => {
      res.statusCode = req.url === '/health' ? 200 : req.url === '/slow' ? 200 : 500;
      if (req.url === '/slow') setTimeout(() => res.end('late'), 1500);
      else res.end();
    });
    port = await listen(server);
  });
  after(async () => {
    server.closeAllConnections();
    await close(server);
  });

  it('http: 2xx healthy, 5xx unhealthy, expectStatus honoured, latency measured', async () => {
    const ok = await probeOnce(spec({ http: { path: '/health', port: 8080 } }), replica(8080, port), runtime);
    assert.equal(ok.ok, true);
    assert.equal(ok.message, 'GET /health → 200');
    assert.equal(typeof ok.latencyMs, 'number');
    const bad = await probeOnce(spec({ http: { path: '/broken', port: 8080 } }), replica(8080, port), runtime);
    assert.deepEqual([bad.ok, bad.message], [false, 'GET /broken → 500']);
    const expected = await probeOnce(spec({ http: { path: '/broken', port: 8080, expectStatus: [500] } }), replica(8080, port), runtime);
    assert.equal(expected.ok, true);
  });

  it('http: a slow answer times out within the timeout', async () => {
    const started = performance.now();
    const r = await probeOnce(spec({ http: { path: '/slow', port: 8080 } }, 0.2), replica(8080, port), runtime);
    assert.equal(r.ok, false);
    assert.match(r.message, /GET \/slow on 127\.0\.0\.1:\d+: timed out after 200 ms/);
    assert.ok(performance.now() - started < 1000);
  });

  it('tcp: open is healthy, refused is not', async () => {
    const open = await probeOnce(spec({ tcp: { port: 8080 } }), replica(8080, port), runtime);
    assert.deepEqual([open.ok, open.message], [true, `tcp 127.0.0.1:${port} open`]);
    const closed = await freePort();
    const refused = await probeOnce(spec({ tcp: { port: 8080 } }), replica(8080, closed), runtime);
    assert.equal(refused.ok, false);
    assert.match(refused.message, /ECONNREFUSED/);
  });

  it('exec: runs the command in the replica, exit 0 is healthy', async () => {
    const calls: [string, string[], number][] = [];
    const results: ExecResult[] = [{ exitCode: 0, output: '' }, { exitCode: 1, output: 'db down' }];
    const rt = { ...scriptedRuntime({}), exec: async (id: string, command: string[], timeoutMs: number) => (calls.push([id, command, timeoutMs]), results.shift()!) };
    const hc = spec({ exec: { command: ['check', '--quick'] } }, 3);
    assert.deepEqual(await probeOnce(hc, replica(1, 1), rt).then((r) => [r.ok, r.message]), [true, 'exec check --quick → exit 0']);
    assert.deepEqual(await probeOnce(hc, replica(1, 1), rt).then((r) => [r.ok, r.message]), [false, 'exec check --quick → exit 1: db down']);
    assert.deepEqual(calls[0], ['c1', ['check', '--quick'], 3000]);
  });
});

describe('health-check providers: grpc (a real grpc-js health server)', () => {
  let server: GrpcHealthServer;
  before(async () => {
    server = await startGrpcHealthServer({ services: { 'berth.test.Echo': 'SERVING' } });
  });
  after(async () => {
    await server.close();
  });
  const check = (service = '', timeoutSeconds = 1) => probeOnce(spec({ grpc: { port: 50051, service } }, timeoutSeconds), replica(50051, server.port), runtime);

  it('SERVING is healthy; NOT_SERVING, SERVICE_UNKNOWN and UNKNOWN are not, by name', async () => {
    const checks = server.checks;
    const serving = await check();
    assert.deepEqual([serving.ok, serving.message], [true, `grpc health 127.0.0.1:${server.port} (server): SERVING`]);
    for (const status of ['NOT_SERVING', 'SERVICE_UNKNOWN', 'UNKNOWN'] as const) {
      server.set(status);
      const r = await check();
      assert.deepEqual([r.ok, r.message], [false, `grpc health 127.0.0.1:${server.port} (server): ${status}`]);
    }
    server.set('SERVING');
    assert.equal((await check()).ok, true, 'back to SERVING');
    assert.equal(server.checks - checks, 5, 'every probe reached the server');
  });

  it('asks about the named service; an unknown one is NOT_FOUND', async () => {
    assert.equal((await check('berth.test.Echo')).ok, true);
    server.set('NOT_SERVING', 'berth.test.Echo');
    const down = await check('berth.test.Echo');
    assert.deepEqual([down.ok, down.message], [false, `grpc health 127.0.0.1:${server.port} service "berth.test.Echo": NOT_SERVING`]);
    assert.equal((await check()).ok, true, 'the server as a whole is still SERVING');
    const missing = await check('no.Such');
    assert.equal(missing.ok, false);
    assert.match(missing.message, /service "no\.Such": NOT_FOUND: unknown service "no\.Such"$/);
    server.set('SERVING', 'berth.test.Echo');
  });

  it('a slow server is DEADLINE_EXCEEDED within the timeout; nothing listening is UNAVAILABLE', async () => {
    server.setDelay(1000);
    const started = performance.now();
    const slow = await check('', 0.2);
    server.setDelay(0);
    assert.equal(slow.ok, false);
    assert.match(slow.message, /DEADLINE_EXCEEDED|timed out after 200 ms/);
    assert.ok(performance.now() - started < 900, `took ${performance.now() - started} ms`);
    const nothing = await probeOnce(spec({ grpc: { port: 50051, service: '' } }), replica(50051, await freePort()), runtime);
    assert.equal(nothing.ok, false);
    assert.match(nothing.message, /UNAVAILABLE/);
  });

  it('a server that is not gRPC (plain HTTP/1) is unhealthy', async () => {
    const plain = http.createServer((_, res) => res.end('hello'));
    const port = await listen(plain);
    try {
      const r = await probeOnce(spec({ grpc: { port: 50051, service: '' } }), replica(50051, port), runtime);
      assert.equal(r.ok, false);
      assert.match(r.message, /^grpc health 127\.0\.0\.1:\d+ \(server\): [A-Z_]+: /);
    } finally {
      plain.closeAllConnections();
      await close(plain);
    }
  });

  it('codec: the request is HealthCheckRequest, the response decoder skips unknown fields', () => {
    assert.deepEqual(encodeHealthCheckRequest(''), Buffer.alloc(0));
    assert.deepEqual(encodeHealthCheckRequest('a.B'), Buffer.from([0x0a, 3, 0x61, 0x2e, 0x42]));
    assert.equal(encodeHealthCheckRequest('x'.repeat(200)).subarray(0, 3).toString('hex'), '0ac801', 'a two-byte length');
    assert.equal(decodeHealthCheckResponse(Buffer.alloc(0)), 0, 'absent status is UNKNOWN');
    assert.equal(decodeHealthCheckResponse(Buffer.from([0x08, 0x01])), 1);
    // field 2 (string "hi") and field 3 (fixed32) before the status
    assert.equal(decodeHealthCheckResponse(Buffer.from([0x12, 2, 0x68, 0x69, 0x1d, 1, 2, 3, 4, 0x08, 0x02])), 2);
    assert.throws(() => decodeHealthCheckResponse(Buffer.from([0x12, 9, 0x68])), /truncated/);
  });
});

describe('health-check providers: redis (a real redis-server)', () => {
  let child: ChildProcess | undefined;
  let dir: string;
  let port: number;
  let admin: Redis;
  const password = 'pw-7f3a-never-logged';
  const secret = (value: string) => new SecretValue('redis-password', value);
  const check = (pw?: SecretValue, timeoutSeconds = 1, at = port) => probeOnce(spec({ redis: { port: 6379, ...(pw && { password: pw }) } }, timeoutSeconds), replica(6379, at), runtime);

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-redis-'));
    port = await freePort();
    const server = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    child = server;
    // A cancelled run skips `after`: the server must not outlive the test process either way.
    process.once('exit', () => server.kill('SIGKILL'));
    const deadline = Date.now() + 10_000;
    for (;;) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
      if (up) break;
      if (Date.now() > deadline) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    admin = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 });
    await admin.connect();
  });
  after(async () => {
    admin?.disconnect();
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('PING without a password: PONG is healthy', async () => {
    const r = await check();
    assert.deepEqual([r.ok, r.message], [true, `redis 127.0.0.1:${port}: PONG`]);
    assert.equal(typeof r.latencyMs, 'number');
  });

  it('with requirepass: no password is NOAUTH, a wrong one WRONGPASS, the right one PONG; no message holds a password', async () => {
    await admin.config('SET', 'requirepass', password);
    await admin.auth(password);
    try {
      const none = await check();
      assert.equal(none.ok, false);
      assert.match(none.message, /PING → NOAUTH Authentication required/);
      const wrong = await check(secret('wrong-guess-123'));
      assert.equal(wrong.ok, false);
      assert.match(wrong.message, /AUTH failed: WRONGPASS/);
      assert.ok(!wrong.message.includes('wrong-guess-123'));
      const right = await check(secret(password));
      assert.deepEqual([right.ok, right.message], [true, `redis 127.0.0.1:${port}: PONG`]);
      for (const m of [none.message, wrong.message, right.message]) assert.ok(!m.includes(password));
    } finally {
      await admin.config('SET', 'requirepass', '');
    }
  });

  it('an unresolved password secret fails without sending anything', async () => {
    const r = await check(new SecretValue('redis-password', undefined));
    assert.deepEqual([r.ok, r.message], [false, `redis 127.0.0.1:${port}: password secret "redis-password" has no value`]);
  });

  it('a server that accepts but never answers times out; one that echoes the password back has it masked', async () => {
    // Reads (so it sees the probe hang up) but never answers.
    const silent = net.createServer((s) => s.resume());
    const silentPort = await listen(silent);
    const echo = net.createServer((s) => s.on('data', (d) => s.write(`-ERR you said ${d.toString().replace(/\r\n/g, ' ')}\r\n-ERR again\r\n`)));
    const echoPort = await listen(echo);
    try {
      const started = performance.now();
      const quiet = await check(undefined, 0.2, silentPort);
      assert.deepEqual([quiet.ok, quiet.message], [false, `redis 127.0.0.1:${silentPort}: timed out after 200 ms`]);
      assert.ok(performance.now() - started < 1000);
      const echoed = await check(secret(password), 1, echoPort);
      assert.equal(echoed.ok, false);
      assert.match(echoed.message, /AUTH failed: ERR you said/);
      assert.ok(!echoed.message.includes(password), echoed.message);
      assert.ok(echoed.message.includes(MASK));
    } finally {
      await Promise.all([close(silent), close(echo)]);
    }
  });
});

describe('health-check providers: the app spec', () => {
  const render = (health: string, secrets: Record<string, string> = {}, ports = '[{ containerPort: 8080 }, { containerPort: 50051 }, { containerPort: 6379 }]') =>
    renderEnvironment(memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', `  healthCheck: ${health}\n`).replace('ports: [{ containerPort: 8080 }]', `ports: ${ports}`) }), 'staging', { secrets: envSecretSource(secrets) });

  it('grpc: service defaults to the server as a whole; tls may only be false', () => {
    const r = render('{ grpc: { port: 50051 } }');
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    assert.deepEqual(r.state.apps[0]!.spec.healthCheck?.grpc, { port: 50051, service: '' });
    const tls = render('{ grpc: { port: 50051, tls: true } }');
    assert.ok(!tls.ok && tls.problems.some((p) => /tls: expected false, got true/.test(p.message)), JSON.stringify(!tls.ok && tls.problems));
  });

  it('redis: password is a declared secretRef, resolved and masked', () => {
    const r = render('{ redis: { port: 6379, password: { secretRef: db-password } } }', { BERTH_SECRET_DB_PASSWORD: 'hunter2' });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    const pw = r.state.apps[0]!.spec.healthCheck?.redis?.password;
    assert.ok(pw instanceof SecretValue);
    assert.equal(pw.reveal(), 'hunter2');
    assert.ok(!JSON.stringify(r.state).includes('hunter2'), 'the rendered state never prints the password');
    const undeclared = render('{ redis: { port: 6379, password: { secretRef: db-pasword } } }');
    assert.ok(!undeclared.ok);
    assert.deepEqual(undeclared.problems.map((p) => [p.code, p.pointer, /secretRef "db-pasword" \(healthCheck\.redis\.password\) is not declared.*did you mean "db-password"/.test(p.message)]), [['secret-missing', '/spec/healthCheck/redis/password/secretRef', true]]);
    const unset = render('{ redis: { port: 6379, password: { secretRef: db-password } } }');
    assert.ok(!unset.ok && /secret "db-password" \(healthCheck\.redis\.password\) has no value/.test(unset.problems[0]!.message));
  });

  it('provider: any plugin protocol, not a built-in name; its port must be published', () => {
    const r = render('{ provider: { protocol: amqp, port: 8080, config: { queue: jobs } } }');
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    assert.deepEqual(r.state.apps[0]!.spec.healthCheck?.provider, { protocol: 'amqp', port: 8080, config: { queue: 'jobs' } });
    const builtin = render('{ provider: { protocol: grpc, port: 50051 } }');
    assert.ok(!builtin.ok && builtin.problems.some((p) => /provider\.protocol: "grpc" is not valid/.test(p.message)), JSON.stringify(!builtin.ok && builtin.problems));
    const unpublished = render('{ provider: { protocol: amqp, port: 5672 } }');
    assert.ok(!unpublished.ok && unpublished.problems.some((p) => p.pointer === '/spec/healthCheck/provider/port' && /health check port 5672 is not published/.test(p.message)));
    const grpcUnpublished = render('{ grpc: { port: 50052 } }');
    assert.ok(!grpcUnpublished.ok && grpcUnpublished.problems.some((p) => p.pointer === '/spec/healthCheck/grpc/port'));
  });

  it('exactly one protocol; an existing http check renders as before', () => {
    const two = render('{ http: { port: 8080 }, grpc: { port: 50051 } }');
    assert.ok(!two.ok && two.problems.some((p) => /set exactly one of http, tcp, exec, grpc, redis, provider/.test(p.message)), JSON.stringify(!two.ok && two.problems));
    const old = renderEnvironment(memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  healthCheck: { http: { path: /health, port: 8080 } }\n') }), 'staging', { secrets: envSecretSource({}) });
    assert.ok(old.ok);
    assert.deepEqual(Object.keys(old.state.apps[0]!.spec.healthCheck!).sort(), ['failureThreshold', 'http', 'intervalSeconds', 'startPeriodSeconds', 'successThreshold', 'timeoutSeconds', 'timeoutTotalSeconds']);
    // The check is not part of the container: switching protocols re-gates, it never recreates.
    const grpc = render('{ grpc: { port: 50051 } }', {}, '[{ containerPort: 8080 }]'.replace('8080', '8080 }, { containerPort: 50051'));
    assert.ok(grpc.ok);
    const plain = render('{ http: { port: 8080 } }', {}, '[{ containerPort: 8080 }, { containerPort: 50051 }]');
    assert.ok(plain.ok);
    assert.equal(grpc.state.apps[0]!.specHash, plain.state.apps[0]!.specHash);
  });
});
