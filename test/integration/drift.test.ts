import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import type { EnvStatus, ReconcileRecord } from '../../src/report/history.js';
import { stage, type copyExampleRepo, type Stage } from '../support/env.js';
import { freePort, get, type TestNginx } from '../support/nginx.js';
import { editFile } from '../support/repo.js';
import { startBerthRun, waitFor, type RunningBerth } from '../support/run.js';
import { followEvents, type SeenEvent } from '../support/sse.js';

const TOKEN = 'drift-api-token';
/** What the issue asks: drift reported within 2 s by a running controller. */
const REPORT_MS = 2000;
/** The heal limit the suite's berth.yaml sets (per 10 min), below the default so the flapping test is quick. */
const HEAL_LIMIT = 2;

type Seen = SeenEvent<Record<string, unknown> & { apps?: string[]; reason?: string; selfHeal?: boolean; proxy?: string; description?: string }>;
const follow = (api: string, types: string) => followEvents<Seen['data']>(api, types);

// Issue 8, items 5 and 6, against the real `berth run`, dockerd and nginx. The poll interval is an
// hour, so only the event streams (Docker /events, the nginx conf dir) can find drift this fast.
describe('drift in seconds through events, the flapping guard, failing replicas replaced (real berth run, Docker, nginx)', () => {
  let st: Stage | undefined;
  let docker: Docker | undefined;
  let nginx: TestNginx | undefined;
  let repo: ReturnType<typeof copyExampleRepo>;
  let berth: RunningBerth | undefined;
  let events: Awaited<ReturnType<typeof follow>> | undefined;

  const json = async <T>(p: string): Promise<T> => (await fetch(`${berth!.api}${p}`)).json() as Promise<T>;
  const status = () => json<EnvStatus>('/api/v1/status');
  const history = () => json<ReconcileRecord[]>('/api/v1/history?limit=200');
  const running = async (app: string) => docker!.listContainers({ filters: { label: [`berth.env=${repo.env}`, `berth.app=${app}`], status: ['running'] } });
  const metric = async (name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)`, 'm').exec(await (await fetch(`${berth!.api}/metrics`)).text())?.[1] ?? 0);
  const forceSync = () => fetch(`${berth!.api}/api/v1/sync?force=true`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });

  /** waitFor, with the controller's last log lines in the failure message. */
  const until = async <T>(check: () => Promise<T> | T, ms: number, what: string) => {
    try {
      return await waitFor(check, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- berth run log (tail) ---\n${berth?.logs().split('\n').slice(-25).join('\n')}`);
    }
  };

  /** The first event of `type` after `since` that `match` accepts. */
  const event = (type: string, since: number, match: (e: Seen) => boolean = () => true) => events!.seen.find((e) => e.type === type && e.at >= since && match(e));

  /** Waits until no reconcile finished for 1.5 s (the re-check berth's own container events ask for comes 0.5 s after them). */
  const quiet = async () => {
    await until(async () => {
      const last = events!.seen.filter((e) => e.type === 'reconcile.finished').at(-1)?.at ?? 0;
      return Date.now() - last >= 1500 && (await status()).syncStatus === 'Synced';
    }, 30_000, 'the controller to go quiet');
  };

  before(async (t) => {
    st = await stage(t as never);
    if (!st) return;
    ({ docker, nginx, repo } = st);
    editFile(repo.dir, 'berth.yaml', `${repo.env}: { branch: main }`, `${repo.env}: { branch: main, selfHeal: true, healLimit: { heals: ${HEAL_LIMIT}, windowSeconds: 600 } }`);
    berth = await startBerthRun(['--interval', '1h'], { ...st.cliEnv, BERTH_REPO: repo.dir, BERTH_ENV: repo.env, BERTH_API_TOKEN: TOKEN, BERTH_LOG_LEVEL: 'info' }, await freePort());
    events = await follow(berth.api, 'drift.,health.failed,reconcile.finished');
    await until(async () => {
      const s = await status();
      return s.syncStatus === 'Synced' && s.health === 'Healthy';
    }, 60_000, 'Synced + Healthy');
    await quiet();
  });
  after(async () => {
    await events?.close();
    await berth?.stop();
    await st?.teardown();
  });

  // `docker stop` takes a moment: berth's probes may see the replica fail before its `die` event, so
  // either re-check (runtime event or health monitor) may be the one that heals it.
  const handEdits: { name: string; app: string; act: (id: string) => Promise<void>; triggers: string[] }[] = [
    { name: 'docker rm -f', app: 'web', act: async (id) => docker!.getContainer(id).remove({ force: true }), triggers: ['runtime'] },
    { name: 'docker stop', app: 'api', act: async (id) => docker!.getContainer(id).stop(), triggers: ['runtime', 'health'] },
  ];
  for (const c of handEdits) {
    it(`${c.name} of a replica: reported as drift within 2 s (no poll), then healed: a replacement serves`, async (t) => {
      if (!berth || !nginx) return t.skip('controller not running');
      const [victim] = await running(c.app);
      const want = (await running(c.app)).length;
      const t0 = Date.now();

      await c.act(victim!.Id);
      const detected = await until(() => event('drift.detected', t0, (e) => e.data.apps?.includes(c.app) ?? false), 10_000, 'drift.detected');
      const healed = await until(() => event('drift.healed', t0, (e) => e.data.apps?.includes(c.app) ?? false), 30_000, 'drift.healed');
      t.diagnostic(`${c.name}: reported after ${detected.at - t0} ms, healed after ${healed.at - t0} ms`);

      assert.ok(detected.at - t0 <= REPORT_MS, `drift reported after ${detected.at - t0} ms (aim ≤ ${REPORT_MS})`);
      assert.equal(detected.data.selfHeal, true);
      assert.match(detected.data.description ?? '', new RegExp(`^${c.app}: 1 of \\d+ replicas? (missing|not running)$`));
      const now = await running(c.app);
      assert.equal(now.length, want, 'as many replicas as before');
      assert.ok(now.every((x) => x.Id !== victim!.Id), 'a new container replaced the victim');
      const conf = readFileSync(path.join(nginx.confDir, `berth-${repo.env}.conf`), 'utf8');
      for (const x of now) assert.ok(conf.includes(`127.0.0.1:${x.Ports.find((p) => p.PrivatePort === 8080)!.PublicPort}`), `nginx sends traffic to ${x.Names[0]}`);
      const host = c.app === 'web' ? 'web.example.test' : 'api.example.test';
      assert.equal((await get(nginx.port, host)).status, 200);
      const record = (await history()).filter((r) => Date.parse(r.startedAt) >= t0 && r.apps.some((a) => a.app === c.app)).at(-1);
      assert.ok(c.triggers.includes(record?.trigger ?? ''), `healed by a re-check (${record?.trigger})`);
      assert.equal(record?.result, 'Succeeded', JSON.stringify(record));
      assert.equal(await metric(`berth_triggers_total{env="${repo.env}",trigger="poll"}`), 0, 'no poll ran');
      await quiet();
    });
  }

  it('a hand edit of the nginx file: reported as drift within 2 s, then rewritten', async (t) => {
    if (!berth || !nginx) return t.skip('controller not running');
    const file = path.join(nginx.confDir, `berth-${repo.env}.conf`);
    const original = readFileSync(file, 'utf8');
    const line = /^\s*server 127\.0\.0\.1:\d+[^\n]*$/m.exec(original)?.[0];
    assert.ok(line, 'the file has an upstream server line');
    const t0 = Date.now();

    editFile(nginx.confDir, path.basename(file), line, line.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:9'));
    const detected = await until(() => event('drift.detected', t0, (e) => e.data.proxy !== undefined), 10_000, 'drift.detected for the nginx file');
    const healed = await until(() => event('drift.healed', t0, (e) => e.data.proxy !== undefined), 30_000, 'drift.healed for the nginx file');
    t.diagnostic(`nginx edit: reported after ${detected.at - t0} ms, rewritten after ${healed.at - t0} ms`);

    assert.ok(detected.at - t0 <= REPORT_MS, `drift reported after ${detected.at - t0} ms (aim ≤ ${REPORT_MS})`);
    assert.equal(detected.data.description, 'nginx file edited');
    assert.match(detected.data.proxy ?? '', /^nginx file edited: line \d+ is /);
    assert.doesNotMatch(readFileSync(file, 'utf8'), /127\.0\.0\.1:9;/, 'berth wrote its file again');
    assert.equal((await get(nginx.port, 'web.example.test')).status, 200);
    const record = (await history()).filter((r) => Date.parse(r.startedAt) >= t0).at(-1);
    assert.equal(record?.trigger, 'proxy');
    assert.ok((record?.reloads ?? 0) >= 1, 'nginx reloaded the rewritten file');
    await quiet();
  });

  it('a replica failing its health check 3 times in a row is replaced through the rolling strategy; event and reason recorded', async (t) => {
    if (!berth || !nginx) return t.skip('controller not running');
    const [victim] = await running('web');
    const t0 = Date.now();

    // The probe is GET /health, served from /www: gone, it answers 404. (Attached, so the exec's
    // connection ends with it; a detached start keeps its socket open.)
    const exec = await docker!.getContainer(victim!.Id).exec({ Cmd: ['/bin/busybox', 'rm', '/www/health'], AttachStdout: true, AttachStderr: true });
    const output = await exec.start({});
    output.resume();
    await new Promise((r) => output.on('end', r));
    assert.equal((await exec.inspect()).ExitCode, 0);
    const failed = await until(() => event('health.failed', t0, (e) => e.data.containerId === victim!.Id), 15_000, 'health.failed');
    const record = await until(async () => (await history()).find((r) => r.trigger === 'health' && Date.parse(r.startedAt) >= t0), 30_000, 'the replacement recorded');
    t.diagnostic(`failing replica: health.failed after ${failed.at - t0} ms; replaced in ${record.durationMs} ms`);

    assert.equal(failed.data.failures, 3);
    assert.match(String(failed.data.message), /GET \/health → 404/);
    assert.equal(record.result, 'Succeeded');
    const web = record.apps.find((a) => a.app === 'web')!;
    assert.match(web.actions[0]!, new RegExp(`^heal: replica ${victim!.Names[0]!.slice(1)} failed its health check 3 times in a row: GET /health → 404`));
    const now = await running('web');
    assert.equal(now.length, 2);
    assert.ok(now.every((x) => x.Id !== victim!.Id), 'the failing replica is gone');
    assert.deepEqual(event('drift.detected', t0), undefined, 'a failing replica is not drift');
    assert.equal((await get(nginx.port, 'web.example.test')).status, 200);
    await quiet();
  });

  it('a container killed in a loop stops being healed after the flapping limit; a forced sync heals it again', async (t) => {
    if (!berth || !nginx) return t.skip('controller not running');
    for (let i = 1; i <= HEAL_LIMIT; i++) {
      const [victim] = await running('worker');
      const t0 = Date.now();
      await docker!.getContainer(victim!.Id).kill();
      await until(() => event('drift.healed', t0, (e) => e.data.apps?.includes('worker') ?? false), 30_000, `heal ${i}`);
      await quiet();
    }
    const [victim] = await running('worker');
    const t0 = Date.now();
    await docker!.getContainer(victim!.Id).kill();
    const limited = await until(() => event('drift.detected', t0, (e) => e.data.reason === 'HealLimitReached'), 10_000, 'HealLimitReached');
    assert.deepEqual(limited.data.apps, ['worker']);
    assert.equal(limited.data.selfHeal, false);
    assert.match(limited.data.description ?? '', new RegExp(`^worker healed ${HEAL_LIMIT} times in 10 min; berth leaves it alone`));
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await running('worker')).length, 0, 'not healed past the limit');
    assert.deepEqual(event('drift.healed', t0), undefined);
    const worker = (await status()).apps.find((a) => a.app === 'worker')!;
    assert.deepEqual([worker.health, worker.reason, worker.syncStatus], ['Degraded', 'HealLimitReached', 'OutOfSync']);

    const forced = Date.now();
    assert.equal((await forceSync()).status, 202);
    await until(async () => (await running('worker')).length === 1, 30_000, 'worker healed by the forced sync');
    await quiet();
    const [again] = await running('worker');
    const t1 = Date.now();
    await docker!.getContainer(again!.Id).kill();
    await until(() => event('drift.healed', t1, (e) => e.data.apps?.includes('worker') ?? false), 30_000, 'healed again after the forced sync');
    assert.ok(t1 > forced);
    assert.equal(await metric(`berth_triggers_total{env="${repo.env}",trigger="poll"}`), 0, 'no poll ran in the whole suite');
  });
});
