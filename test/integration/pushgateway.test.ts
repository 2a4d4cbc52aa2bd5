import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { PluginView } from '../../src/plugins/host.js';
import type { EnvStatus, ReconcileRecord } from '../../src/report/history.js';
import { stage, type Stage } from '../support/env.js';
import { freePort, get } from '../support/nginx.js';
import { requirePushgateway, samples, startPushgateway, type Sample, type TestPushgateway } from '../support/pushgateway.js';
import { editFile } from '../support/repo.js';
import { startBerthRun, waitFor, type RunningBerth } from '../support/run.js';

const TOKEN = 'pushgateway-api-token';
const PLUGIN = 'metrics';
const JOB = 'berth';

// Issue #10: the built-in `pushgateway` plugin in a real `berth run` (real dockerd, nginx) pushing to
// a real Prometheus Pushgateway, read back through the Pushgateway's own GET /metrics.
describe('pushgateway plugin: berth run pushes its metrics to a real Pushgateway', () => {
  let gateway: TestPushgateway | undefined;
  let st: Stage | undefined;
  let berth: RunningBerth | undefined;
  let instance: string;

  const json = async <T>(p: string): Promise<T> => (await fetch(`${berth!.api}${p}`)).json() as Promise<T>;
  const status = () => json<EnvStatus>('/api/v1/status');
  const history = () => json<ReconcileRecord[]>('/api/v1/history?limit=100');
  const sync = () => fetch(`${berth!.api}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  const berthMetrics = async () => (await fetch(`${berth!.api}/metrics`)).text();
  /** The group's labels, as the Pushgateway adds them to every pushed sample. */
  const group = () => ({ job: JOB, instance });

  /** waitFor, with the last lines of berth's and the Pushgateway's logs in the failure message. */
  const until = async <T>(check: () => Promise<T> | T, ms: number, what: string) => {
    try {
      return await waitFor(check, ms, what);
    } catch (err) {
      const tail = (text: string | undefined) => (text ?? '').split('\n').slice(-15).join('\n');
      throw new Error(`${(err as Error).message}\n--- berth run log (tail) ---\n${tail(berth?.logs())}\n--- pushgateway log (tail) ---\n${tail(gateway?.logs())}`);
    }
  };

  /** berth_reconcile_total of `result` in berth's own /metrics and in the Pushgateway's group, once they agree on `expected`. */
  const reconcileTotals = async (result: string, expected: number): Promise<{ berth: number; pushed: number }> => {
    const env = st!.repo.env;
    return until(async () => {
      const own = samples(await berthMetrics(), 'berth_reconcile_total', { env, result });
      const pushed = samples(await gateway!.metrics(), 'berth_reconcile_total', { env, result, ...group() });
      const values = { berth: own[0]?.value ?? 0, pushed: pushed[0]?.value ?? 0 };
      return own.length === 1 && pushed.length === 1 && values.berth === expected && values.pushed === expected ? values : undefined;
    }, 15_000, `berth_reconcile_total{result="${result}"} ${expected} in berth's /metrics and in the pushed group`);
  };

  /** The samples of `name` in the pushed group once they are berth's own (same labels besides job and instance, same values). */
  const sameAsBerth = async (name: string, match: Record<string, string>): Promise<Sample[]> => {
    const key = (s: Sample) => `${JSON.stringify(Object.entries(s.labels).filter(([k]) => k !== 'job' && k !== 'instance').sort())} ${s.value}`;
    return until(async () => {
      const own = samples(await berthMetrics(), name, match).sort((a, b) => (key(a) < key(b) ? -1 : 1));
      const pushed = samples(await gateway!.metrics(), name, { ...match, ...group() }).sort((a, b) => (key(a) < key(b) ? -1 : 1));
      return own.length > 0 && own.map(key).join('\n') === pushed.map(key).join('\n') ? pushed : undefined;
    }, 15_000, `the pushed ${name} to be berth's own`);
  };

  before(async () => {
    gateway = await startPushgateway();
  });
  after(async () => {
    await berth?.stop();
    await st?.teardown();
    await gateway?.stop();
  });

  it('after the startup reconcile, the Pushgateway shows berth_reconcile_total of job="berth" with berth\'s values; the plugin is running', async (t) => {
    if (!requirePushgateway(t as TestContext, gateway)) return;
    st = await stage(t as TestContext);
    if (!st) return;
    const { repo } = st;
    instance = `it-${repo.env}`;
    mkdirSync(path.join(repo.dir, 'plugins'), { recursive: true });
    writeFileSync(
      path.join(repo.dir, `plugins/${PLUGIN}.yaml`),
      [
        'apiVersion: berth/v1',
        'kind: Plugin',
        `metadata: { name: ${PLUGIN} }`,
        'spec:',
        '  use: pushgateway',
        '  config:',
        `    url: ${gateway.url}`,
        `    instance: ${instance}`,
        '    intervalSeconds: 1',
        '    deleteOnStop: true',
        '',
      ].join('\n'),
      { flag: 'wx' },
    );
    berth = await startBerthRun(['--interval', '1h'], { ...st.cliEnv, BERTH_REPO: repo.dir, BERTH_ENV: repo.env, BERTH_API_TOKEN: TOKEN, BERTH_LOG_LEVEL: 'info' }, await freePort());
    await until(async () => (await status()).syncStatus === 'Synced', 45_000, 'the startup reconcile (Synced)');
    const [first] = await history();
    assert.deepEqual({ result: first?.result, trigger: first?.trigger }, { result: 'Succeeded', trigger: 'startup' });

    assert.deepEqual(await reconcileTotals('Succeeded', 1), { berth: 1, pushed: 1 });
    const pushed = await gateway.metrics();
    assert.equal(samples(pushed, 'push_failure_time_seconds', group())[0]?.value, 0, 'no push was refused');
    assert.ok((samples(pushed, 'push_time_seconds', group())[0]?.value ?? 0) > 0, 'the group has a push time');
    assert.equal(samples(pushed, 'berth_plugin_running', { env: repo.env, plugin: PLUGIN, ...group() })[0]?.value, 1);
    const apps = await sameAsBerth('berth_app_info', { env: repo.env });
    assert.deepEqual(apps.map((s) => `${s.labels.app}:${s.labels.sync_status}:${s.value}`), ['api:Synced:1', 'docs:Synced:1', 'web:Synced:1', 'worker:Synced:1']);

    const view = (await json<PluginView[]>('/api/v1/plugins')).find((p) => p.name === PLUGIN);
    assert.deepEqual(view && { use: view.use, origin: view.origin, state: view.state, provides: view.provides }, { use: 'pushgateway', origin: 'builtin', state: 'running', provides: ['metrics-exporter'] });
    const health = await fetch(`${berth.api}/api/v1/plugins/${PLUGIN}/health`);
    assert.equal(health.status, 200);
    assert.match(((await health.json()) as { message?: string }).message ?? '', new RegExp(`^pushed [1-9]\\d* times to http://127\\.0\\.0\\.1:${gateway.port}$`));
  });

  it('a changed app and a broken commit show up in the pushed group within a few intervals (Succeeded 2, Failed 1)', async (t) => {
    if (!berth || !st || !gateway) return t.skip('berth not running');
    const { repo, nginx } = st;
    editFile(repo.dir, 'apps/web.yaml', 'APP_VERSION: "1.0"', 'APP_VERSION: "1.1"');
    assert.equal((await sync()).status, 202);
    await until(async () => (await get(nginx.port, 'web.example.test')).body === 'web 1.1\n', 30_000, 'web 1.1 through nginx');
    assert.deepEqual(await reconcileTotals('Succeeded', 2), { berth: 2, pushed: 2 });

    editFile(repo.dir, 'apps/web.yaml', '  replicas: 2', '  replicas: 2\n  replcas: 3');
    assert.equal((await sync()).status, 202);
    assert.deepEqual(await reconcileTotals('Failed', 1), { berth: 1, pushed: 1 });
    assert.deepEqual(await reconcileTotals('Succeeded', 2), { berth: 2, pushed: 2 }, 'the Succeeded series is unchanged');
  });

  it('deleteOnStop: when berth stops, the group is deleted from the Pushgateway', async (t) => {
    if (!berth || !gateway) return t.skip('berth not running');
    assert.ok(samples(await gateway.metrics(), 'push_time_seconds', group()).length === 1, 'the group is there before the stop');
    const running = berth;
    berth = undefined;
    assert.equal(await running.stop(), 0, 'berth run exits 0 on SIGTERM');
    assert.match(running.logs(), /"msg":"metrics group deleted"/);
    const after = await gateway.metrics();
    for (const name of ['push_time_seconds', 'berth_reconcile_total', 'berth_app_info']) {
      assert.deepEqual(samples(after, name, group()), [], `no ${name} of job="${JOB}", instance="${instance}" left`);
    }
    assert.ok(samples(after, 'pushgateway_build_info').length === 1, "the Pushgateway's own metrics are still served");
  });
});
