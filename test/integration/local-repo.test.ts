import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { stage, type copyExampleRepo, type Stage } from '../support/env.js';
import { freePort, get, type TestNginx } from '../support/nginx.js';
import { ROOT } from '../support/repo.js';
import { startBerthRun, waitFor, type RunningBerth } from '../support/run.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t.invalid', ...args], { cwd, encoding: 'utf8' }).trim();

// A local config repo: read from Git objects, refs watched (no webhook, no poll), statuses as git notes.
describe('berth run on a local Git repository (real Docker, nginx)', () => {
  let st: Stage | undefined;
  let docker: Docker | undefined;
  let nginx: TestNginx | undefined;
  let repo: ReturnType<typeof copyExampleRepo>;
  let berth: RunningBerth | undefined;
  let env: NodeJS.ProcessEnv;
  before(async (t) => {
    st = await stage(t as never);
    if (!st) return;
    ({ docker, nginx, repo } = st);
    git(repo.dir, 'init', '-q', '-b', 'main');
    git(repo.dir, 'add', '-A');
    git(repo.dir, 'commit', '-qm', 'initial');
    env = {
      ...st.cliEnv,
      BERTH_ENV: repo.env,
      BERTH_API_TOKEN: 'tok',
    };
  });
  after(async () => {
    await berth?.stop();
    await st?.teardown();
  });

  it('a commit is picked up by the ref watch; uncommitted edits never deploy; statuses land in git notes', async (t) => {
    if (!docker || !nginx) return t.skip('no docker/nginx');
    berth = await startBerthRun(['--repo', repo.dir, '--interval', '1h'], env, await freePort());
    await waitFor(async () => (await get(nginx!.port, 'api.example.test')).body === 'api 1.0\n', 30_000, 'initial apply');

    const file = path.join(repo.dir, 'apps/api.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('APP_VERSION: "1.0"', 'APP_VERSION: "dirty"'));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await get(nginx.port, 'api.example.test')).body, 'api 1.0\n', 'an uncommitted edit is not deployed');

    writeFileSync(file, readFileSync(file, 'utf8').replace('APP_VERSION: "dirty"', 'APP_VERSION: "2.0"'));
    git(repo.dir, 'commit', '-qam', 'api 2.0');
    const sha = git(repo.dir, 'rev-parse', 'HEAD');
    await waitFor(async () => (await get(nginx!.port, 'api.example.test')).body === 'api 2.0\n', 15_000, 'the commit deployed via the ref watch');
    const success = new RegExp(`berth/${repo.env}: success — applied 1 app`);
    const note = await waitFor(() => {
      const out = spawnSync('git', ['notes', '--ref', 'berth', 'show', sha], { cwd: repo.dir, encoding: 'utf8' }).stdout;
      return success.test(out) ? out : undefined;
    }, 15_000, 'a success note on the commit');
    assert.doesNotMatch(note, /pending/, 'the pending line is replaced, one line per context');
  });

  it('drift (a container removed by hand) is reported, not healed, until the environment sets selfHeal', async (t) => {
    if (!berth || !docker) return t.skip('controller not running');
    const sync = () => fetch(`${berth!.api}/api/v1/sync`, { method: 'POST', headers: { authorization: 'Bearer tok' } });
    const status = async () => (await fetch(`${berth!.api}/api/v1/status`)).json() as Promise<{ syncStatus: string; apps: { app: string; syncStatus: string; health: string; revision: string }[] }>;
    const sha = git(repo.dir, 'rev-parse', 'HEAD');
    const [victim] = await docker.listContainers({ filters: { label: [`berth.env=${repo.env}`, 'berth.app=web'] } });
    await docker.getContainer(victim!.Id).remove({ force: true });
    await sync();
    const drifted = await waitFor(async () => {
      const s = await status();
      return s.syncStatus === 'OutOfSync' ? s : undefined;
    }, 10_000, 'OutOfSync');
    const web = drifted.apps.find((a) => a.app === 'web')!;
    assert.deepEqual({ app: web.app, syncStatus: web.syncStatus, health: web.health, revision: web.revision }, { app: 'web', syncStatus: 'OutOfSync', health: 'Progressing', revision: `main@sha1:${sha}` });
    assert.equal((await docker.listContainers({ filters: { label: [`berth.env=${repo.env}`, 'berth.app=web'] } })).length, 1, 'not healed: selfHeal is off');
    const notes = () => spawnSync('git', ['notes', '--ref', 'berth', 'show', sha], { cwd: repo.dir, encoding: 'utf8' }).stdout;
    const drift = new RegExp(`^berth/${repo.env}/drift: failure — web: 1 of 2 replicas missing `, 'm');
    assert.ok(await waitFor(() => drift.test(notes()), 10_000, 'drift note on the applied commit'));

    writeFileSync(path.join(repo.dir, 'berth.yaml'), readFileSync(path.join(repo.dir, 'berth.yaml'), 'utf8').replace('{ branch: main }', '{ branch: main, selfHeal: true }'));
    git(repo.dir, 'commit', '-qam', 'heal drift');
    await waitFor(async () => (await status()).syncStatus === 'Synced', 20_000, 'healed and Synced');
    // The commit the drift was reported on is no longer the applied one: its drift status is resolved.
    const resolved = new RegExp(`^berth/${repo.env}/drift: success — resolved: main@sha1:[0-9a-f]{40} was applied since`, 'm');
    assert.ok(await waitFor(() => resolved.test(notes()), 10_000, 'drift resolved on the old commit'));
    assert.equal((await docker.listContainers({ filters: { label: [`berth.env=${repo.env}`, 'berth.app=web'] } })).length, 2);
  });

  it('berth status and berth history read the controller, then the state dir when it is gone', async (t) => {
    if (!berth) return t.skip('controller not running');
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { env: { ...process.env, ...env, NO_COLOR: '1' }, encoding: 'utf8', cwd: ROOT });
    const server = ['--server', berth.api];
    const live = cli('status', ...server, '--output', 'json');
    assert.equal(live.status, 0, live.stderr);
    assert.equal(JSON.parse(live.stdout).syncStatus, 'Synced');
    const hist = cli('history', ...server);
    assert.match(hist.stdout, /Succeeded .*main@sha1:[0-9a-f]{40} \((watch|startup)/);
    await berth.stop();
    berth = undefined;
    const offline = cli('status', '--server', 'http://127.0.0.1:1');
    assert.equal(offline.status, 0, offline.stderr);
    assert.match(offline.stdout, new RegExp(`${repo.env}  sync Synced  health Healthy`));
    assert.match(cli('history', '--server', 'http://127.0.0.1:1').stdout, /#\d+ .* Succeeded/);
  });
});
