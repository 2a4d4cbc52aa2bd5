import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import type { EnvStatus, ReconcileRecord } from '../../src/report/history.js';
import { stage, type copyExampleRepo, type Stage } from '../support/env.js';
import { freePort, get, type TestNginx } from '../support/nginx.js';
import { editFile } from '../support/repo.js';
import { runBerth as berth, startBerthRun, waitFor, type RunningBerth } from '../support/run.js';

// Issue 7's defects and contracts, through the real CLI and controller against real Docker and nginx.
describe('core: the plan as contract, one reconcile path, no redeploy loops (real CLI, Docker, nginx)', () => {
  let st: Stage | undefined;
  let docker: Docker | undefined;
  let nginx: TestNginx | undefined;
  let repo: ReturnType<typeof copyExampleRepo>;
  let env: NodeJS.ProcessEnv;
  let run: RunningBerth | undefined;

  const edit = (file: string, from: string | RegExp, to: string) => editFile(repo.dir, file, from, to);
  const containers = async (app?: string) => (await docker!.listContainers({ all: true, filters: { label: [`berth.env=${repo.env}`, ...(app ? [`berth.app=${app}`] : [])] } })).sort((a, b) => (a.Id < b.Id ? -1 : 1));

  before(async (t) => {
    st = await stage(t as never);
    if (!st) return;
    ({ docker, nginx, repo } = st);
    env = { BERTH_REPO: repo.dir, BERTH_ENV: repo.env, ...st.cliEnv };
  });
  after(async () => {
    await run?.stop();
    await st?.teardown();
  });

  it('`prune: false` in berth.yaml wins over the CLI default; only a given --prune overrides it', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    assert.equal((await berth(['apply'], env)).code, 0);
    const berthYaml = path.join(repo.dir, 'berth.yaml');
    writeFileSync(berthYaml, readFileSync(berthYaml, 'utf8').replace(`${repo.env}: { branch: main }`, `${repo.env}: { branch: main, prune: false }`));
    const docsFile = path.join(repo.dir, 'apps/docs.yaml');
    const docsYaml = readFileSync(docsFile, 'utf8');
    rmSync(docsFile);
    const planned = await berth(['plan'], env);
    assert.doesNotMatch(planned.stdout, /docs\s+remove \d/, planned.stdout);
    assert.equal((await berth(['apply'], env)).code, 0);
    assert.equal((await containers('docs')).length, 1, 'prune: false keeps the containers of a removed app');
    const pruned = await berth(['apply', '--prune'], env);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.equal((await containers('docs')).length, 0, '--prune given on the command line overrides the repo');
    writeFileSync(docsFile, docsYaml);
    assert.equal((await berth(['apply'], env)).code, 0);
  });

  it('`berth apply` records history and status like the controller does', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    edit('apps/worker.yaml', 'QUEUE: jobs', 'QUEUE: jobs-2');
    const applied = await berth(['apply'], env);
    assert.equal(applied.code, 0, applied.stderr);
    const history = JSON.parse((await berth(['history', '--output', 'json', '--server', 'http://127.0.0.1:9'], env)).stdout) as ReconcileRecord[];
    assert.equal(history[0]!.result, 'Succeeded');
    assert.equal(history[0]!.trigger, 'cli');
    assert.ok(history[0]!.apps.some((a) => a.app === 'worker' && a.result === 'Succeeded'), JSON.stringify(history[0]));
    const status = JSON.parse((await berth(['status', '--output', 'json', '--server', 'http://127.0.0.1:9'], env)).stdout) as EnvStatus;
    assert.equal(status.syncStatus, 'Synced');
    assert.equal(status.health, 'Healthy');
    assert.deepEqual(status.apps.map((a) => [a.app, a.syncStatus, a.health]).sort(), [['api', 'Synced', 'Healthy'], ['docs', 'Synced', 'Healthy'], ['web', 'Synced', 'Healthy'], ['worker', 'Synced', 'Healthy']]);
  });

  it('`berth apply --plan FILE` applies a saved plan, and refuses once a container was changed by hand', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    edit('apps/worker.yaml', 'QUEUE: jobs-2', 'QUEUE: jobs-3');
    const saved = path.join(st!.stateDir, 'saved.json');
    const planned = await berth(['plan', '--output', 'json'], env);
    assert.equal(planned.code, 2, planned.stderr);
    assert.ok(!planned.stdout.includes('it-secret'), 'a saved plan holds secret references, never values');
    writeFileSync(saved, planned.stdout);
    const before = (await containers('worker')).map((c) => c.Id);
    const applied = await berth(['apply', '--plan', saved], env);
    assert.equal(applied.code, 0, applied.stderr);
    assert.notDeepEqual((await containers('worker')).map((c) => c.Id), before, 'the saved plan replaced worker');

    edit('apps/worker.yaml', 'QUEUE: jobs-3', 'QUEUE: jobs-4');
    writeFileSync(saved, (await berth(['plan', '--output', 'json'], env)).stdout);
    const api = (await containers('api'))[0]!;
    await docker.getContainer(api.Id).stop({ t: 0 });
    const refused = await berth(['apply', '--plan', saved], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /E_PLAN_STALE.*live state changed since the plan was made.*container .*-api-\d+-[0-9a-f]{8} is exited \(was running\)/s);
    assert.equal((await containers('worker')).length, 1);
    assert.equal((await berth(['apply'], env)).code, 0, 'a fresh apply heals and converges');
  });

  it('usage errors of berth run (address in use, bad cron) are one line and exit 64, not a crash', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    const port = await freePort();
    const busy = net.createServer().listen(port, '127.0.0.1');
    try {
      const r = await berth(['run', '--listen', `127.0.0.1:${port}`, '--interval', '1h'], env);
      assert.equal(r.code, 64, r.stderr);
      assert.match(r.stderr, /--listen 127\.0\.0\.1:\d+: the address is already in use/);
      assert.doesNotMatch(r.stderr, /unexpected error|a bug in berth/);
    } finally {
      busy.close();
    }
    const cron = await berth(['run', '--resync-cron', 'every day'], env);
    assert.equal(cron.code, 64, cron.stderr);
    assert.match(cron.stderr, /--resync-cron: invalid cron expression "every day"/);
  });

  it('a version that fails its health gate is rolled back once and not retried on the next polls; a new commit is tried', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    run = await startBerthRun(['--interval', '1s'], { ...env, BERTH_LOG_LEVEL: 'info' }, await freePort());
    const status = async () => (await fetch(`${run!.api}/api/v1/status`)).json() as Promise<EnvStatus>;
    const history = async () => (await fetch(`${run!.api}/api/v1/history?limit=100`)).json() as Promise<ReconcileRecord[]>;
    await waitFor(async () => (await status()).syncStatus === 'Synced', 30_000, 'Synced');

    // Follow the event stream the way `curl -N` does while the bad version rolls out.
    const stream = await fetch(`${run.api}/api/v1/events`);
    assert.equal(stream.headers.get('content-type'), 'text/event-stream');
    const reader = stream.body!.getReader();
    let seen = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        seen += new TextDecoder().decode(value);
      }
    })();

    const webBefore = (await containers('web')).map((c) => c.Id);
    edit('apps/web.yaml', '-h /www"]', '-h /tmp"]');
    edit('apps/web.yaml', '    intervalSeconds: 0.5', '    intervalSeconds: 0.2\n    failureThreshold: 2');
    const rolledBack = await waitFor(async () => (await history()).find((r) => r.result === 'RolledBack'), 60_000, 'a RolledBack record');
    assert.match(rolledBack.apps.find((a) => a.app === 'web')!.error ?? '', /GET \/health → 404/);
    await waitFor(() => /event: app\.progress\n.*"app":"web"/.test(seen) && /event: reconcile\.finished/.test(seen), 5000, 'progress on the event stream');
    await reader.cancel();
    await reading.catch(() => {});

    // Several polls later: no second attempt, the old replicas still serve.
    await new Promise((r) => setTimeout(r, 4500));
    const records = (await history()).filter((r) => r.result === 'RolledBack');
    assert.equal(records.length, 1, `rolled back ${records.length} times`);
    assert.deepEqual((await containers('web')).map((c) => c.Id), webBefore, 'no new web containers were started by the polls');
    const web = (await status()).apps.find((a) => a.app === 'web')!;
    assert.equal(web.health, 'Degraded');
    assert.equal(web.reason, 'RolledBack');
    assert.match(web.healthMessage ?? '', /GET \/health → 404/);
    assert.equal(web.syncStatus, 'OutOfSync');
    assert.deepEqual(await get(nginx.port, 'web.example.test'), { status: 200, body: 'web 1.0\n' });

    // A new commit that changes the app is tried normally.
    edit('apps/web.yaml', '-h /tmp"]', '-h /www"]');
    edit('apps/web.yaml', 'APP_VERSION: "1.0"', 'APP_VERSION: "1.5"');
    await waitFor(async () => (await get(nginx!.port, 'web.example.test')).body === 'web 1.5\n', 60_000, 'web 1.5 served');
    await waitFor(async () => (await status()).apps.find((a) => a.app === 'web')?.health === 'Healthy', 15_000, 'web Healthy again');
  });

  it('a replica that runs but fails its health check shows Degraded with the probe\'s message', async (t) => {
    if (!run || !docker) return t.skip('controller not running');
    const api = (await containers('api')).find((c) => c.State === 'running')!;
    const exec = await docker.getContainer(api.Id).exec({ Cmd: ['/bin/sh', '-c', 'rm /www/health'] });
    await exec.start({ hijack: true, stdin: false }).then((s) => new Promise((r) => (s.on('end', r), s.resume())));
    const status = async () => (await fetch(`${run!.api}/api/v1/status`)).json() as Promise<EnvStatus>;
    const degraded = await waitFor(async () => (await status()).apps.find((a) => a.app === 'api' && a.health === 'Degraded'), 20_000, 'api Degraded');
    assert.equal(degraded.reason, 'HealthCheckFailed');
    assert.match(degraded.healthMessage ?? '', /1\/\d replicas failing: .*GET \/health → 404/);
    assert.equal((await status()).health, 'Degraded');
  });
});
