import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { infrastructure, removeEnv, type Infrastructure } from '../support/env.js';
import { manyAppsRepo, type ManyAppsRepo } from '../support/many-apps.js';
import { get } from '../support/nginx.js';
import { runBerth } from '../support/run.js';

// Issue 8: environments of the size users run, through the real CLI, dockerd and nginx.

/** Progress lines of `berth apply` as [app, phase, message], in the order printed. */
function progress(stderr: string): [string, string, string][] {
  return stderr
    .split('\n')
    .map((l) => /^\[\s*[\d.]+s\] (\S+)\s+(\S+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1]!, m[2]!, m[3]!]);
}

describe('scale: many routed apps, parallel dependency waves (real CLI, Docker, nginx)', () => {
  let b: Infrastructure | undefined;
  const repos: ManyAppsRepo[] = [];
  /** The CLI's environment for `repo`. */
  const cliEnv = (repo: ManyAppsRepo): NodeJS.ProcessEnv => ({ ...b!.cliEnv, BERTH_REPO: repo.dir, BERTH_ENV: repo.env });

  before(async (t) => {
    b = await infrastructure(t as never);
  });
  after(async () => {
    for (const r of repos) {
      if (b) await removeEnv(b.docker, r.env);
      r.cleanup();
    }
    await b?.teardown();
  });

  it('applies 100 routed apps, every one answers through nginx, and a re-apply is a no-op', async (t) => {
    if (!b) return t.skip('no docker/nginx');
    const repo = manyAppsRepo({ count: 100 });
    repos.push(repo);
    const applied = await runBerth(['apply'], cliEnv(repo));
    assert.equal(applied.code, 0, applied.stderr.slice(-3000));
    const summary = /✔ Succeeded: 100 succeeded in ([\d.]+)s, (\d+) nginx reloads?/.exec(applied.stderr);
    assert.ok(summary, applied.stderr.slice(-2000));
    // Switches are batched: far fewer reloads than apps (each reload is spaced ≥ 1 s).
    assert.ok(Number(summary[2]) <= Math.ceil(Number(summary[1])) + 2, `reloads ${summary[2]} in ${summary[1]} s`);
    assert.ok(Number(summary[2]) < 50, `${summary[2]} reloads for 100 apps`);
    // Apps interleave, yet every progress line names its app first.
    const lines = progress(applied.stderr);
    assert.equal(new Set(lines.map(([app]) => app)).size, 100);

    const answers = await Promise.all(repo.apps.map(async (app) => [app, await get(b!.nginx.port, repo.host(app))] as const));
    for (const [app, res] of answers) assert.deepEqual(res, { status: 200, body: `${app}\n` }, app);

    // The state berth reads back from nginx has no size limit: every line is under nginx's 4 KiB.
    const conf = path.join(b.nginx.confDir, `berth-${repo.env}.conf`);
    const text = readFileSync(conf, 'utf8');
    assert.ok(Math.max(...text.split('\n').map((l) => Buffer.byteLength(l))) < 4096);
    const mtime = statSync(conf).mtimeMs;
    const ids = (await b.docker.listContainers({ all: true, filters: { label: [`berth.env=${repo.env}`] } })).map((c) => c.Id).sort();
    assert.equal(ids.length, 100);

    const plan = await runBerth(['plan'], cliEnv(repo));
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
    const again = await runBerth(['apply'], cliEnv(repo));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /is in sync; nothing to apply/);
    assert.equal(statSync(conf).mtimeMs, mtime, 'a no-op apply does not rewrite (or reload) nginx');
    assert.deepEqual((await b.docker.listContainers({ all: true, filters: { label: [`berth.env=${repo.env}`] } })).map((c) => c.Id).sort(), ids);
    await removeEnv(b.docker, repo.env);
  });

  it('respects dependsOn chains under parallelism, and one failing app among 20 leaves the 19 others applied', async (t) => {
    if (!b) return t.skip('no docker/nginx');
    const repo = manyAppsRepo({ count: 20, failing: ['app010'], dependsOn: { app001: ['app000'], app002: ['app001'], app003: ['app001'] } });
    repos.push(repo);
    const applied = await runBerth(['apply', '--parallelism', '6'], cliEnv(repo));
    assert.equal(applied.code, 3, `exit 3 (rolled back) expected:\n${applied.stderr.slice(-3000)}`);
    assert.match(applied.stderr, /✖ RolledBack: 19 succeeded, 1 rolledback/);
    assert.match(applied.stderr, /app010: new version failed its health check/);

    const lines = progress(applied.stderr);
    const first = (app: string, phase: string): number => lines.findIndex(([a, p]) => a === app && p === phase);
    for (const [app, dep] of [['app001', 'app000'], ['app002', 'app001'], ['app003', 'app001']] as const) {
      assert.ok(first(dep, 'done') >= 0 && first(app, 'start') > first(dep, 'done'), `${app} started before ${dep} was healthy`);
    }
    // Independent apps ran at once: some app started before app000 was done.
    assert.ok(lines.slice(0, first('app000', 'done')).some(([a, p]) => a !== 'app000' && p === 'start'), 'no parallelism seen');

    for (const app of repo.apps.filter((a) => a !== 'app010')) assert.deepEqual(await get(b.nginx.port, repo.host(app)), { status: 200, body: `${app}\n` }, app);
    const failed = await b.docker.listContainers({ all: true, filters: { label: [`berth.env=${repo.env}`, 'berth.app=app010'] } });
    assert.equal(failed.length, 0, 'the rolled-back app left no container behind');
    await removeEnv(b.docker, repo.env);
  });
});
