import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { applyPlan } from '../../src/apply/apply.js';
import { plan } from '../../src/plan/plan.js';
import { renderEnvironment } from '../../src/render/render.js';
import { loadDigestKey } from '../../src/render/secrets.js';
import { DockerDriver } from '../../src/runtime/docker/driver.js';
import { HaproxyDriver } from '../../src/runtime/haproxy/driver.js';
import { observe } from '../../src/runtime/observe.js';
import { readDirectoryRevision } from '../../src/source/directory.js';
import { systemClock } from '../../src/util/clock.js';
import { httpdApp } from '../support/apps.js';
import { ensureDemoImages, requireDocker } from '../support/docker.js';
import { copyExampleRepo, removeEnv, SECRETS } from '../support/env.js';
import { haproxyCliEnv, startHaproxy, type TestHaproxy } from '../support/haproxy.js';
import { get } from '../support/nginx.js';
import { runBerth } from '../support/run.js';

/** Steady keep-alive GETs on 127.0.0.1 at about `rate` requests/s until stopped: every answer counted. */
function steadyLoad(port: number, host: string, rate: number, connections = 8): { stop(): Promise<{ ok: number; failed: string[]; bodies: Set<string> }> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const failed: string[] = [];
  const bodies = new Set<string>();
  let ok = 0;
  let running = true;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent, timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          if (res.statusCode === 200) {
            ok++;
            bodies.add(body.trim());
          } else failed.push(`HTTP ${res.statusCode}`);
          resolve();
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        failed.push(err.code ?? err.message);
        resolve();
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
    });
  const gap = (1000 * connections) / rate;
  const worker = async (): Promise<void> => {
    while (running) {
      const t = Date.now();
      await one();
      await new Promise((r) => setTimeout(r, Math.max(0, gap - (Date.now() - t))));
    }
  };
  const workers = Array.from({ length: connections }, worker);
  return {
    stop: async () => {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return { ok, failed, bodies };
    },
  };
}

// Issue #10: the example repo served through HAProxy instead of nginx, end to end (real HAProxy 2.6, real dockerd).
describe('HAProxy proxy: the example repo end to end (real HAProxy, Docker)', () => {
  let docker: Docker | undefined;
  let haproxy: TestHaproxy | undefined;
  let repo: ReturnType<typeof copyExampleRepo>;
  let stateDir: string;
  let cliEnv: NodeJS.ProcessEnv;
  let proxy: HaproxyDriver;
  const warnings: string[] = [];

  /** render → observe → plan → apply in this process, through `proxy` (secrets digested with the CLI's key). */
  const reconcile = async () => {
    const runtime = new DockerDriver({ host: process.env.DOCKER_HOST, hostIp: '127.0.0.1' });
    const rendered = renderEnvironment(await readDirectoryRevision(repo.dir), repo.env, { secrets: { ...SECRETS, digestKey: loadDigestKey(stateDir, true)! } });
    if (!rendered.ok) throw new Error(rendered.problems.map((p) => p.message).join('\n'));
    const planned = plan(rendered.state, await observe(repo.env, runtime, proxy));
    return { planned, report: await applyPlan(planned, { runtime, proxy, clock: systemClock }) };
  };
  const edit = (file: string, from: string, to: string) => {
    const p = path.join(repo.dir, file);
    const text = readFileSync(p, 'utf8');
    assert.ok(text.includes(from), `${file} has no ${from}`);
    writeFileSync(p, text.replace(from, to));
  };

  before(async (t) => {
    docker = await requireDocker(t as never);
    if (!docker) return;
    haproxy = await startHaproxy(t as never);
    if (!haproxy) return;
    await ensureDemoImages(docker);
    repo = copyExampleRepo();
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-state-'));
    cliEnv = { BERTH_STATE_DIR: stateDir, BERTH_SECRET_DB_PASSWORD: 'it-secret', ...haproxyCliEnv(haproxy) };
    proxy = new HaproxyDriver({ configFile: haproxy.configFile, socket: haproxy.socket, bind: haproxy.bind, checkCmd: haproxy.checkCmd, reloadCmd: haproxy.reloadCmd, minReloadIntervalMs: 0, onWarning: (m) => warnings.push(m) });
  });
  after(async () => {
    if (docker && repo) await removeEnv(docker, repo.env);
    await haproxy?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    repo?.cleanup();
  });

  it('berth apply --proxy haproxy (the real CLI) serves every routed app by host name', async (t) => {
    if (!haproxy) return t.skip('no docker/haproxy');
    const r = await runBerth(['apply', '--env', repo.env, '--repo', repo.dir], cliEnv);
    assert.equal(r.code, 0, `berth apply failed:\n${r.stdout}\n${r.stderr}`);
    assert.deepEqual(await get(haproxy.port, 'web.example.test'), { status: 200, body: 'web 1.0\n' });
    assert.deepEqual(await get(haproxy.port, 'api.example.test'), { status: 200, body: 'api 1.0\n' });
    assert.deepEqual(await get(haproxy.port, 'WEB.example.test:80', '/docs'), { status: 200, body: 'docs\n' }, 'host matched without port, in any case; /docs stripped');
    assert.deepEqual(await get(haproxy.port, 'web.example.test', '/docs/'), { status: 200, body: 'docs\n' });
    assert.equal((await get(haproxy.port, 'unknown.example.test')).status, 404);
    // web's route.nginx (client_max_body_size) is nginx's: said (in the JSON log line), not applied, not refused.
    assert.match(r.stderr, /haproxy ignores route\.nginx of app \\"web\\"/);
    const text = readFileSync(haproxy.configFile, 'utf8');
    assert.match(text, /^# Managed by berth \(haproxy config format \d+\) for environment "it/);
    assert.equal((await proxy.read(repo.env)).drift, undefined, 'what runs is what the file says');
  });

  it('re-apply is a no-op: plan has nothing to do, no reload, the file untouched', async (t) => {
    if (!haproxy) return t.skip('no docker/haproxy');
    const pid = await haproxy.workerPid();
    const mtime = statSync(haproxy.configFile).mtimeMs;
    const planned = await runBerth(['plan', '--env', repo.env, '--repo', repo.dir], cliEnv);
    assert.equal(planned.code, 0, `plan found changes:\n${planned.stdout}\n${planned.stderr}`);
    const { report } = await reconcile();
    assert.equal(report.result, 'Succeeded');
    assert.equal(proxy.reloads + proxy.runtimeUpdates, 0);
    assert.equal(await haproxy.workerPid(), pid);
    assert.equal(statSync(haproxy.configFile).mtimeMs, mtime);
  });

  it('a rolling image update under steady keep-alive load fails no request and happens without a reload', async (t) => {
    if (!haproxy) return t.skip('no docker/haproxy');
    const pid = await haproxy.workerPid();
    edit('apps/web.yaml', 'image: berth-demo/httpd:1.0', 'image: berth-demo/httpd:1.1');
    edit('apps/web.yaml', 'APP_VERSION: "1.0"', 'APP_VERSION: "1.1"');
    const load = steadyLoad(haproxy.port, 'web.example.test', 300);
    await new Promise((r) => setTimeout(r, 500));
    const { report } = await reconcile();
    await new Promise((r) => setTimeout(r, 500));
    const seen = await load.stop();
    assert.equal(report.result, 'Succeeded');
    assert.deepEqual(seen.failed, [], 'no failed request, no reset');
    assert.ok(seen.ok > 300, `steady load: ${seen.ok} requests answered`);
    assert.deepEqual([...seen.bodies].sort(), ['web 1.0', 'web 1.1']);
    assert.equal(proxy.reloads, 0, 'no reload by the driver');
    assert.equal(await haproxy.workerPid(), pid, 'the same HAProxy worker serves: no reload at all');
    assert.ok(proxy.runtimeUpdates >= 2, `servers changed through the Runtime API (${proxy.runtimeUpdates} times)`);
    assert.deepEqual(await get(haproxy.port, 'web.example.test'), { status: 200, body: 'web 1.1\n' });
    assert.equal((await proxy.read(repo.env)).drift, undefined, 'the file was rewritten to match the Runtime API changes');
  });

  it('a new route goes through haproxy -c and a reload', async (t) => {
    if (!haproxy) return t.skip('no docker/haproxy');
    const pid = await haproxy.workerPid();
    const reloads = proxy.reloads;
    writeFileSync(path.join(repo.dir, 'apps/extra.yaml'), httpdApp({ name: 'extra', body: 'extra', host: 'extra.example.test', intervalSeconds: 0.25 }));
    const { report } = await reconcile();
    assert.equal(report.result, 'Succeeded');
    assert.equal(proxy.reloads, reloads + 1);
    assert.notEqual(await haproxy.workerPid(), pid, 'a new worker');
    assert.deepEqual(await get(haproxy.port, 'extra.example.test'), { status: 200, body: 'extra\n' });
    assert.deepEqual(await get(haproxy.port, 'web.example.test'), { status: 200, body: 'web 1.1\n' });
  });

  it("a config HAProxy refuses is not loaded: haproxy's message in the error, the old file back, still serving", async (t) => {
    if (!haproxy) return t.skip('no docker/haproxy');
    const before = readFileSync(haproxy.configFile, 'utf8');
    const pid = await haproxy.workerPid();
    // A bind HAProxy cannot use: berth writes it (it is the operator's option), haproxy -c refuses it.
    const misconfigured = new HaproxyDriver({ configFile: haproxy.configFile, socket: haproxy.socket, bind: '127.0.0.1:99999', checkCmd: haproxy.checkCmd, reloadCmd: haproxy.reloadCmd, minReloadIntervalMs: 0 });
    await assert.rejects(misconfigured.apply(await proxy.read(repo.env)), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_NGINX_CONFIG');
      assert.match(err.message, /invalid port '99999'/);
      return true;
    });
    assert.equal(readFileSync(haproxy.configFile, 'utf8'), before);
    assert.equal(misconfigured.reloads, 0);
    assert.equal(await haproxy.workerPid(), pid);
    assert.deepEqual(await get(haproxy.port, 'web.example.test'), { status: 200, body: 'web 1.1\n' });
  });

  it('after all that, a re-apply changes nothing', async (t) => {
    if (!haproxy) return t.skip('no docker/haproxy');
    const reloads = proxy.reloads;
    const updates = proxy.runtimeUpdates;
    const { planned, report } = await reconcile();
    assert.equal(planned.empty, true);
    assert.equal(report.result, 'Succeeded');
    assert.equal(proxy.reloads, reloads);
    assert.equal(proxy.runtimeUpdates, updates);
  });
});
