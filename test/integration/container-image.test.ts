import assert from 'node:assert/strict';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import type { EnvStatus, ReconcileRecord } from '../../src/report/history.js';
import { ensureDemoImages, requireDocker } from '../support/docker.js';
import { copyExampleRepo, removeEnv } from '../support/env.js';
import { seedRepo, startGitServer, type GitServer } from '../support/git-server.js';
import { buildImages, CONTROLLER_IMAGE, NGINX_IMAGE, requireTool, run } from '../support/images.js';
import { freePort, get } from '../support/nginx.js';
import { ROOT } from '../support/repo.js';
import { pushWebhook, waitFor } from '../support/run.js';

const SECRET = 'webhook-secret-for-image-tests';
const TOKEN = 'api-token-for-image-tests';
const COMPOSE = path.join(ROOT, 'deploy/compose.yaml');

// Issue 14, item 2: the controller image, built here from the locally made base, runs `berth run` in
// its container through deploy/compose.yaml, next to nginx in its own container, driving the real dockerd.
describe('the berth image in its compose stack (real dockerd, nginx container, git http-backend)', () => {
  let docker: Docker | undefined;
  let git: GitServer;
  let repo: ReturnType<typeof copyExampleRepo>;
  let work: Awaited<ReturnType<typeof seedRepo>>;
  let scratch: string;
  let project: string;
  let composeEnv: NodeJS.ProcessEnv;
  let api: string;
  let nginxPort: number;

  const compose = (...args: string[]) => run('docker-compose', ['-p', project, '-f', COMPOSE, ...args], { env: composeEnv, timeoutMs: 180_000 });
  const berthContainer = async () => {
    const [row] = await docker!.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`, 'com.docker.compose.service=berth'] } });
    assert.ok(row, 'compose created the berth container');
    return docker!.getContainer(row.Id);
  };
  const json = async <T>(p: string): Promise<T> => (await fetch(`${api}${p}`)).json() as Promise<T>;
  const status = () => json<EnvStatus>('/api/v1/status');
  const history = () => json<ReconcileRecord[]>('/api/v1/history?limit=100');
  const logs = async () => {
    const buf = (await (await berthContainer()).logs({ stdout: true, stderr: true, tail: 30 })) as unknown as Buffer;
    return buf.toString('utf8').replace(/[\x00-\x08]/g, '');
  };
  const until = async <T>(check: () => Promise<T> | T, ms: number, what: string) => {
    try {
      return await waitFor(check, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- berth container log (tail) ---\n${await logs().catch((e: Error) => e.message)}`);
    }
  };
  const appIds = async () => (await docker!.listContainers({ filters: { label: [`berth.env=${repo.env}`] } })).map((c) => c.Id).sort();

  before(async (t) => {
    docker = await requireDocker(t as never);
    if (!docker) return;
    if (!requireTool(t as never, 'docker-compose', 'docker-compose') || !requireTool(t as never, 'debootstrap', 'debootstrap')) {
      docker = undefined;
      return;
    }
    await ensureDemoImages(docker);
    await buildImages();

    repo = copyExampleRepo();
    git = await startGitServer();
    work = await seedRepo(git, 'deploy', repo.dir);
    await work.push('initial deployment');

    scratch = mkdtempSync(path.join(os.tmpdir(), 'berth-image-'));
    const secrets = path.join(scratch, 'secrets.yaml');
    writeFileSync(secrets, 'db-password: it-secret\n', { mode: 0o600 });
    chownSync(secrets, 10001, 10001); // the image's berth user, as README tells users to do
    project = `berthimg${repo.env}`;
    nginxPort = await freePort();
    const apiPort = await freePort();
    api = `http://127.0.0.1:${apiPort}`;
    const socket = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
    composeEnv = {
      BERTH_IMAGE: CONTROLLER_IMAGE,
      NGINX_IMAGE,
      NGINX_CONTAINER: `${project}-nginx`,
      DOCKER_SOCKET: socket,
      BERTH_REPO: git.url('deploy.git'),
      BERTH_ENV: repo.env,
      BERTH_SECRETS: secrets,
      BERTH_LISTEN: `127.0.0.1:${apiPort}`,
      BERTH_NGINX_LISTEN: `127.0.0.1:${nginxPort}`,
      BERTH_INTERVAL: '1h',
      BERTH_WEBHOOK_SECRET: SECRET,
      BERTH_API_TOKEN: TOKEN,
    };
    await compose('up', '-d', '--no-build');
  });

  after(async () => {
    if (project && composeEnv) await compose('down', '-v', '--remove-orphans').catch((err: Error) => console.error(err.message));
    if (docker && repo) await removeEnv(docker, repo.env);
    await git?.stop();
    repo?.cleanup();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('serves the example repo through the nginx container, with berth running as a non-root user', async (t) => {
    if (!docker) return t.skip('no docker');
    const s = await until(async () => {
      const st = await status().catch(() => undefined);
      return st?.syncStatus === 'Synced' && st.health === 'Healthy' ? st : undefined;
    }, 90_000, 'the containerised berth to report Synced + Healthy');
    assert.deepEqual(s.apps.map((a) => a.app).sort(), ['api', 'docs', 'web', 'worker']);
    assert.deepEqual(await get(nginxPort, 'web.example.test'), { status: 200, body: 'web 1.0\n' });

    const top = await (await berthContainer()).top({ ps_args: '-o pid,uid,args' });
    const [uid, args] = ['UID', 'COMMAND'].map((title) => top.Titles.indexOf(title));
    const node = top.Processes.find((p: string[]) => (p[args!] ?? '').includes('/app/bin/berth.js'));
    assert.ok(node, `berth runs in the container: ${JSON.stringify(top)}`);
    assert.equal(node[uid!], '10001', 'berth runs as the image user berth (uid 10001), not root');
    const conf = await run('docker', ['exec', `${project}-nginx`, 'cat', `/etc/nginx/conf.d/berth-${repo.env}.conf`]);
    assert.match(conf, /server_name web\.example\.test;/, 'berth wrote its nginx file into the shared volume');
  });

  it('a pushed commit is served, then history and status survive a restart of the berth container', async (t) => {
    if (!docker) return t.skip('no docker');
    const web = path.join(work.work, 'apps/web.yaml');
    writeFileSync(web, readFileSync(web, 'utf8').replace('image: berth-demo/httpd:1.0', 'image: berth-demo/httpd:1.1').replace('APP_VERSION: "1.0"', 'APP_VERSION: "1.1"'));
    const sha = await work.push('web 1.1');
    assert.equal((await pushWebhook(api, 'main', sha, SECRET)).status, 202);
    await until(async () => (await get(nginxPort, 'web.example.test')).body === 'web 1.1\n', 60_000, 'web 1.1 through nginx');
    await until(async () => (await status()).lastAppliedRevision?.endsWith(sha), 20_000, 'status at the new revision');
    const before = { history: await history(), ids: await appIds() };
    assert.equal(before.history.length, 2);

    await compose('restart', 'berth');
    // /readyz answers 200 once the first reconcile after the start has finished.
    await until(async () => (await fetch(`${api}/readyz`).then((r) => r.status, () => 0)) === 200, 90_000, 'berth ready again after the restart');
    const s = await status();
    assert.ok(s.lastAppliedRevision?.endsWith(sha), `status after the restart: ${s.lastAppliedRevision}`);
    assert.equal(s.syncStatus, 'Synced');
    assert.equal(s.health, 'Healthy');
    // The startup reconcile found nothing to do (no-ops are not recorded): the history is the one from before.
    assert.deepEqual(await history(), before.history);
    assert.deepEqual(await appIds(), before.ids, 'the restart re-created no app container');
    assert.deepEqual(await get(nginxPort, 'web.example.test'), { status: 200, body: 'web 1.1\n' });
  });

  it("reports healthy to Docker through the image's HEALTHCHECK", async (t) => {
    if (!docker) return t.skip('no docker');
    const container = await berthContainer();
    const health = await until(async () => {
      const h = (await container.inspect()).State.Health;
      return h?.Status === 'healthy' ? h : undefined;
    }, 60_000, 'Docker to see the berth container healthy');
    assert.equal(health.FailingStreak, 0);
  });
});
