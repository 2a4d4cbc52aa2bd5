import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { httpdApp } from '../support/apps.js';
import { infrastructure, removeEnv, type Infrastructure } from '../support/env.js';
import { startForgeServer, type ForgeServer } from '../support/forge-server.js';
import { gitCmd, seedRepo, startGitServer, type GitServer } from '../support/git-server.js';
import { freePort, get } from '../support/nginx.js';
import { pushWebhook, runBerth, startBerthRun, waitFor, type RunningBerth } from '../support/run.js';

const GIT_TOKEN = 'git-secret-token';
const HOOK_SECRET = 'hook-secret';
const API_TOKEN = 'api-token';
const id = Math.random().toString(36).slice(2, 7);
const STAGING = `wf${id}s`;
const PROD = `wf${id}p`;

/** A config repo of one routed app, two environments on two branches, each with its own overlay. */
function writeRepo(dir: string): void {
  mkdirSync(path.join(dir, 'apps'), { recursive: true });
  for (const env of [STAGING, PROD]) mkdirSync(path.join(dir, 'overlays', env), { recursive: true });
  writeFileSync(path.join(dir, 'berth.yaml'), `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${STAGING}: { branch: staging }\n  ${PROD}: { branch: main, selfHeal: true }\n`);
  writeFileSync(path.join(dir, 'apps/web.yaml'), httpdApp({ name: 'web', body: 'web $GREETING', host: 'web.base.test', extra: '  env: { GREETING: base }\n' }));
  const overlay = (env: string, greeting: string, replicas: number) =>
    `apiVersion: berth/v1\nkind: Overlay\ntarget: web\npatch:\n  - { op: replace, path: /spec/route/host, value: web.${env}.test }\n  - { op: replace, path: /spec/replicas, value: ${replicas} }\nmerge:\n  spec: { env: { GREETING: ${greeting} } }\n`;
  writeFileSync(path.join(dir, `overlays/${STAGING}/web.yaml`), overlay(STAGING, 'staging', 1));
  writeFileSync(path.join(dir, `overlays/${PROD}/web.yaml`), overlay(PROD, 'production', 2));
}

// Every workflow of issue 9 end to end: a real Git server, dockerd and nginx; forges answered by a
// local server that records each request as the forge's documented API would receive it.
describe('Git workflows: commit statuses, drift, rollback by revert, promotion by merge, plans on pull requests', () => {
  let infra: Infrastructure | undefined;
  let docker: Docker;
  let git: GitServer;
  let work: Awaited<ReturnType<typeof seedRepo>>;
  let url: string;
  let github: ForgeServer;
  let berth: RunningBerth | undefined;
  const cleanup: string[] = [];

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...infra!.cliEnv, BERTH_REPO: url, ...extra });
  const forgeArgs = (f: ForgeServer) => ['--forge', f.kind, '--forge-url', f.url, '--forge-repo', f.repo, '--forge-token', f.token];
  const images = async (envName: string) => (await docker.listContainers({ filters: { label: [`berth.env=${envName}`, 'berth.app=web'] } })).map((c) => c.Image).sort();
  const head = (branch: string) => gitCmd(work.work, 'ls-remote', 'origin', `refs/heads/${branch}`).then((o) => o.split(/\s/)[0]!);
  const editWeb = (from: string, to: string) => {
    const file = path.join(work.work, 'apps/web.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(from, to));
  };
  /** Pushes a commit to main and tells the controller, as the forge would. */
  const pushMain = async (message: string) => {
    const sha = await work.push(message);
    assert.equal((await pushWebhook(berth!.api, 'main', sha, HOOK_SECRET)).status, 202);
    return sha;
  };
  const prodImages = (want: string[]) => waitFor(async () => JSON.stringify(await images(PROD)) === JSON.stringify(want), 60_000, `production running ${want.join(', ')}`);

  before(async (t) => {
    infra = await infrastructure(t as never);
    if (!infra) return;
    docker = infra.docker;
    git = await startGitServer({ token: GIT_TOKEN });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-wf-'));
    cleanup.push(dir);
    writeRepo(dir);
    url = `http://ci:${GIT_TOKEN}@127.0.0.1:${git.port}/config.git`;
    work = await seedRepo(git, 'config', dir, url);
    cleanup.push(work.work);
    await work.push('initial');
    await gitCmd(work.work, 'push', '-q', 'origin', 'HEAD:staging');
    github = await startForgeServer('github');
  });
  after(async () => {
    await berth?.stop();
    await github?.stop();
    await git?.stop();
    if (infra) {
      await removeEnv(docker, STAGING);
      await removeEnv(docker, PROD);
      await infra.teardown();
    }
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  });

  it('a reconcile puts berth/<env> on its commit: pending first, then the result, on GitHub; status, history, metrics and API agree', async (t) => {
    if (!infra) return t.skip('no docker/nginx');
    const sha = await head('main');
    berth = await startBerthRun(['--interval', '1h', ...forgeArgs(github), '--external-url', 'http://berth.example.test'], env({ BERTH_ENV: PROD, BERTH_WEBHOOK_SECRET: HOOK_SECRET, BERTH_API_TOKEN: API_TOKEN }), await freePort());
    await waitFor(async () => (await get(infra!.nginx.port, `web.${PROD}.test`)).body === 'web production\n', 60_000, 'production serves its overlay');
    const statuses = await waitFor(() => (github.statuses(sha).some((s) => s.state === 'success') ? github.statuses(sha) : undefined), 15_000, 'a success status');
    assert.deepEqual(statuses.map((s) => [s.context, s.state]), [[`berth/${PROD}`, 'pending'], [`berth/${PROD}`, 'success']]);
    const posted = github.requests.filter((r) => r.method === 'POST' && r.path === `/api/v3/repos/${github.repo}/statuses/${sha}`);
    assert.equal(posted.length, 2);
    assert.deepEqual(posted[1]!.body, { state: 'success', context: `berth/${PROD}`, description: 'applied 1 app', target_url: 'http://berth.example.test/api/v1/history' });
    assert.equal(posted[0]!.headers.authorization, `token ${github.token}`);
    for (const r of posted) assert.ok(!JSON.stringify(r.body).includes(github.token), 'the token travels only in the Authorization header');

    const api = async <T>(p: string): Promise<T> => (await fetch(`${berth!.api}${p}`)).json() as Promise<T>;
    // History and the forge's status are two listeners of the same event: either may finish first.
    const [history] = await waitFor(async () => {
      const h = await api<{ result: string; revision: string }[]>('/api/v1/history');
      return h.length ? h : undefined;
    }, 5000, 'the history record');
    assert.deepEqual([history!.result, history!.revision], ['Succeeded', `main@sha1:${sha}`]);
    const delivered = await api<{ sha: string; state: string; outcome: string; description: string }[]>('/api/v1/commit-statuses');
    assert.deepEqual(delivered.map((d) => [d.sha, d.state, d.outcome, d.description]), [[sha, 'success', 'delivered', 'applied 1 app'], [sha, 'pending', 'delivered', 'applying 1 app']]);
    const metrics = await (await fetch(`${berth.api}/metrics`)).text();
    assert.match(metrics, new RegExp(`berth_reconcile_total\\{env="${PROD}",result="Succeeded"\\} 1`));
    assert.match(metrics, /berth_commit_statuses_total\{forge="github",kind="reconcile",state="success",outcome="delivered"\} 1/);
    assert.match(metrics, /berth_commit_statuses_total\{forge="github",kind="reconcile",state="pending",outcome="delivered"\} 1/);
  });

  it('on Gitea and GitLab too, in their own words (GitLab: running, then success)', async (t) => {
    if (!infra) return t.skip('no docker/nginx');
    for (const kind of ['gitea', 'gitlab'] as const) {
      const forge = await startForgeServer(kind);
      try {
        await gitCmd(work.work, 'checkout', '-q', '-B', 'staging', 'origin/staging');
        const file = path.join(work.work, `overlays/${STAGING}/web.yaml`);
        writeFileSync(file, readFileSync(file, 'utf8').replace(/GREETING: \S+ \}/, `GREETING: staging-${kind} }`));
        const sha = await work.push(`staging greets from ${kind}`, 'staging');
        const r = await runBerth(['apply', '--env', STAGING, ...forgeArgs(forge)], env());
        assert.equal(r.code, 0, r.stderr);
        const states = forge.statuses(sha).map((s) => [s.context, s.state]);
        assert.deepEqual(states, [[`berth/${STAGING}`, kind === 'gitlab' ? 'running' : 'pending'], [`berth/${STAGING}`, 'success']]);
        const paths = forge.requests.filter((q) => q.method === 'POST').map((q) => q.path);
        const project = kind === 'gitlab' ? `/api/v4/projects/${encodeURIComponent(forge.repo)}/statuses/${sha}` : `/api/v1/repos/${forge.repo}/statuses/${sha}`;
        assert.deepEqual(paths, [project, project]);
        if (kind === 'gitlab') assert.equal((forge.requests.at(-1)!.body as { name: string }).name, `berth/${STAGING}`);
      } finally {
        await forge.stop();
        await gitCmd(work.work, 'checkout', '-q', 'main');
      }
    }
  });

  it('docker rm -f of a managed container puts berth/<env>/drift = failure on the applied commit, and success once healed', async (t) => {
    if (!berth) return t.skip('controller not running');
    const sha = await head('main');
    const [victim] = await docker.listContainers({ filters: { label: [`berth.env=${PROD}`, 'berth.app=web'] } });
    await docker.getContainer(victim!.Id).remove({ force: true });
    const drift = () => github.statuses(sha).filter((s) => s.context === `berth/${PROD}/drift`);
    await waitFor(() => drift().some((s) => s.state === 'success'), 30_000, 'drift healed status');
    assert.deepEqual(drift().map((s) => [s.state, s.description]), [
      ['failure', 'web: 1 of 2 replicas missing; healing'],
      ['success', 'healed: web: 1 of 2 replicas missing'],
    ]);
    const report = (await (await fetch(`${berth.api}/api/v1/drift`)).json()) as { drifted: boolean; revision: string };
    assert.deepEqual([report.drifted, report.revision], [false, `main@sha1:${sha}`]);
  });

  it('git revert of an image bump, made by hand and by `berth rollback --last`, returns the host to the previous image', async (t) => {
    if (!berth) return t.skip('controller not running');
    editWeb('httpd:1.0', 'httpd:1.1');
    await pushMain('bump web to 1.1');
    await prodImages(['berth-demo/httpd:1.1', 'berth-demo/httpd:1.1']);

    await gitCmd(work.work, 'revert', '--no-edit', 'HEAD');
    await gitCmd(work.work, 'push', '-q', 'origin', 'HEAD:main');
    await pushWebhook(berth.api, 'main', await gitCmd(work.work, 'rev-parse', 'HEAD'), HOOK_SECRET);
    await prodImages(['berth-demo/httpd:1.0', 'berth-demo/httpd:1.0']);

    editWeb('httpd:1.0', 'httpd:1.1');
    const bump = await pushMain('bump web to 1.1 again');
    await prodImages(['berth-demo/httpd:1.1', 'berth-demo/httpd:1.1']);
    const r = await runBerth(['rollback', '--env', PROD, '--last'], env());
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const reverted = await head('main');
    assert.notEqual(reverted, bump);
    await gitCmd(work.work, 'pull', '-q', '--ff-only', 'origin', 'main');
    const message = await gitCmd(work.work, 'log', '-1', '--format=%B', reverted);
    assert.match(message, new RegExp(`^Revert "bump web to 1.1 again"\\n\\nThis reverts commit ${bump}\\.`));
    await pushWebhook(berth.api, 'main', reverted, HOOK_SECRET);
    await prodImages(['berth-demo/httpd:1.0', 'berth-demo/httpd:1.0']);
    assert.equal((await get(infra!.nginx.port, `web.${PROD}.test`)).body, 'web production\n');
  });

  it('`berth promote` deploys staging\'s image to production and keeps production\'s overlay; an unhealthy staging is refused', async (t) => {
    if (!berth) return t.skip('controller not running');
    await gitCmd(work.work, 'checkout', '-q', '-B', 'staging', 'origin/staging');
    editWeb('httpd:1.0', 'httpd:1.1');
    await work.push('staging: web 1.1', 'staging');
    assert.equal((await runBerth(['apply', '--env', STAGING], env())).code, 0);
    assert.deepEqual(await images(STAGING), ['berth-demo/httpd:1.1']);

    const r = await runBerth(['promote', STAGING, PROD], env());
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const merged = await head('main');
    const parents = (await gitCmd(work.work, 'fetch', '-q', 'origin').then(() => gitCmd(work.work, 'log', '-1', '--format=%P%n%s', merged))).split('\n');
    assert.equal(parents[0]!.split(' ').length, 2, 'a merge commit: main had commits staging has not');
    assert.match(parents[1]!, new RegExp(`^Promote ${STAGING} \\(staging@[0-9a-f]{7}\\) into ${PROD} \\(main@[0-9a-f]{7}\\)`));
    await pushWebhook(berth.api, 'main', merged, HOOK_SECRET);
    await prodImages(['berth-demo/httpd:1.1', 'berth-demo/httpd:1.1']);
    assert.equal((await get(infra!.nginx.port, `web.${PROD}.test`)).body, 'web production\n', "production's overlay values stay");

    editWeb('httpd -f -p 8080', 'httpd -f -p 8081');
    await work.push('staging: web listens where its health check does not look', 'staging');
    const bad = await runBerth(['apply', '--env', STAGING], env());
    assert.equal(bad.code, 3, `rolled back: ${bad.stdout}${bad.stderr}`);
    const refused = await runBerth(['promote', STAGING, PROD], env());
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not (Healthy|Synced)/);
    assert.equal(await head('main'), merged, 'nothing was merged');
    await gitCmd(work.work, 'checkout', '-q', 'main');
    await gitCmd(work.work, 'pull', '-q', '--ff-only', 'origin', 'main');
  });

  it('`berth plan --ref feature` lists exactly what the branch changes; --post twice leaves one comment; a pull request webhook plans it too', async (t) => {
    if (!berth) return t.skip('controller not running');
    await gitCmd(work.work, 'checkout', '-q', '-b', 'feature');
    writeFileSync(path.join(work.work, 'apps/extra.yaml'), httpdApp({ name: 'extra' }));
    editWeb('httpd:1.1', 'httpd:1.0');
    const sha = await work.push('feature: extra app, web back to 1.0', 'feature');
    const plan = await runBerth(['plan', '--env', PROD, '--ref', 'feature'], env());
    assert.equal(plan.code, 2, plan.stderr);
    const actions = plan.stdout.split('\n').filter((l) => /^[+~\-↑↓♻⇄] /.test(l)).map((l) => l.split(/\s+/).slice(0, 3).join(' '));
    assert.deepEqual(actions.sort(), ['+ extra create', '~ web replace']);

    github.addPullRequest({ number: 5, headBranch: 'feature', headSha: sha, baseBranch: 'main' });
    for (let i = 0; i < 2; i++) {
      const posted = await runBerth(['plan', '--env', PROD, '--ref', 'feature', '--post', ...forgeArgs(github)], env());
      assert.equal(posted.code, 2, posted.stderr);
    }
    assert.equal(github.comments(5).length, 1, 'one comment, updated in place');
    assert.match(github.comments(5)[0]!.body, /^<!-- berth-plan:[^ ]+ part 1 -->\n### berth plan for `[^`]+`: 1 to replace, 1 to create, 0 to remove/);
    const planStatus = github.statuses(sha).filter((s) => s.context === `berth/${PROD}/plan`);
    assert.deepEqual(planStatus.map((s) => [s.state, s.description]).at(-1), ['success', '1 to replace, 1 to create, 0 to remove']);

    // The controller plans a pull request when the forge says it changed.
    writeFileSync(path.join(work.work, 'apps/extra.yaml'), httpdApp({ name: 'extra', replicas: 2 }));
    const next = await work.push('feature: two extras', 'feature');
    const body = JSON.stringify({ action: 'synchronize', number: 5, pull_request: { number: 5, state: 'open', head: { ref: 'feature', sha: next }, base: { ref: 'main' } } });
    const hook = await fetch(`${berth.api}/api/v1/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-hub-signature-256': `sha256=${createHmac('sha256', HOOK_SECRET).update(body).digest('hex')}` },
      body,
    });
    assert.deepEqual(((await hook.json()) as { accepted?: boolean }).accepted, true);
    await waitFor(() => github.statuses(next).some((s) => s.context === `berth/${PROD}/plan`), 20_000, 'plan status on the new head');
    await waitFor(() => github.comments(5)[0]!.body.includes(next.slice(0, 12)), 20_000, 'the comment updated to the new head');
    assert.equal(github.comments(5).length, 1);
    await gitCmd(work.work, 'checkout', '-q', 'main');
  });

  it('`berth drift` lists what differs from the applied revision, and why (exit 2)', async (t) => {
    if (!berth) return t.skip('controller not running');
    await berth.stop();
    berth = undefined;
    const [victim] = await docker.listContainers({ filters: { label: [`berth.env=${PROD}`, 'berth.app=web'] } });
    await docker.getContainer(victim!.Id).remove({ force: true });
    const r = await runBerth(['drift', '--env', PROD], env());
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout, /web\s+1 of 2 replicas missing\s+replicas 1 → 2 \(replica missing\)/);
    const json = await runBerth(['drift', '--env', PROD, '--output', 'json'], env());
    const report = JSON.parse(json.stdout) as { drifted: boolean; summary: string; revision: string };
    assert.deepEqual([report.drifted, report.summary, report.revision], [true, 'web: 1 of 2 replicas missing', `main@sha1:${await head('main')}`]);
  });
});
