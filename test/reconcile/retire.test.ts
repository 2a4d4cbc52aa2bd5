import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../src/cli/main.js';
import { plan } from '../../src/plan/plan.js';
import { desiredState, pruneFor } from '../../src/render/retire.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { observe } from '../../src/runtime/observe.js';
import { app, ENV, harness, repo, repoYaml, web, type Harness } from '../controller/harness.js';
import { memoryRevision, REPO_YAML } from '../support/repo.js';

// Item 13 of #11: an environment is retired with `retired: true` in berth.yaml, or, once removed
// from berth.yaml, with `--prune-environment`; both plan "no apps, no routes" against what is left.

const APPS = { web: web('v1'), api: app('api', 'v1') };
const SECRETS = envSecretSource({});

/** A berth-labelled container of `env` as one started by hand (or by another berth) would be. */
function byHand(env: string, name: string): Parameters<Harness['runtime']['run']>[0] {
  return {
    name,
    image: 'berth-demo/httpd:1.0',
    labels: { 'berth.managed': 'true', 'berth.env': env, 'berth.app': 'web', 'berth.spec-hash': '0badcafe00000000', 'berth.replica': '7', 'berth.spec': '{}' },
    env: {},
    ports: [],
    volumes: [],
    restartPolicy: 'no',
    stopGracePeriodSeconds: 1,
    init: false,
  };
}

/** A container of another environment, started beside production's: retiring production never touches it. */
async function neighbour(h: Harness): Promise<string> {
  return (await h.runtime.run(byHand('staging', 'staging-web-1-abcdef12'))).id;
}

/** berth.yaml without the production environment. */
const WITHOUT_PRODUCTION = REPO_YAML.replace('  production: { branch: main }\n', '');

describe('retiring an environment: the plan', () => {
  const ways = [
    { name: '`retired: true` in berth.yaml', files: repo(APPS, repoYaml('retired: true')), pruneEnvironment: false },
    { name: 'removed from berth.yaml, with --prune-environment', files: repo(APPS, WITHOUT_PRODUCTION), pruneEnvironment: true },
    { name: '`retired: true` with selfHeal and prune: false (retiring removes all the same)', files: repo(APPS, repoYaml('selfHeal: true, prune: false, retired: true')), pruneEnvironment: false },
  ];
  for (const way of ways) {
    it(`${way.name}: every container and route of the environment is removed, nothing of another`, async () => {
      const h = await harness(repo(APPS));
      try {
        await h.sync('startup');
        await neighbour(h);
        const desired = desiredState(memoryRevision(way.files), ENV, { secrets: SECRETS, pruneEnvironment: way.pruneEnvironment });
        assert.ok(desired.ok, JSON.stringify(!desired.ok && desired.problems));
        assert.equal(desired.state.settings.retired, true);
        assert.deepEqual(desired.state.apps, []);
        // --no-prune on the command line does not keep anything of a retiring environment.
        const planned = plan(desired.state, await observe(ENV, h.runtime, h.proxy), { prune: pruneFor(desired.state, false) });

        assert.deepEqual(
          planned.apps.map((a) => [a.app, a.op, a.actions.map((x) => `${x.kind} ${x.count}`)]),
          [
            ['api', 'prune', ['remove 2']],
            ['web', 'prune', ['remove 2', 'route-update 0']],
          ],
        );
        assert.match(planned.apps[1]!.actions[1]!.reason, /^remove route web\.test\//);
        assert.deepEqual(planned.proxy.drop, ['web']);
        const pruned = planned.apps.flatMap((a) => a.replicas.prune);
        assert.equal(pruned.length, 4);
        assert.ok(pruned.every((r) => r.name.startsWith(`${ENV}-`)), 'only production containers are in the plan');
        assert.equal(planned.empty, false);
      } finally {
        await h.close();
      }
    });
  }

  it('without the flag, an environment missing from berth.yaml is an error that names the flag', () => {
    const r = desiredState(memoryRevision(repo(APPS, WITHOUT_PRODUCTION)), ENV, { secrets: SECRETS });
    assert.equal(r.ok, false);
    const problem = !r.ok ? r.problems.find((p) => p.code === 'unknown-environment') : undefined;
    assert.match(problem?.message ?? '', /not defined in berth\.yaml.*berth plan --env production --prune-environment/);
  });
});

describe('retiring an environment: the controller', () => {
  it('removes its containers, routes and proxy config, reports Retired, and heals nothing afterwards', async () => {
    const h = await harness(repo(APPS, repoYaml('selfHeal: true')));
    try {
      await h.sync('startup');
      const other = await neighbour(h);
      assert.equal(h.proxy.present, true);

      h.serve(repo(APPS, repoYaml('selfHeal: true, retired: true')));
      await h.sync('poll');

      assert.deepEqual(await h.runtime.list(ENV), [], 'no container of production is left');
      assert.equal(h.runtime.containers.get(other)?.state, 'running', 'the other environment is untouched');
      assert.deepEqual(h.proxy.config.routes, []);
      assert.equal(h.proxy.present, false, 'the proxy config is removed');
      assert.equal(h.proxy.removals, 1);
      const record = (await h.records()).at(-1)!;
      assert.equal(record.result, 'Succeeded');
      assert.deepEqual(
        record.apps.map((a) => [a.app, a.result]),
        [
          ['api', 'Succeeded'],
          ['web', 'Succeeded'],
          ['(proxy)', 'Succeeded'],
        ],
      );
      assert.equal(h.controller.status.syncStatus, 'Retired');
      assert.deepEqual(h.controller.status.apps, []);

      // Converged: polls record nothing and apply nothing.
      const records = (await h.records()).length;
      const started = h.ofType('reconcile.started').length;
      await h.sync('poll');
      assert.equal((await h.records()).length, records);
      assert.equal(h.ofType('reconcile.started').length, started);
      assert.equal(h.controller.status.syncStatus, 'Retired');

      // A container of the retired environment started by hand is reported, not removed (no heal, whatever selfHeal said).
      const stray = await h.runtime.run(byHand(ENV, `${ENV}-web-7-0badcafe`));
      await h.sync('runtime');
      assert.equal(h.runtime.containers.get(stray.id)?.state, 'running');
      assert.equal(h.ofType('reconcile.started').length, started);
      assert.deepEqual(h.ofType('drift.detected').at(-1)?.apps, ['web']);
    } finally {
      await h.close();
    }
  });
});

describe('retiring an environment: the CLI refuses before touching anything', () => {
  const cases = [
    { name: '--prune-environment on an environment berth.yaml still defines', args: ['plan', '--env', 'production', '--prune-environment'], code: 64, says: /still defined there.*retired: true/ },
    { name: 'apply --prune-environment without a saved plan or --yes', args: ['apply', '--env', 'gone', '--prune-environment'], code: 64, says: /berth plan --env gone --prune-environment.*--yes/ },
    { name: 'plan of an environment removed from berth.yaml, without the flag', args: ['plan', '--env', 'gone'], code: 1, says: /not defined in berth\.yaml.*--prune-environment/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-retire-cli-'));
      try {
        await mkdir(path.join(dir, 'repo/apps'), { recursive: true });
        await writeFile(path.join(dir, 'repo/berth.yaml'), REPO_YAML);
        await writeFile(path.join(dir, 'repo/apps/web.yaml'), web('v1'));
        const lines: string[] = [];
        const out = { print: (t: string) => void lines.push(t), info: (t: string) => void lines.push(t), color: false };
        // Docker is never reached: an unreachable host would fail differently.
        const code = await main(['node', 'berth', ...c.args, '--repo', path.join(dir, 'repo'), '--state-dir', path.join(dir, 'state'), '--docker-host', 'unix:///nonexistent.sock', '--nginx-conf-dir', path.join(dir, 'conf')], out);
        assert.equal(code, c.code, lines.join('\n'));
        assert.match(lines.join('\n'), c.says);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
