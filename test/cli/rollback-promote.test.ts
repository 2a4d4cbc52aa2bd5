import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../../src/cli/main.js';
import { HistoryStore } from '../../src/report/history.js';
import type { AppStatus, EnvStatus } from '../../src/status/types.js';
import { gitCmd, startGitServer, type GitServer } from '../support/git-server.js';
import { bareCopy, newWorkRepo, onServer, publish, type FileChanges, type WorkRepo } from '../support/git-repos.js';

// `berth rollback` and `berth promote` through main(), as a user runs them: usage errors (exit 64),
// a promotion refused (exit 1, every reason listed) unless FROM runs its branch's head Synced and
// Healthy, --force, JSON output. The Git side is covered in test/source/write.test.ts.

const REPO = `apiVersion: berth/v1
kind: Repository
environments:
  staging: { branch: staging }
  production: { branch: main }
  preview: { branch: staging }
`;

const web = (image: string) => `apiVersion: berth/v1\nkind: App\nmetadata: { name: web }\nspec:\n  image: ${image}\n  ports: [{ containerPort: 8080 }]\n`;

const cleanup: string[] = [];
let server: GitServer;
const TOKEN = 'cli-token';

before(async () => {
  server = await startGitServer({ token: TOKEN });
});
after(async () => {
  await server.stop();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanup.push(d);
  return d;
}

async function berth(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; all: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(['node', 'berth', ...args], { print: (t) => void stdout.push(t), info: (t) => void stderr.push(t), color: false });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n'), all: [...stdout, ...stderr].join('\n') };
}

/** A bare config repo: main with web 1.0, staging one commit ahead (web 2.0); plus its state dir. */
async function configRepo(extra: { main?: FileChanges } = {}): Promise<{ repo: string; state: string; work: WorkRepo; git(...args: string[]): Promise<string>; main: string; staging: string }> {
  const work = await newWorkRepo({ 'berth.yaml': REPO, 'apps/web.yaml': web('web:1.0') }, cleanup);
  await work.git('checkout', '-q', '-b', 'staging');
  const staging = await work.commit({ 'apps/web.yaml': web('web:2.0') }, 'web 2.0');
  await work.git('checkout', '-q', 'main');
  const main = extra.main ? await work.commit(extra.main, 'a change on main') : await work.head();
  const repo = await bareCopy(work, cleanup);
  return { repo, state: tempDir('berth-cli-state-'), work, git: (...args) => gitCmd(repo, ...args), main, staging };
}

function app(name: string, health: AppStatus['health'], healthMessage?: string): AppStatus {
  return { app: name, syncStatus: 'Synced', health, ...(healthMessage && { healthMessage }), revision: 'x', replicas: { ready: 1, desired: 1 }, image: `${name}:1` };
}

function envStatus(env: string, sha: string, over: Partial<EnvStatus> = {}): EnvStatus {
  return { env, syncStatus: 'Synced', health: 'Healthy', lastAppliedRevision: `staging@sha1:${sha}`, apps: [app('web', 'Healthy')], updatedAt: new Date().toISOString(), ...over };
}

describe('berth rollback and promote: usage errors (exit 64, nothing written)', () => {
  const cases: { name: string; args: (r: { repo: string; state: string; staging: string }) => string[]; says: RegExp }[] = [
    { name: 'rollback without --env', args: (r) => ['rollback', '--repo', r.repo], says: /--env ENV is required/ },
    { name: 'rollback with --to and --last', args: (r) => ['rollback', '--env', 'production', '--repo', r.repo, '--to', 'abc1234', '--last'], says: /--to SHA and --last are exclusive/ },
    { name: 'rollback of an environment berth.yaml does not define', args: (r) => ['rollback', '--env', 'qa', '--repo', r.repo], says: /environment "qa" is not defined in berth\.yaml at HEAD .*\(defined: preview, production, staging\)/ },
    { name: 'rollback --to a commit not on the branch', args: (r) => ['rollback', '--env', 'production', '--repo', r.repo, '--to', r.staging], says: /--to [0-9a-f]{40}: .* is not on the first-parent history of branch main/ },
    { name: 'rollback --to a commit that does not exist', args: (r) => ['rollback', '--env', 'production', '--repo', r.repo, '--to', 'deadbeef'], says: /--to deadbeef: commit deadbeef not found/ },
    { name: 'rollback with a malformed --author', args: (r) => ['rollback', '--env', 'production', '--repo', r.repo, '--author', 'just a name'], says: /author "just a name" is not "Name <email>"/ },
    { name: 'promote an environment into itself', args: (r) => ['promote', 'staging', 'staging', '--repo', r.repo], says: /same environment/ },
    { name: 'promote between environments on the same branch', args: (r) => ['promote', 'staging', 'preview', '--repo', r.repo], says: /both follow branch staging: promotion is a merge between branches/ },
    { name: 'promote with one environment', args: (r) => ['promote', 'staging', '--repo', r.repo], says: /missing required argument 'to'/ },
    { name: 'promote from an undefined environment', args: (r) => ['promote', 'qa', 'production', '--repo', r.repo, '--force'], says: /environment "qa" is not defined/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await configRepo();
      const refs = await r.git('for-each-ref');
      const result = await berth(...c.args(r), '--state-dir', r.state);
      assert.equal(result.code, 64, result.all);
      assert.match(result.all, c.says);
      assert.equal(await r.git('for-each-ref'), refs);
    });
  }

  it('rollback of a plain directory', async () => {
    const dir = tempDir('berth-cli-dir-');
    writeFileSync(path.join(dir, 'berth.yaml'), REPO);
    const result = await berth('rollback', '--env', 'production', '--repo', dir, '--state-dir', tempDir('berth-cli-state-'));
    assert.equal(result.code, 64, result.all);
    assert.match(result.all, /is a plain directory: rollback and promotion write commits/);
  });
});

describe('berth rollback', () => {
  it('--last is the default: one revert commit on the environment\'s branch, and what happens next', async () => {
    const r = await configRepo({ main: { 'apps/web.yaml': web('web:1.1') } });
    const result = await berth('rollback', '--env', 'production', '--repo', r.repo, '--state-dir', r.state, '--author', 'Ops <ops@example.com>');
    assert.equal(result.code, 0, result.all);
    const head = await r.git('rev-parse', 'main');
    assert.equal(await r.git('log', '-1', '--format=%s|%an <%ae>', 'main'), 'Revert "a change on main"|Ops <ops@example.com>');
    assert.match(result.stdout, new RegExp(`^${head.slice(0, 7)} Revert "a change on main"  \\(reverts ${r.main.slice(0, 7)}\\)$`, 'm'));
    assert.match(result.stdout, /1 revert commit on main, moved main in /);
    assert.match(result.stdout, /berth converges to it as to any commit; follow it with `berth status --env production`/);
    assert.equal(await r.git('rev-parse', 'staging'), r.staging, 'the other branch untouched');
  });

  it('--to with --output json: one object listing every revert commit', async () => {
    const r = await configRepo();
    const first = await r.git('rev-parse', 'staging~1');
    const result = await berth('rollback', '--env', 'staging', '--repo', r.repo, '--state-dir', r.state, '--to', first.slice(0, 10), '--output', 'json');
    assert.equal(result.code, 0, result.all);
    const json = JSON.parse(result.stdout) as { env: string; branch: string; before: string; after: string; commits: { sha: string; reverts: string; subject: string }[]; pushed: boolean };
    assert.equal(json.env, 'staging');
    assert.equal(json.branch, 'staging');
    assert.equal(json.before, r.staging);
    assert.equal(json.after, await r.git('rev-parse', 'staging'));
    assert.deepEqual(json.commits.map((c) => [c.reverts, c.subject]), [[r.staging, 'web 2.0']]);
    assert.equal(json.pushed, false);
  });

  it('--to the head: nothing to do, exit 0', async () => {
    const r = await configRepo();
    const result = await berth('rollback', '--env', 'production', '--repo', r.repo, '--state-dir', r.state, '--to', r.main);
    assert.equal(result.code, 0, result.all);
    assert.match(result.stdout, /production: main is at [0-9a-f]{7} already: nothing to revert/);
    assert.equal(await r.git('rev-parse', 'main'), r.main);
  });

  it('pushes to a remote with --git-token', async () => {
    const work = await newWorkRepo({ 'berth.yaml': REPO, 'apps/web.yaml': web('web:1.0') }, cleanup);
    const bad = await work.commit({ 'apps/web.yaml': web('web:broken') }, 'bad release');
    const url = await publish(server, 'cli-rollback', work);
    const result = await berth('rollback', '--env', 'production', '--repo', url, '--git-token', TOKEN, '--state-dir', tempDir('berth-cli-state-'));
    assert.equal(result.code, 0, result.all);
    assert.match(result.stdout, new RegExp(`pushed main to ${url.replace(/[.]/g, '\\.')}`));
    assert.ok(!result.all.includes(TOKEN));
    const git = onServer(server, 'cli-rollback');
    assert.equal(await git('log', '-1', '--format=%s', 'main'), 'Revert "bad release"');
    assert.equal(await git('rev-parse', 'main^'), bad);
  });
});

describe('berth promote', () => {
  const refusals: { name: string; status: (staging: string, main: string) => EnvStatus | undefined; says: RegExp[] }[] = [
    { name: 'no status known', status: () => undefined, says: [/no status known for staging: .* has no status for staging/] },
    { name: 'OutOfSync', status: (s) => envStatus('staging', s, { syncStatus: 'OutOfSync' }), says: [/staging is OutOfSync, not Synced/] },
    {
      name: 'not Healthy, naming the unhealthy apps and their health messages',
      status: (s) => envStatus('staging', s, { health: 'Degraded', apps: [app('web', 'Degraded', 'GET /health: HTTP 500'), app('api', 'Healthy'), app('docs', 'Missing')] }),
      says: [/staging is Degraded, not Healthy \(web Degraded: GET \/health: HTTP 500; docs Missing\)/],
    },
    { name: 'its branch head is not the revision it applied', status: (_, m) => envStatus('staging', m), says: [/staging's head [0-9a-f]{7} is not the revision staging last applied \(staging@sha1:[0-9a-f]{40}\): staging has not converged to it yet/] },
    { name: 'no revision applied yet', status: (s) => envStatus('staging', s, { lastAppliedRevision: undefined }), says: [/staging has applied no revision yet/] },
    {
      name: 'every reason at once',
      status: (_, m) => envStatus('staging', m, { syncStatus: 'OutOfSync', health: 'Progressing', apps: [app('web', 'Progressing', 'waiting for its health check')] }),
      says: [/staging is OutOfSync, not Synced/, /staging is Progressing, not Healthy \(web Progressing: waiting for its health check\)/, /staging's head .* is not the revision staging last applied/],
    },
  ];
  for (const c of refusals) {
    it(`refused (exit 1, nothing changes): ${c.name}`, async () => {
      const r = await configRepo();
      const status = c.status(r.staging, r.main);
      if (status) await new HistoryStore(r.state, 'staging').writeStatus(status);
      const refs = await r.git('for-each-ref');
      const result = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state);
      assert.equal(result.code, 1, result.all);
      assert.match(result.stderr, new RegExp(`not promoting staging \\(staging@${r.staging.slice(0, 7)}\\) into production:`));
      for (const says of c.says) assert.match(result.stderr, says);
      assert.match(result.stderr, /or pass --force/);
      assert.equal(await r.git('for-each-ref'), refs);
    });
  }

  it('Synced and Healthy at its branch head: a fast-forward, exit 0', async () => {
    const r = await configRepo();
    await new HistoryStore(r.state, 'staging').writeStatus(envStatus('staging', r.staging));
    const result = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state);
    assert.equal(result.code, 0, result.all);
    assert.match(result.stdout, new RegExp(`fast-forward: production \\(main\\) moved to staging \\(staging@${r.staging.slice(0, 7)}\\), ${r.main.slice(0, 7)}\\.\\.${r.staging.slice(0, 7)}`));
    assert.match(result.stdout, /follow it with `berth status --env production`/);
    assert.equal(await r.git('rev-parse', 'main'), r.staging);
  });

  it('a merge commit when production moved too; then already up to date', async () => {
    const r = await configRepo({ main: { 'README.md': 'hotfix\n' } });
    await new HistoryStore(r.state, 'staging').writeStatus(envStatus('staging', r.staging));
    const result = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state);
    assert.equal(result.code, 0, result.all);
    const head = await r.git('rev-parse', 'main');
    assert.match(result.stdout, new RegExp(`merge commit ${head.slice(0, 7)} on main: Promote staging \\(staging@${r.staging.slice(0, 7)}\\) into production \\(main@${r.main.slice(0, 7)}\\)`));
    assert.equal(await r.git('log', '-1', '--format=%P', 'main'), `${r.main} ${r.staging}`);
    assert.match(await r.git('log', '-1', '--format=%B', 'main'), new RegExp(`staging: staging@sha1:${r.staging}\nproduction: main@sha1:${r.main}`));
    const again = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state);
    assert.equal(again.code, 0, again.all);
    assert.match(again.stdout, /already up to date, nothing to promote/);
    assert.equal(await r.git('rev-parse', 'main'), head);
  });

  it('--force promotes anyway, saying what it overrides; --output json', async () => {
    const r = await configRepo();
    await new HistoryStore(r.state, 'staging').writeStatus(envStatus('staging', r.staging, { health: 'Degraded', apps: [app('web', 'Degraded', 'crash-looping')] }));
    const result = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state, '--force', '--output', 'json');
    assert.equal(result.code, 0, result.all);
    const json = JSON.parse(result.stdout) as { promoted: boolean; kind: string; from: { env: string; branch: string; sha: string }; to: { env: string; branch: string; before: string; after: string }; forced: string[] };
    assert.deepEqual({ promoted: json.promoted, kind: json.kind, from: json.from, to: json.to }, { promoted: true, kind: 'fast-forward', from: { env: 'staging', branch: 'staging', sha: r.staging }, to: { env: 'production', branch: 'main', before: r.main, after: r.staging } });
    assert.match(json.forced.join('\n'), /staging is Degraded, not Healthy \(web Degraded: crash-looping\)/);
    assert.equal(await r.git('rev-parse', 'main'), r.staging);

    const text = await configRepo();
    const forced = await berth('promote', 'staging', 'production', '--repo', text.repo, '--state-dir', text.state, '--force');
    assert.equal(forced.code, 0, forced.all);
    assert.match(forced.stderr, /promoting anyway \(--force\), although:\n  - no status known for staging/);
  });

  it('refused as JSON with --output json', async () => {
    const r = await configRepo();
    const result = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state, '--output', 'json');
    assert.equal(result.code, 1, result.all);
    const json = JSON.parse(result.stdout) as { promoted: boolean; refused: string[] };
    assert.equal(json.promoted, false);
    assert.match(json.refused[0] ?? '', /no status known for staging/);
  });

  it('reads FROM\'s status from its controller with --from-server', async () => {
    const r = await configRepo();
    let status: EnvStatus = envStatus('staging', r.staging, { syncStatus: 'OutOfSync' });
    const api = http.createServer((req, res) => {
      if (req.url !== '/api/v1/status') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status));
    });
    await new Promise<void>((ok) => api.listen(0, '127.0.0.1', () => ok()));
    const url = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
    try {
      // The state dir says Synced; the controller's answer is the one that counts.
      await new HistoryStore(r.state, 'staging').writeStatus(envStatus('staging', r.staging));
      const refused = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state, '--from-server', url);
      assert.equal(refused.code, 1, refused.all);
      assert.match(refused.stderr, /staging is OutOfSync, not Synced/);
      status = envStatus('production', r.staging);
      const wrongEnv = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state, '--from-server', url);
      assert.equal(wrongEnv.code, 1, wrongEnv.all);
      assert.match(wrongEnv.stderr, /the status at http:\/\/127\.0\.0\.1:\d+\/api\/v1\/status is of environment "production", not "staging"/);
      status = envStatus('staging', r.staging);
      const ok = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state, '--from-server', url);
      assert.equal(ok.code, 0, ok.all);
      assert.equal(await r.git('rev-parse', 'main'), r.staging);
    } finally {
      await new Promise<void>((ok) => api.close(() => ok()));
    }
    const gone = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state, '--from-server', url);
    assert.equal(gone.code, 1, gone.all);
    assert.match(gone.stderr, /no status known for staging: no controller answered at http:\/\/127\.0\.0\.1:\d+\/api\/v1\/status/);
  });

  it('a conflict is an error (exit 1) that changes nothing', async () => {
    const r = await configRepo({ main: { 'apps/web.yaml': web('web:1.1') } });
    await new HistoryStore(r.state, 'staging').writeStatus(envStatus('staging', r.staging));
    const refs = await r.git('for-each-ref');
    const result = await berth('promote', 'staging', 'production', '--repo', r.repo, '--state-dir', r.state);
    assert.equal(result.code, 1, result.all);
    assert.match(result.stderr, /error \[E_CONFLICT\]: merging staging \([0-9a-f]{7}\) into main \([0-9a-f]{7}\) conflicts; nothing was changed\. Conflicting files:\n  apps\/web\.yaml \(content\)/);
    assert.equal(await r.git('for-each-ref'), refs);
  });
});
