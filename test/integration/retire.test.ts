import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import type { EnvStatus } from '../../src/report/history.js';
import { infrastructure, removeEnv, type Infrastructure } from '../support/env.js';
import { httpdApp } from '../support/apps.js';
import { get, type TestNginx } from '../support/nginx.js';
import { runBerth as berth } from '../support/run.js';

// Item 13 of #11, through the real CLI against real Docker and nginx: two environments on one host,
// one retired with `retired: true`, the other, once removed from berth.yaml, with --prune-environment.
describe('retiring an environment (real CLI, Docker, nginx)', () => {
  let st: Infrastructure | undefined;
  let docker: Docker | undefined;
  let nginx: TestNginx | undefined;
  const id = Math.random().toString(36).slice(2, 8);
  const [a, b] = [`ra${id}`, `rb${id}`];
  const hostOf = (env: string) => `${env}.retire.test`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-retire-'));
  let env: NodeJS.ProcessEnv;

  const berthYaml = (envs: string) => `apiVersion: berth/v1\nkind: Repository\nenvironments:\n${envs}`;
  const containers = async (e: string) => docker!.listContainers({ all: true, filters: { label: [`berth.env=${e}`] } });
  const confOf = (e: string) => path.join(nginx!.confDir, `berth-${e}.conf`);

  before(async (t) => {
    st = await infrastructure(t as never);
    if (!st) return;
    ({ docker, nginx } = st);
    env = { ...st.cliEnv, BERTH_REPO: dir };
    mkdirSync(path.join(dir, 'apps'));
    writeFileSync(
      path.join(dir, 'apps/web.yaml'),
      httpdApp({ name: 'web', replicas: 2, intervalSeconds: 0.5, host: hostOf(a) }),
    );
    writeFileSync(
      path.join(dir, 'apps/worker.yaml'),
      `apiVersion: berth/v1
kind: App
metadata: { name: worker }
spec:
  image: berth-demo/httpd:1.0
  command: ["/bin/sh", "-c", "exec sleep 3600"]
  stopGracePeriodSeconds: 1
`,
    );
    // Each environment routes its own host: two on one nginx must not share one.
    mkdirSync(path.join(dir, `overlays/${b}`), { recursive: true });
    writeFileSync(path.join(dir, `overlays/${b}/web.yaml`), `apiVersion: berth/v1\nkind: Overlay\ntarget: web\nmerge: { spec: { route: { host: ${hostOf(b)} } } }\n`);
    writeFileSync(path.join(dir, 'berth.yaml'), berthYaml(`  ${a}: { branch: main }\n  ${b}: { branch: main }\n`));
  });
  after(async () => {
    if (docker) for (const e of [a, b]) await removeEnv(docker, e);
    await st?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('`retired: true`: plan shows the removals, apply removes its containers and nginx file; the other environment keeps serving', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    for (const e of [a, b]) {
      const applied = await berth(['apply', '--env', e], env);
      assert.equal(applied.code, 0, applied.stderr);
    }
    assert.equal((await containers(a)).length, 3);
    assert.equal((await containers(b)).length, 3);
    assert.ok(existsSync(confOf(a)) && existsSync(confOf(b)));
    assert.equal((await get(nginx.port, hostOf(a))).status, 200);

    writeFileSync(path.join(dir, 'berth.yaml'), berthYaml(`  ${a}: { branch: main, retired: true }\n  ${b}: { branch: main }\n`));
    const planned = await berth(['plan', '--env', a], env);
    assert.equal(planned.code, 2, planned.stderr);
    assert.match(planned.stdout, /web\s+remove 2/);
    assert.match(planned.stdout, /worker\s+remove 1/);
    assert.match(planned.stdout, new RegExp(`web\\s+route-update\\s+remove route ${hostOf(a).replaceAll('.', '\\.')}/`));
    assert.match(planned.stderr, new RegExp(`Retiring environment ${a}.*berth-${a}\\.conf`));

    const applied = await berth(['apply', '--env', a], env);
    assert.equal(applied.code, 0, applied.stderr + applied.stdout);
    assert.deepEqual(await containers(a), [], 'no container of the retired environment is left');
    assert.equal(existsSync(confOf(a)), false, `berth-${a}.conf is removed`);
    assert.equal((await get(nginx.port, hostOf(a))).status, 404, 'nginx no longer routes the retired host');

    assert.equal((await containers(b)).length, 3, 'the other environment keeps its containers');
    assert.ok(existsSync(confOf(b)));
    const served = await get(nginx.port, hostOf(b));
    assert.deepEqual([served.status, served.body.trim()], [200, 'web']);

    const status = JSON.parse((await berth(['status', '--env', a, '--output', 'json', '--server', 'http://127.0.0.1:9'], env)).stdout) as EnvStatus;
    assert.equal(status.syncStatus, 'Retired');
    const again = await berth(['apply', '--env', a], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /is retired: nothing of it is left/);
  });

  it('removed from berth.yaml: `--prune-environment` plans first, then applies that plan', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    writeFileSync(path.join(dir, 'berth.yaml'), berthYaml(`  ${a}: { branch: main, retired: true }\n`));
    const refused = await berth(['plan', '--env', b], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout + refused.stderr, /not defined in berth\.yaml.*--prune-environment/);

    const planned = await berth(['plan', '--env', b, '--prune-environment', '--output', 'json'], env);
    assert.equal(planned.code, 2, planned.stderr);
    const saved = path.join(st!.stateDir, 'retire.json');
    writeFileSync(saved, planned.stdout);
    const unconfirmed = await berth(['apply', '--env', b, '--prune-environment'], env);
    assert.equal(unconfirmed.code, 64, unconfirmed.stderr);
    assert.equal((await containers(b)).length, 3, 'nothing is removed without the plan or --yes');

    const applied = await berth(['apply', '--env', b, '--prune-environment', '--plan', saved], env);
    assert.equal(applied.code, 0, applied.stderr + applied.stdout);
    assert.deepEqual(await containers(b), []);
    assert.equal(existsSync(confOf(b)), false);
    assert.equal((await get(nginx.port, hostOf(b))).status, 404);
  });
});
