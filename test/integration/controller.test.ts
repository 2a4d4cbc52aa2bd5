import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import type { EnvStatus, ReconcileRecord } from '../../src/report/history.js';
import { stage, type copyExampleRepo, type Stage } from '../support/env.js';
import { gitCmd, seedRepo, startGitServer, type GitServer } from '../support/git-server.js';
import { freePort, get, type TestNginx } from '../support/nginx.js';
import { pushWebhook, startBerthRun, waitFor, type RunningBerth } from '../support/run.js';

const SECRET = 'webhook-secret-for-tests';
const TOKEN = 'api-token-for-tests';
const GIT_TOKEN = 'git-token-for-tests';

// Issue 4's acceptance tests: `berth run` against a real git http-backend, dockerd and nginx.
describe('berth run: GitOps controller (real git server, Docker, nginx)', () => {
  let st: Stage | undefined;
  let docker: Docker | undefined;
  let nginx: TestNginx | undefined;
  let git: GitServer;
  let repo: ReturnType<typeof copyExampleRepo>;
  let work: Awaited<ReturnType<typeof seedRepo>>;
  let berth: RunningBerth | undefined;
  let args: string[];
  let env: NodeJS.ProcessEnv;
  let apiPort: number;

  const json = async <T>(p: string): Promise<T> => (await fetch(`${berth!.api}${p}`)).json() as Promise<T>;
  const history = () => json<ReconcileRecord[]>('/api/v1/history?limit=100');
  const status = () => json<EnvStatus>('/api/v1/status');
  const edit = (file: string, from: string, to: string) => {
    const p = path.join(work.work, file);
    const text = readFileSync(p, 'utf8');
    assert.ok(text.includes(from), `${file} has no ${from}`);
    writeFileSync(p, text.replace(from, to));
  };
  const ids = async () => (await docker!.listContainers({ all: true, filters: { label: [`berth.env=${repo.env}`] } })).map((c) => c.Id).sort();

  /** waitFor, with the controller's last log lines in the failure message. */
  const until = async <T>(check: () => Promise<T> | T, ms: number, what: string) => {
    try {
      return await waitFor(check, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- berth run log (tail) ---\n${berth?.logs().split('\n').slice(-15).join('\n')}`);
    }
  };

  before(async (t) => {
    st = await stage(t as never);
    if (!st) return;
    ({ docker, nginx, repo } = st);
    git = await startGitServer({ token: GIT_TOKEN });
    work = await seedRepo(git, 'deploy', repo.dir, `http://ci:${GIT_TOKEN}@127.0.0.1:${git.port}/deploy.git`);
    await work.push('initial deployment');
    apiPort = await freePort();
    args = ['--env', repo.env, '--repo', git.url('deploy.git'), '--interval', '1h'];
    env = {
      ...st.cliEnv,
      BERTH_GIT_TOKEN: GIT_TOKEN,
      BERTH_WEBHOOK_SECRET: SECRET,
      BERTH_API_TOKEN: TOKEN,
      BERTH_LOG_LEVEL: 'info',
    };
  });
  after(async () => {
    await berth?.stop();
    await st?.teardown();
    await git?.stop();
  });

  it('applies the served repo on startup and reports Synced + Healthy', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    berth = await startBerthRun(args, env, apiPort);
    const s = await until(async () => {
      const st = await status();
      return st.syncStatus === 'Synced' && st.health === 'Healthy' ? st : undefined;
    }, 30_000, 'Synced + Healthy');
    assert.match(s.lastAppliedRevision ?? '', /^main@sha1:[0-9a-f]{40}$/);
    assert.deepEqual(s.apps.map((a) => a.app).sort(), ['api', 'docs', 'web', 'worker']);
    assert.deepEqual(await get(nginx.port, 'web.example.test'), { status: 200, body: 'web 1.0\n' });
    const h = await history();
    assert.equal(h.length, 1);
    assert.equal(h[0]!.result, 'Succeeded');
    assert.equal(h[0]!.trigger, 'startup');
    assert.ok(!berth.logs().includes(GIT_TOKEN), 'the git token never appears in logs');
    assert.ok(!berth.logs().includes('it-secret'), 'secrets never appear in logs');
  });

  it('a webhook with a bad signature gets 401 and triggers nothing', async (t) => {
    if (!berth) return t.skip('controller not running');
    const before = (await history()).length;
    for (const forge of ['github', 'gitea', 'gitlab'] as const) {
      const res = await pushWebhook(berth.api, 'main', 'f'.repeat(40), SECRET, { forge, badSignature: true });
      assert.equal(res.status, 401, forge);
    }
    const unsigned = await fetch(`${berth.api}/api/v1/webhooks/github`, { method: 'POST', headers: { 'x-github-event': 'push' }, body: '{"ref":"refs/heads/main"}' });
    assert.equal(unsigned.status, 401);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await history()).length, before);
    const metrics = await (await fetch(`${berth.api}/metrics`)).text();
    assert.match(metrics, /berth_webhook_requests_total\{forge="github",code="401"\} 2/);
  });

  it('a push to another branch is acknowledged and ignored', async (t) => {
    if (!berth) return t.skip('controller not running');
    const res = await pushWebhook(berth.api, 'feature-x', 'a'.repeat(40), SECRET);
    assert.equal(res.status, 202);
    assert.match(JSON.stringify(await res.json()), /push to feature-x; environment .* follows main/);
  });

  it('git push + signed webhook converges the host to the new image', async (t) => {
    if (!berth || !nginx) return t.skip('controller not running');
    edit('apps/web.yaml', 'image: berth-demo/httpd:1.0', 'image: berth-demo/httpd:1.1');
    edit('apps/web.yaml', 'APP_VERSION: "1.0"', 'APP_VERSION: "1.1"');
    const sha = await work.push('web 1.1');
    const res = await pushWebhook(berth.api, 'main', sha, SECRET);
    assert.equal(res.status, 202);
    await until(async () => (await get(nginx!.port, 'web.example.test')).body === 'web 1.1\n', 30_000, 'web 1.1 through nginx');
    const s = await until(async () => {
      const st = await status();
      return st.lastAppliedRevision?.endsWith(sha) && st.syncStatus === 'Synced' ? st : undefined;
    }, 10_000, 'status at the new revision');
    assert.equal(s.health, 'Healthy');
    const metrics = await (await fetch(`${berth.api}/metrics`)).text();
    assert.match(metrics, /berth_reconcile_total\{env="[a-z0-9]+",result="Succeeded"\} 2/);
    assert.match(metrics, /berth_app_info\{env="[a-z0-9]+",app="web",sync_status="Synced",health_status="Healthy",revision="[0-9a-f]{40}"\} 1/);
    assert.match(metrics, /berth_git_fetch_duration_seconds_count/);
  });

  it('twenty pushes in quick succession lead to at most two reconciles, ending on the newest commit', async (t) => {
    if (!berth || !nginx) return t.skip('controller not running');
    const before = (await history()).length;
    // Commits first (local), then the burst: 20 pushes, each followed by its signed webhook.
    const shas: string[] = [];
    for (let i = 1; i <= 20; i++) {
      const file = path.join(work.work, 'apps/api.yaml');
      // A 5 s drain keeps the first reconcile busy well past the burst, even on a slow machine.
      writeFileSync(file, readFileSync(file, 'utf8').replace(/APP_VERSION: "[^"]+"/, `APP_VERSION: "burst-${i}"`).replace('route: { host: api.example.test, path: / }', 'route: { host: api.example.test, path: /, drainSeconds: 5 }'));
      shas.push(await work.commit(`burst ${i}`));
    }
    const t0 = Date.now();
    for (const sha of shas) {
      await gitCmd(work.work, 'push', '-q', 'origin', `${sha}:refs/heads/main`);
      const res = await pushWebhook(berth.api, 'main', sha, SECRET);
      assert.equal(res.status, 202);
    }
    t.diagnostic(`20 pushes + webhooks in ${Date.now() - t0} ms`);
    const last = shas[shas.length - 1]!;
    await until(async () => (await get(nginx!.port, 'api.example.test')).body === 'api burst-20\n', 30_000, 'api burst-20 through nginx');
    await until(async () => (await status()).lastAppliedRevision?.endsWith(last), 10_000, 'newest commit applied');
    await new Promise((r) => setTimeout(r, 500));
    const added = (await history()).slice(0, (await history()).length - before);
    assert.ok(added.length >= 1 && added.length <= 2, `expected 1–2 reconciles, got ${added.length}`);
    assert.ok(added[0]!.revision.endsWith(last), 'the last reconcile applied the newest commit');
  });

  it('a commit with a schema error changes nothing, records a Failed reconcile with file and line, and the next good commit applies', async (t) => {
    if (!berth || !nginx) return t.skip('controller not running');
    const running = await ids();
    edit('apps/web.yaml', '  replicas: 2', '  replicas: 2\n  replcas: 3');
    const bad = await work.push('typo');
    await pushWebhook(berth.api, 'main', bad, SECRET);
    const failed = await until(async () => (await history()).find((r) => r.revision.endsWith(bad)), 15_000, 'a record for the bad commit');
    assert.equal(failed.result, 'Failed');
    assert.match(failed.error ?? '', /apps\/web\.yaml:\d+:\d+ +unknown field "replcas" in spec; did you mean "replicas"\?/);
    assert.deepEqual(await ids(), running, 'running apps untouched');
    assert.equal((await get(nginx.port, 'web.example.test')).status, 200);
    const s = await status();
    assert.ok(s.lastAttemptedRevision?.endsWith(bad));
    assert.ok(!s.lastAppliedRevision?.endsWith(bad));

    edit('apps/web.yaml', '  replicas: 2\n  replcas: 3', '  replicas: 3');
    const good = await work.push('fix typo, 3 web replicas');
    await pushWebhook(berth.api, 'main', good, SECRET);
    await until(async () => (await status()).lastAppliedRevision?.endsWith(good), 30_000, 'the fixed commit applied');
    const web = (await docker!.listContainers({ filters: { label: [`berth.env=${repo.env}`, 'berth.app=web'] } })).length;
    assert.equal(web, 3);
  });

  it('POST /api/v1/sync needs the bearer token', async (t) => {
    if (!berth) return t.skip('controller not running');
    assert.equal((await fetch(`${berth.api}/api/v1/sync`, { method: 'POST' })).status, 401);
    const ok = await fetch(`${berth.api}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 202);
  });

  it('an unreachable Git server keeps everything running and reports Unknown', async (t) => {
    if (!berth || !nginx) return t.skip('controller not running');
    const running = await ids();
    await git.pause();
    try {
      await fetch(`${berth.api}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      await until(async () => (await status()).syncStatus === 'Unknown', 15_000, 'Unknown');
      assert.deepEqual(await ids(), running);
      assert.equal((await get(nginx.port, 'web.example.test')).status, 200);
    } finally {
      await git.resume();
    }
    await fetch(`${berth.api}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    await until(async () => (await status()).syncStatus === 'Synced', 15_000, 'Synced again');
  });

  it('SIGKILL mid-apply, restart: converges without orphans; history and status survive', async (t) => {
    if (!berth || !nginx) return t.skip('controller not running');
    const recordsBefore = (await history()).length;
    edit('apps/web.yaml', 'APP_VERSION: "1.1"', 'APP_VERSION: "1.2"');
    const sha = await work.push('web 1.2');
    await pushWebhook(berth.api, 'main', sha, SECRET);
    await until(() => /"phase":"(start|wait)"/.test(berth!.logs().split('\n').slice(-20).join('\n')) && berth!.logs().includes('"app":"web"'), 20_000, 'apply in progress');
    await berth.stop('SIGKILL');
    berth = await startBerthRun(args, env, apiPort);
    await until(async () => (await status()).lastAppliedRevision?.endsWith(sha), 30_000, 'converged after restart');
    const web = await docker!.listContainers({ all: true, filters: { label: [`berth.env=${repo.env}`, 'berth.app=web'] } });
    assert.equal(web.length, 3, web.map((c) => `${c.Names[0]} ${c.State}`).join(', '));
    assert.ok(web.every((c) => c.State === 'running'));
    assert.deepEqual(web.map((c) => c.Labels['berth.replica']).sort(), ['0', '1', '2']);
    assert.equal((await get(nginx.port, 'web.example.test')).body, 'web 1.2\n');
    assert.ok((await history()).length >= recordsBefore + 1, 'history survived the restart');
  });
});
