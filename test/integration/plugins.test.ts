import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import type { create as exampleCreate } from '../../examples/berth-plugin-audit/src/index.js';
import type { PluginView } from '../../src/plugins/host.js';
import type { PluginFactory } from '../../src/plugins/types.js';
import type { EnvStatus, ReconcileRecord } from '../../src/report/history.js';
import { httpdApp } from '../support/apps.js';
import { infrastructure, removeEnv, type Infrastructure } from '../support/env.js';
import { newWorkRepo, type FileChanges, type WorkRepo } from '../support/git-repos.js';
import { freePort, get } from '../support/nginx.js';
import { ROOT } from '../support/repo.js';
import { runBerth, startBerthRun, waitFor, type RunningBerth } from '../support/run.js';
import { followEvents } from '../support/sse.js';

// Issue #10's acceptance tests: the example plugin (examples/berth-plugin-audit) built with its own
// tsconfig, loaded from a folder and as an npm package into a real `berth run` (real dockerd, nginx,
// a local Git config repo), and plugins that throw, hang or are misconfigured, contained.

/**
 * Compile time (npm run typecheck): the example's own copy of berth's types still fits berth's real
 * contract. When src/plugins/types.ts changes incompatibly, this line fails, not a plugin author.
 */
export type ExampleFitsBerth = Assert<typeof exampleCreate extends PluginFactory ? true : false>;
type Assert<T extends true> = T;

const EXAMPLE = path.join(ROOT, 'examples/berth-plugin-audit');
const TOKEN = 'api-token-for-plugin-tests';
const exec = promisify(execFile);

/** npm in `cwd`; rejects with npm's output when it fails. */
async function npm(cwd: string, ...args: string[]): Promise<string> {
  try {
    // Without NODE_TEST_CONTEXT: a test run npm starts (the example's own) reports for itself, not to this one.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    return (await exec('npm', args, { cwd, encoding: 'utf8', maxBuffer: 16 << 20, env: { ...env, NO_UPDATE_NOTIFIER: '1' } })).stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** The berth CLI (from source) with `cwd` as its working directory: npm plugins are found in the cwd's node_modules. */
function repoYaml(env: string): string {
  return `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${env}: { branch: main }\n`;
}

/** A Plugin document, one spec field per line (so a problem's line names the field). */
function pluginDoc(name: string, spec: Record<string, unknown>): string {
  const fields = Object.entries(spec).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
  return `apiVersion: berth/v1\nkind: Plugin\nmetadata: { name: ${name} }\nspec:\n${fields.join('\n')}\n`;
}

/** A plugin folder for --plugin-dir: package.json with its "berth" manifest, and index.mjs. */
function writePlugin(dir: string, name: string, code: string, manifest: Record<string, unknown> = {}): void {
  mkdirSync(path.join(dir, name), { recursive: true });
  const pkg = { name: `berth-plugin-${name}`, version: '1.0.0', type: 'module', berth: { plugin: name, main: './index.mjs', provides: ['event-handler'], ...manifest } };
  writeFileSync(path.join(dir, name, 'package.json'), JSON.stringify(pkg, null, 2));
  writeFileSync(path.join(dir, name, 'index.mjs'), code);
}

function readLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A `berth run` of one environment, and what the tests ask it. */
class Controller {
  constructor(
    readonly berth: RunningBerth,
    readonly env: string,
  ) {}

  async json<T>(p: string): Promise<T> {
    return (await fetch(`${this.berth.api}${p}`)).json() as Promise<T>;
  }

  history = () => this.json<ReconcileRecord[]>('/api/v1/history?limit=100');
  status = () => this.json<EnvStatus>('/api/v1/status');
  plugins = () => this.json<PluginView[]>('/api/v1/plugins');

  async plugin(name: string): Promise<PluginView> {
    const found = (await this.plugins()).find((p) => p.name === name);
    assert.ok(found, `GET /api/v1/plugins lists ${name}`);
    return found;
  }

  async health(name: string): Promise<{ status: number; body: { plugin: string; state: string; ok: boolean; message?: string } }> {
    const res = await fetch(`${this.berth.api}/api/v1/plugins/${name}/health`);
    return { status: res.status, body: (await res.json()) as { plugin: string; state: string; ok: boolean; message?: string } };
  }

  /** POST with the API token (`null`: without one). */
  post(p: string, token: string | null = TOKEN): Promise<Response> {
    return fetch(`${this.berth.api}${p}`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
  }

  /** waitFor, with the controller's last log lines in the failure message. */
  async until<T>(check: () => Promise<T> | T, ms: number, what: string): Promise<Exclude<T, undefined | null | false | '' | 0>> {
    try {
      return await waitFor(check, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- berth run log (tail) ---\n${this.berth.logs().split('\n').slice(-25).join('\n')}`);
    }
  }

  /** The history record of commit `sha`, once there is one. */
  record(sha: string, ms = 60_000): Promise<ReconcileRecord> {
    return this.until(async () => (await this.history()).find((r) => r.revision === `main@sha1:${sha}`), ms, `a history record of ${sha.slice(0, 8)}`);
  }

  /** Events of `types` since berth started (the API replays what its ring holds), read for `ms`. */
  async replay<D>(types: string, ms = 500): Promise<{ type: string; data: D }[]> {
    const abort = new AbortController();
    const res = await fetch(`${this.berth.api}/api/v1/events?lastEventId=0&types=${types}`, { signal: abort.signal });
    const text: string[] = [];
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const timer = setTimeout(() => abort.abort(), ms);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted: read enough
    } finally {
      clearTimeout(timer);
    }
    return text
      .join('')
      .split('\n\n')
      .map((block) => ({ type: /^event: (.*)$/m.exec(block)?.[1], data: /^data: (.*)$/m.exec(block)?.[1] }))
      .filter((e): e is { type: string; data: string } => !!e.type && !!e.data)
      .map((e) => ({ type: e.type, data: JSON.parse(e.data) as D }));
  }
}

describe('plugins (issue #10): the example plugin, and containment (real berth run, Docker, nginx)', () => {
  let infra: Infrastructure | undefined;
  const cleanup: string[] = [];
  const envs: string[] = [];
  let running: RunningBerth | undefined;

  const tempDir = (prefix: string): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), `berth-${prefix}-`));
    cleanup.push(dir);
    return dir;
  };
  const newEnv = (): string => {
    const env = `plg${Math.random().toString(36).slice(2, 8)}`;
    envs.push(env);
    return env;
  };
  const cliEnv = (): NodeJS.ProcessEnv => ({ ...infra!.cliEnv, BERTH_API_TOKEN: TOKEN, BERTH_LOG_LEVEL: 'info' });
  /** A local Git config repo of `env`: one app (hello) with a route, plus `files`. */
  const configRepo = (env: string, files: FileChanges): Promise<WorkRepo> =>
    newWorkRepo({ 'berth.yaml': repoYaml(env), 'apps/hello.yaml': httpdApp({ name: 'hello', host: `hello.${env}.test`, body: 'hello-1' }), ...files }, cleanup);
  const stopRunning = async (): Promise<void> => {
    await running?.stop();
    running = undefined;
  };

  before(async () => {
    // What CI does with the example: its build script (the root project's tsc, through npm's PATH).
    await npm(EXAMPLE, 'run', 'build');
  });
  after(async () => {
    await stopRunning();
    if (infra) for (const env of envs) await removeEnv(infra.docker, env);
    await infra?.teardown();
    for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
  });

  it('the example builds with its own tsconfig and passes its own tests', async () => {
    assert.ok(existsSync(path.join(EXAMPLE, 'dist/index.js')), 'npm run build wrote dist/index.js');
    const out = await npm(EXAMPLE, 'test');
    assert.match(out, /^# pass [1-9]\d*$/m);
    assert.match(out, /^# fail 0$/m);
  });

  describe('loaded from a directory (--plugin-dir)', () => {
    let c: Controller | undefined;
    let repo: WorkRepo;
    let out: string;

    it('after the startup reconcile the API shows it running, and its file holds the events of that reconcile', async (t) => {
      infra = await infrastructure(t as TestContext);
      if (!infra) return;
      const env = newEnv();
      out = tempDir('audit-out');
      const file = path.join(out, 'audit.jsonl');
      repo = await configRepo(env, { 'plugins/audit.yaml': pluginDoc('audit', { use: 'audit', config: { file, events: ['reconcile.*', 'app.result', 'plugin.stateChanged'] } }) });
      const sha = await repo.head();
      running = await startBerthRun(['--env', env, '--repo', repo.dir, '--interval', '1h', '--plugin-dir', EXAMPLE], cliEnv(), await freePort());
      c = new Controller(running, env);

      const record = await c.record(sha);
      assert.equal(record.result, 'Succeeded');
      assert.equal(record.trigger, 'startup');
      const view = await c.plugin('audit');
      const { name, use, version, origin, provides, state, file: doc, isolation, lastError } = view;
      assert.deepEqual(
        { name, use, version, origin, provides, state, doc, isolation, lastError },
        { name: 'audit', use: 'audit', version: '0.1.0', origin: EXAMPLE, provides: ['event-handler', 'lifecycle-hook'], state: 'running', doc: 'plugins/audit.yaml', isolation: 'inline', lastError: undefined },
      );

      const revision = `main@sha1:${sha}`;
      const lines = await c.until(() => {
        const l = readLines(file);
        return l.some((e) => e.type === 'reconcile.finished' && e.revision === revision) ? l : undefined;
      }, 15_000, 'reconcile.finished in the audit file');
      const started = lines.find((e) => e.type === 'reconcile.started');
      const finished = lines.find((e) => e.type === 'reconcile.finished');
      assert.deepEqual({ revision: started?.revision, trigger: started?.trigger }, { revision, trigger: 'startup' });
      assert.deepEqual({ result: finished?.result, trigger: finished?.trigger }, { result: 'Succeeded', trigger: 'startup' });
      assert.ok(lines.some((e) => e.type === 'app.result' && e.app === 'hello' && e.revision === revision), 'app.result of hello');
      assert.ok(!lines.some((e) => e.type === 'app.progress'), 'app.progress is not selected');
      assert.ok(lines.indexOf(started!) < lines.indexOf(finished!), 'in order');

      const health = await c.health('audit');
      assert.equal(health.status, 200);
      assert.deepEqual({ ok: health.body.ok, state: health.body.state }, { ok: true, state: 'running' });
      assert.match(health.body.message ?? '', new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is writable \\(\\d+ bytes\\)$`));

      const points = await c.json<{ point: string; plugins: { name: string; state: string }[] }[]>('/api/v1/extension-points');
      for (const point of ['event-handler', 'lifecycle-hook']) {
        assert.deepEqual(points.find((p) => p.point === point)?.plugins.map((p) => `${p.name}:${p.state}`), ['audit:running'], point);
      }
    });

    it('a pushed change of plugins/audit.yaml reloads it without restarting berth (updating → running); its freeze window vetoes an apply', async (t) => {
      if (!c || !infra) return t.skip('controller not running');
      const pid = c.berth.child.pid;
      const stateChanges = await followEvents<{ plugin: string; from: string; to: string; reason?: string }>(c.berth.api, 'plugin.');
      const file = path.join(out, 'audit-2.jsonl');
      const events = ['reconcile.*', 'app.result', 'plugin.stateChanged'];
      const now = Date.now();
      const freeze = [{ from: new Date(now - 3600_000).toISOString(), until: new Date(now + 3600_000).toISOString(), reason: 'integration freeze' }];
      const host = `hello.${c.env}.test`;
      try {
        const frozen = await repo.commit(
          {
            'plugins/audit.yaml': pluginDoc('audit', { use: 'audit', required: true, config: { file, events, freeze } }),
            'apps/hello.yaml': httpdApp({ name: 'hello', host, body: 'hello-2' }),
          },
          'a freeze window, and hello-2',
        );
        // The ref watch picks the commit up; the reconcile reloads the plugin, then asks its preApply.
        const vetoed = await c.record(frozen);
        assert.equal(vetoed.result, 'Failed');
        assert.equal(vetoed.reason, 'Vetoed');
        assert.equal(vetoed.error, `apply vetoed by plugin audit: frozen until ${freeze[0]!.until}: integration freeze`);
        assert.equal((await get(infra.nginx.port, host)).body, 'hello-1\n', 'nothing applied');

        const changes = await c.until(() => {
          const audit = stateChanges.seen.filter((e) => e.data.plugin === 'audit').map((e) => e.data);
          return audit.some((e) => e.to === 'running') ? audit : undefined;
        }, 15_000, 'audit running again');
        assert.deepEqual(
          changes.map((e) => `${e.from} → ${e.to}`),
          ['running → updating', 'updating → configuring', 'configuring → starting', 'starting → running'],
        );
        assert.equal(changes[0]!.reason, 'its Plugin document changed');
        assert.equal(c.berth.child.exitCode, null);
        assert.equal(c.berth.child.pid, pid, 'the same berth process');
        assert.equal((await c.plugin('audit')).state, 'running');
        const veto = await c.until(() => readLines(file).find((l) => l.type === 'audit.veto'), 10_000, 'the veto in the new file');
        assert.deepEqual({ revision: veto.revision, veto: veto.veto }, { revision: `main@sha1:${frozen}`, veto: `frozen until ${freeze[0]!.until}: integration freeze` });

        const thawed = await repo.commit({ 'plugins/audit.yaml': pluginDoc('audit', { use: 'audit', required: true, config: { file, events } }) }, 'thaw');
        const applied = await c.record(thawed);
        assert.equal(applied.result, 'Succeeded');
        assert.equal((await get(infra.nginx.port, host)).body, 'hello-2\n');
        const lines = await c.until(() => {
          const l = readLines(file);
          return l.some((e) => e.type === 'reconcile.finished' && e.revision === `main@sha1:${thawed}`) ? l : undefined;
        }, 15_000, 'the thawed reconcile in the audit file');
        assert.ok(lines.some((e) => e.type === 'app.result' && e.app === 'hello' && e.revision === `main@sha1:${thawed}`));
      } finally {
        await stateChanges.close();
        await stopRunning();
      }
    });
  });

  describe('installed as an npm package', () => {
    let c: Controller | undefined;
    let repo: WorkRepo;
    let project: string;
    const wrongPin = `sha512-${createHash('sha512').update('not the audit plugin').digest('base64')}`;

    it('npm pack + npm install: `berth plugins` prints npm\'s digest; pinned to it, it runs; pinned to another, it is in error with "integrity mismatch"; reconciles succeed', async (t) => {
      infra ??= await infrastructure(t as TestContext);
      if (!infra) return;
      // The package as an author publishes it (npm pack runs prepack: the build), installed beside berth.
      const packDir = tempDir('audit-pack');
      const [packed] = JSON.parse(await npm(EXAMPLE, 'pack', '--json', '--pack-destination', packDir)) as { filename: string; integrity: string; files: { path: string }[] }[];
      assert.ok(packed);
      assert.deepEqual(packed.files.map((f) => f.path).sort(), ['README.md', 'config.schema.json', 'dist/berth.js', 'dist/index.js', 'package.json'], 'what the package ships');
      project = tempDir('audit-host');
      writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'berth-host', version: '1.0.0', private: true }));
      await npm(project, 'install', '--offline', '--no-audit', '--no-fund', path.join(packDir, packed.filename));
      const installed = path.join(project, 'node_modules/berth-plugin-audit');

      const listed = JSON.parse((await runBerth(['plugins', '--output', 'json'], cliEnv(), { cwd: project })).stdout) as { plugins: { name: string; origin: string; integrity?: string }[] };
      const row = listed.plugins.find((p) => p.name === 'audit');
      assert.equal(row?.origin, `npm berth-plugin-audit (${installed})`);
      assert.equal(row?.integrity, packed.integrity, "berth's digest is npm's record of the tarball");

      const env = newEnv();
      const out = tempDir('audit-out');
      const file = path.join(out, 'audit.jsonl');
      repo = await configRepo(env, {
        'plugins/audit.yaml': pluginDoc('audit', { use: 'audit', integrity: packed.integrity, config: { file } }),
        'plugins/audit-tampered.yaml': pluginDoc('audit-tampered', { use: 'audit', integrity: wrongPin, config: { file: path.join(out, 'tampered.jsonl') } }),
      });
      const sha = await repo.head();
      running = await startBerthRun(['--env', env, '--repo', repo.dir, '--interval', '1h'], cliEnv(), await freePort(), { cwd: project });
      c = new Controller(running, env);

      assert.equal((await c.record(sha)).result, 'Succeeded');
      const audit = await c.plugin('audit');
      assert.deepEqual({ state: audit.state, origin: audit.origin, lastError: audit.lastError }, { state: 'running', origin: installed, lastError: undefined });
      await c.until(() => readLines(file).some((e) => e.type === 'reconcile.finished' && e.revision === `main@sha1:${sha}`), 15_000, 'reconcile.finished in the audit file');

      const tampered = await c.plugin('audit-tampered');
      assert.equal(tampered.state, 'error');
      assert.equal(tampered.lastError?.point, 'create');
      assert.equal(tampered.lastError?.message, `integrity mismatch: plugins/audit-tampered.yaml pins ${wrongPin}, the installed code is ${packed.integrity}`);
      const health = await c.health('audit-tampered');
      assert.equal(health.status, 503);
      assert.deepEqual(health.body, { plugin: 'audit-tampered', state: 'error', ok: false, message: tampered.lastError?.message });
      assert.equal(existsSync(path.join(out, 'tampered.jsonl')), false, 'its code never ran');
    });

    it('POST …/reload does not start a plugin whose pin does not match', async (t) => {
      if (!c) return t.skip('controller not running');
      const res = await c.post('/api/v1/plugins/audit-tampered/reload');
      assert.equal(res.status, 200);
      const view = (await res.json()) as PluginView;
      assert.equal(view.state, 'error');
      assert.match(view.lastError?.message ?? '', /^integrity mismatch: /);
    });

    it('a pushed commit that pins a running plugin to another digest stops it', async (t) => {
      if (!c) return t.skip('controller not running');
      try {
        const file = path.join(tempDir('audit-out'), 'audit.jsonl');
        const sha = await repo.commit({ 'plugins/audit.yaml': pluginDoc('audit', { use: 'audit', integrity: wrongPin, config: { file } }) }, 'pin audit to other code');
        assert.equal((await c.record(sha)).result, 'Succeeded');
        const audit = await c.until(async () => {
          const p = await c!.plugin('audit');
          return p.state !== 'updating' && p.state !== 'configuring' && p.state !== 'starting' ? p : undefined;
        }, 15_000, 'audit settled');
        assert.equal(audit.state, 'error');
        assert.match(audit.lastError?.message ?? '', /^integrity mismatch: plugins\/audit\.yaml pins /);
      } finally {
        await stopRunning();
      }
    });
  });

  describe('containment: plugins that throw, hang or are misconfigured', () => {
    let c: Controller | undefined;
    let repo: WorkRepo;
    let pluginDir: string;
    let finished: Awaited<ReturnType<typeof followEvents<{ result: string; trigger: string }>>> | undefined;

    /** POST /api/v1/sync and wait for its reconcile.finished (each one an event for the plugins). */
    const sync = async (): Promise<{ result: string; trigger: string }> => {
      const seen = finished!.seen.length;
      assert.equal((await c!.post('/api/v1/sync')).status, 202);
      return (await c!.until(() => finished!.seen[seen], 30_000, 'the sync to finish')).data;
    };
    /** Syncs until `plugin` is in error (each sync a failure more for it); returns the syncs' results. */
    const syncUntilError = async (plugin: string, max: number): Promise<string[]> => {
      const results: string[] = [];
      for (let i = 0; i < max && (await c!.plugin(plugin)).state !== 'error'; i++) {
        const failures = (await c!.plugin(plugin)).failures;
        results.push((await sync()).result);
        // The handler hears reconcile.finished on its own queue, after the reconcile.
        await c!.until(async () => (await c!.plugin(plugin)).failures > failures, 10_000, `${plugin} to fail on the sync's event`);
      }
      return results;
    };

    it('an event handler that throws and one that never returns: reconciles succeed; 5 failures in a row put each in error, with the reason in the API and a 503 health', async (t) => {
      infra ??= await infrastructure(t as TestContext);
      if (!infra) return;
      const dir = tempDir('bad-plugins');
      pluginDir = dir;
      writePlugin(dir, 'thrower', 'export function create() {\n  return { eventHandler: { events: ["reconcile.*"], handle(event) { throw new Error(`thrower refuses ${event.type}`); } } };\n}\n');
      writePlugin(dir, 'hanger', 'export function create() {\n  return { eventHandler: { handle: () => new Promise(() => {}) } };\n}\n');
      writePlugin(dir, 'strict', 'export function create() {\n  return { eventHandler: { handle() {} } };\n}\n', {
        configSchema: { type: 'object', required: ['level'], additionalProperties: false, properties: { level: { type: 'integer', minimum: 1 } } },
      });
      const env = newEnv();
      repo = await configRepo(env, {
        'plugins/thrower.yaml': pluginDoc('thrower', { use: 'thrower' }),
        'plugins/hanger.yaml': pluginDoc('hanger', { use: 'hanger', timeoutSeconds: 0.5 }),
      });
      const sha = await repo.head();
      running = await startBerthRun(['--env', env, '--repo', repo.dir, '--interval', '1h', '--plugin-dir', dir], cliEnv(), await freePort());
      c = new Controller(running, env);
      finished = await followEvents<{ result: string; trigger: string }>(running.api, 'reconcile.finished');

      assert.equal((await c.record(sha)).result, 'Succeeded', 'the startup reconcile');
      assert.equal((await get(infra.nginx.port, `hello.${env}.test`)).body, 'hello-1\n');

      // The hanger gets every event: five of the startup reconcile's time out, half a second each.
      const hanger = await c.until(async () => {
        const p = await c!.plugin('hanger');
        return p.state === 'error' ? p : undefined;
      }, 30_000, 'hanger in error');
      assert.deepEqual(hanger.lastError && { message: hanger.lastError.message, point: hanger.lastError.point }, { message: 'event timed out after 0.5 s', point: 'event' });
      assert.ok(hanger.failures >= 5, `hanger failed ${hanger.failures} times`);

      // The thrower hears only reconcile.*: two failures at startup, one per sync (a quiet reconcile finishes without starting).
      const results = await syncUntilError('thrower', 6);
      assert.ok(results.length >= 1 && results.every((r) => r === 'Succeeded'), `every sync succeeded: ${results.join(', ')}`);
      const thrower = await c.plugin('thrower');
      assert.equal(thrower.state, 'error');
      assert.deepEqual(thrower.lastError && { message: thrower.lastError.message, point: thrower.lastError.point }, { message: 'event threw: thrower refuses reconcile.finished', point: 'event' });
      assert.ok(thrower.failures >= 5);

      const status = await c.status();
      assert.deepEqual({ syncStatus: status.syncStatus, result: status.lastReconcile?.result }, { syncStatus: 'Synced', result: 'Succeeded' });
      assert.ok((await c.history()).every((r) => r.result === 'Succeeded'), 'no reconcile failed');

      for (const [name, message] of [['hanger', 'event timed out after 0.5 s'], ['thrower', 'event threw: thrower refuses reconcile.finished']] as const) {
        const health = await c.health(name);
        assert.equal(health.status, 503, name);
        assert.deepEqual(health.body, { plugin: name, state: 'error', ok: false, message });
      }
      const toError = (await c.replay<{ plugin: string; to: string; reason?: string }>('plugin.stateChanged')).filter((e) => e.data.to === 'error');
      assert.deepEqual(
        toError.map((e) => [e.data.plugin, e.data.reason]),
        [
          ['hanger', '5 failures in a row; last: event timed out after 0.5 s'],
          ['thrower', '5 failures in a row; last: event threw: thrower refuses reconcile.finished'],
        ],
      );
    });

    it('POST /api/v1/plugins/:name/reload brings the thrower back to running, until it fails again', async (t) => {
      if (!c) return t.skip('controller not running');
      assert.equal((await c.post('/api/v1/plugins/thrower/reload', null)).status, 401, 'needs the API token');
      const res = await c.post('/api/v1/plugins/thrower/reload');
      assert.equal(res.status, 200);
      const view = (await res.json()) as PluginView;
      assert.deepEqual({ state: view.state, lastError: view.lastError }, { state: 'running', lastError: undefined });
      assert.deepEqual((await c.health('thrower')).body, { plugin: 'thrower', state: 'running', ok: true, message: 'running' });

      const results = await syncUntilError('thrower', 8);
      assert.ok(results.every((r) => r === 'Succeeded'), `every sync succeeded: ${results.join(', ')}`);
      const again = await c.plugin('thrower');
      assert.equal(again.state, 'error');
      assert.equal(again.lastError?.message, 'event threw: thrower refuses reconcile.finished');
      assert.equal(again.failures - view.failures, 5, 'the reload started the count of failures in a row from zero');
    });

    it('a Plugin document whose config breaks its schema puts that plugin in error; the reconcile still succeeds; validate still refuses it', async (t) => {
      if (!c || !infra) return t.skip('controller not running');
      try {
        const sha = await repo.commit(
          {
            'plugins/strict.yaml': pluginDoc('strict', { use: 'strict', config: { level: 'high' } }),
            'apps/hello.yaml': httpdApp({ name: 'hello', host: `hello.${c.env}.test`, body: 'hello-2' }),
          },
          'strict, misconfigured; hello-2',
        );
        const record = await c.record(sha);
        assert.equal(record.result, 'Succeeded', `the reconcile: ${record.result} ${record.error ?? ''}`);
        assert.equal((await get(infra.nginx.port, `hello.${c.env}.test`)).body, 'hello-2\n');
        const strict = await c.plugin('strict');
        assert.equal(strict.state, 'error');
        assert.match(strict.lastError?.message ?? '', /plugins\/strict\.yaml:6:\d+ .*level/);
        assert.equal((await c.health('strict')).status, 503);
        assert.equal((await c.status()).syncStatus, 'Synced');
        // What a pull request's CI runs: the same document is a problem there, with file and line.
        const validate = await runBerth(['validate', '--repo', repo.dir, '--env', c.env, '--plugin-dir', pluginDir], cliEnv());
        assert.equal(validate.code, 1);
        assert.match(validate.stdout + validate.stderr, /plugins\/strict\.yaml:6:\d+ .*level/);
      } finally {
        await finished?.close();
        await stopRunning();
      }
    });
  });
});
