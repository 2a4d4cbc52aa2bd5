import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { harness, stage, type copyExampleRepo, type Harness, type Stage } from '../support/env.js';
import { get, type TestNginx } from '../support/nginx.js';
import { editFile } from '../support/repo.js';

// Issue 3's acceptance tests, against the real dockerd and a real nginx.
describe('apply against real Docker and nginx', () => {
  let st: Stage | undefined;
  let docker: Docker | undefined;
  let nginx: TestNginx | undefined;
  let repo: ReturnType<typeof copyExampleRepo>;
  let h: Harness;

  const edit = (file: string, from: string | RegExp, to: string) => editFile(repo.dir, file, from, to);
  const ids = async (app?: string) =>
    (await h.runtime.list(repo.env))
      .filter((c) => !app || c.app === app)
      .map((c) => c.id)
      .sort();

  before(async (t) => {
    st = await stage(t as never);
    if (!st) return;
    ({ docker, nginx, repo } = st);
    h = harness(repo.dir, repo.env, nginx!);
  });
  after(async () => {
    await st?.teardown();
  });

  it('applies example-repo to an empty host: every app healthy and reachable through nginx', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const report = await h.apply();
    assert.equal(report.result, 'Succeeded', JSON.stringify(report.apps));
    const containers = await h.runtime.list(repo.env);
    const count = (app: string) => containers.filter((c) => c.app === app && c.state === 'running').length;
    assert.deepEqual({ api: count('api'), web: count('web'), docs: count('docs'), worker: count('worker') }, { api: 1, web: 2, docs: 1, worker: 1 });
    assert.deepEqual(await get(nginx.port, 'api.example.test'), { status: 200, body: 'api 1.0\n' });
    assert.deepEqual(await get(nginx.port, 'web.example.test'), { status: 200, body: 'web 1.0\n' });
    assert.deepEqual(await get(nginx.port, 'web.example.test', '/docs/'), { status: 200, body: 'docs\n' });
    // Resources, init and restart policy reach Docker.
    const apiInfo = await docker.getContainer(containers.find((c) => c.app === 'api')!.id).inspect();
    assert.equal(apiInfo.HostConfig.NanoCpus, 500_000_000);
    assert.equal(apiInfo.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(apiInfo.HostConfig.Init, true);
    assert.equal(apiInfo.HostConfig.RestartPolicy?.Name, 'unless-stopped');
    assert.ok(apiInfo.Config.Env.includes('DB_PASSWORD=it-secret'), 'the secret reaches the container');
    // Live state is self-describing: labels carry env, app, revision, hash and replica.
    const api = containers.find((c) => c.app === 'api')!;
    assert.equal(api.specHash, (await h.render()).apps.find((a) => a.name === 'api')!.specHash);
    assert.match(api.name, new RegExp(`^${repo.env}-api-0-[0-9a-f]{8}$`));
  });

  it('applying the same commit again changes nothing (same container IDs, no reload)', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const before = await ids();
    const planned = await h.planOnly();
    assert.equal(planned.empty, true, JSON.stringify(planned.apps.filter((a) => a.actions.length)));
    const reloads = h.proxy.reloads;
    const lists = h.runtime.listCalls;
    const report = await h.apply();
    assert.equal(report.result, 'Succeeded');
    assert.equal(h.runtime.listCalls - lists, 1, 'a no-op apply makes one container-list call, not one per app');
    assert.deepEqual(await ids(), before);
    assert.equal(h.proxy.reloads, reloads);
  });

  it('changing one app\'s image replaces only that app, through a rolling update', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const apiBefore = await ids('api');
    const othersBefore = (await ids()).filter((id) => !apiBefore.includes(id));
    edit('apps/api.yaml', 'image: berth-demo/httpd:1.0', 'image: berth-demo/httpd:1.1');
    edit('apps/api.yaml', 'APP_VERSION: "1.0"', 'APP_VERSION: "1.1"');
    const planned = await h.planOnly();
    const action = planned.apps.find((a) => a.app === 'api')!.actions[0]!;
    assert.equal(action.kind, 'replace');
    assert.ok(action.diff.includes('spec.image: "berth-demo/httpd:1.0" → "berth-demo/httpd:1.1"'), action.diff.join('\n'));
    const report = await h.apply();
    assert.equal(report.result, 'Succeeded', JSON.stringify(report.apps));
    const apiAfter = await ids('api');
    assert.equal(apiAfter.length, 1);
    assert.ok(!apiAfter.some((id) => apiBefore.includes(id)), 'api containers were replaced');
    assert.deepEqual((await ids()).filter((id) => !apiAfter.includes(id)), othersBefore, 'other apps untouched');
    assert.deepEqual(await get(nginx.port, 'api.example.test'), { status: 200, body: 'api 1.1\n' });
  });

  it('a new version that fails its health check is rolled back and the old one keeps answering', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const webBefore = await ids('web');
    // The new command serves a directory without /health: the probe gets 404.
    edit('apps/web.yaml', '-h /www"]', '-h /tmp"]');
    edit('apps/web.yaml', '    intervalSeconds: 0.5', '    intervalSeconds: 0.2\n    failureThreshold: 2');
    edit('apps/docs.yaml', 'echo docs >', 'echo docs-v2 >');
    const docsBefore = await ids('docs');
    const report = await h.apply();
    const web = report.apps.find((a) => a.app === 'web')!;
    assert.equal(web.result, 'RolledBack');
    assert.match(web.error ?? '', /GET \/health → 404/);
    assert.equal(report.result, 'RolledBack');
    assert.equal(report.apps.find((a) => a.app === 'docs')!.result, 'Skipped', 'docs depends on web');
    assert.deepEqual(await ids('docs'), docsBefore, 'a skipped app is left as it was');
    assert.deepEqual(await ids('web'), webBefore, 'old containers kept, new ones removed');
    assert.deepEqual(await get(nginx.port, 'web.example.test'), { status: 200, body: 'web 1.0\n' });
    edit('apps/web.yaml', '-h /tmp"]', '-h /www"]');
    edit('apps/web.yaml', '    intervalSeconds: 0.2\n    failureThreshold: 2', '    intervalSeconds: 0.5');
    edit('apps/docs.yaml', 'echo docs-v2 >', 'echo docs >');
    assert.equal((await h.planOnly()).empty, true);
  });

  it('a bad nginx directive is rejected, the previous config restored, nginx keeps serving', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const file = h.proxy.file(repo.env);
    const configBefore = readFileSync(file, 'utf8');
    // The repo policy lets the directive past validate, so nginx -t is what refuses it.
    edit('berth.yaml', 'kind: Repository\n', 'kind: Repository\npolicy: { nginxDirectives: [no_such_directive] }\n');
    edit('apps/web.yaml', 'nginx: { client_max_body_size: 1m }', 'nginx: { client_max_body_size: 1m, no_such_directive: "on" }');
    const report = await h.apply();
    assert.equal(report.result, 'Failed');
    const failed = report.apps.find((a) => a.result === 'Failed')!;
    assert.match(failed.error ?? '', /nginx rejected the new config.*unknown directive "no_such_directive"/s);
    assert.equal(readFileSync(file, 'utf8'), configBefore);
    assert.deepEqual(await get(nginx.port, 'web.example.test'), { status: 200, body: 'web 1.0\n' });
    edit('apps/web.yaml', ', no_such_directive: "on" }', ' }');
    edit('berth.yaml', 'policy: { nginxDirectives: [no_such_directive] }\n', '');
  });

  it('changing env replaces only that app; removing an app removes its containers and route', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const workerBefore = await ids('worker');
    const webBefore = await ids('web');
    edit('apps/worker.yaml', 'QUEUE: jobs', 'QUEUE: jobs-v2');
    let report = await h.apply();
    assert.equal(report.result, 'Succeeded', JSON.stringify(report.apps));
    assert.notDeepEqual(await ids('worker'), workerBefore);
    assert.deepEqual(await ids('web'), webBefore);

    const { unlinkSync } = await import('node:fs');
    unlinkSync(path.join(repo.dir, 'apps/docs.yaml'));
    report = await h.apply();
    assert.equal(report.result, 'Succeeded', JSON.stringify(report.apps));
    assert.deepEqual(await ids('docs'), []);
    assert.doesNotMatch(readFileSync(h.proxy.file(repo.env), 'utf8'), /location \/docs/);
    assert.equal((await get(nginx.port, 'web.example.test', '/docs/')).body.startsWith('docs'), false);
    assert.deepEqual(await get(nginx.port, 'web.example.test'), { status: 200, body: 'web 1.0\n' });
  });

  it('an image that cannot be pulled fails only its app, with a message that says what to do', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const before = await ids();
    // A registry on 127.0.0.1:1 refuses connections: the pull fails without leaving the machine.
    writeFileSync(path.join(repo.dir, 'apps/ghost.yaml'), 'apiVersion: berth/v1\nkind: App\nmetadata: { name: ghost }\nspec:\n  image: 127.0.0.1:1/berth/ghost:1.0\n');
    const report = await h.apply();
    const ghost = report.apps.find((a) => a.app === 'ghost')!;
    assert.equal(ghost.result, 'Failed');
    assert.match(ghost.error ?? '', /127\.0\.0\.1:1\/berth\/ghost:1\.0/);
    assert.match(ghost.error ?? '', /check the image name and registry access|image not found|Docker failed to pull/);
    assert.deepEqual(await ids(), before, 'nothing else changed');
    const { unlinkSync } = await import('node:fs');
    unlinkSync(path.join(repo.dir, 'apps/ghost.yaml'));
  });
});
