import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { httpdApp } from '../support/apps.js';
import { infrastructure, removeEnv, type Infrastructure } from '../support/env.js';
import { newWorkRepo } from '../support/git-repos.js';
import { haproxyCliEnv, startHaproxy, type TestHaproxy } from '../support/haproxy.js';
import { freePort } from '../support/nginx.js';
import { startBerthRun, waitFor, type RunningBerth } from '../support/run.js';
import { followEvents, type SeenEvent } from '../support/sse.js';

// Issue #10, "done when": the metrics scaler scales out under load generated on 127.0.0.1 and back in
// after the cooldown. A real `berth run` (real dockerd; nginx, then HAProxy), the built-in
// metrics-scaler enabled by a Plugin document with a short window and cooldown, the demo httpd app
// with `scaling: { min: 1, max: 3 }`; replicas are counted by Docker's labels.

/** Load limits: a bounded burst on 127.0.0.1, stopped earlier once the app has scaled out. */
const LOAD_CONNECTIONS = 8;
const LOAD_MAX_SECONDS = 20;
const LOAD_MAX_REQUESTS = 20_000;
/** Shorter than the defaults by far, so a round trip takes seconds: the policy is the same. */
const WINDOW_SECONDS = 3;
const COOLDOWN_SECONDS = 5;

interface Decision {
  from: number;
  to: number;
  reason: string;
  scaler: string;
}

/** GETs through the proxy on 127.0.0.1:`port` (Host `host`), `LOAD_CONNECTIONS` at a time, until stopped or a limit is reached. */
function burst(port: number, host: string): { stop(): Promise<{ ok: number; failed: number }> } {
  let running = true;
  let ok = 0;
  let failed = 0;
  const deadline = Date.now() + LOAD_MAX_SECONDS * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      // busybox httpd closes each connection: no keep-alive, a fork per request (that is the CPU).
      const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else failed++;
          resolve();
        });
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
    });
  const worker = async (): Promise<void> => {
    while (running && Date.now() < deadline && ok + failed < LOAD_MAX_REQUESTS) await one();
  };
  const workers = Array.from({ length: LOAD_CONNECTIONS }, worker);
  return {
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return { ok, failed };
    },
  };
}

function pluginDoc(config: Record<string, unknown>): string {
  return `apiVersion: berth/v1\nkind: Plugin\nmetadata: { name: autoscale }\nspec:\n  use: metrics-scaler\n  config: ${JSON.stringify(config)}\n`;
}

/** One environment under `berth run` with the scaler, and the decisions it announces. */
interface Stage {
  env: string;
  host: string;
  proxyPort: number;
  berth: RunningBerth;
  events: { seen: SeenEvent<Decision>[]; close(): Promise<void> };
  /** When `berth run` was started (Date.now()). */
  startedAt: number;
}

describe('metrics-scaler (issue #10): scales out under load and back in after the cooldown (real berth run, Docker)', () => {
  let infra: Infrastructure | undefined;
  let haproxy: TestHaproxy | undefined;
  const stages: { nginx?: Stage; haproxy?: Stage } = {};
  const cleanup: string[] = [];

  const CONFIG = { windowSeconds: WINDOW_SECONDS, cooldownSeconds: COOLDOWN_SECONDS, maxStep: 1, intervalSeconds: 1 };

  /** A config repo of one app (web, `scaling: { min: 1, max: 3 }`) and the scaler, served by a `berth run` through `proxyPort`. */
  async function stage(prefix: string, proxyPort: number, cliEnv: NodeJS.ProcessEnv, config: Record<string, unknown>): Promise<Stage> {
    const env = `${prefix}${Math.random().toString(36).slice(2, 8)}`;
    const host = `web.${env}.test`;
    const repo = await newWorkRepo(
      {
        'berth.yaml': `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${env}: { branch: main }\n`,
        'apps/web.yaml': httpdApp({ name: 'web', host, drainSeconds: 1, extra: '  scaling: { min: 1, max: 3 }\n' }),
        'plugins/autoscale.yaml': pluginDoc({ ...config, ...CONFIG }),
      },
      cleanup,
    );
    const startedAt = Date.now();
    const berth = await startBerthRun(['--env', env, '--repo', repo.dir, '--interval', '1h'], { ...cliEnv, BERTH_LOG_LEVEL: 'info' }, await freePort());
    return { env, host, proxyPort, berth, events: await followEvents<Decision>(berth.api, 'scaling.decision'), startedAt };
  }

  before(async (t) => {
    infra = await infrastructure(t as never);
    if (!infra) return;
    haproxy = await startHaproxy(t as never);
    // Both controllers start at once: berth run's first scaling round comes up to 30 s after its start
    // (ScalingLoop.start reads the scalers' interval before the first reconcile has started any), so
    // the two waits overlap instead of adding up.
    const [viaNginx, viaHaproxy] = await Promise.all([
      // Calibrated on the test dockerd: ~30% of a CPU for one replica at ~500 requests/s, ~0% idle.
      stage('msc', infra.nginx.port, infra.cliEnv, { apps: ['web'], scaleOut: { cpuPercent: 6 }, scaleIn: { cpuPercent: 2 } }),
      haproxy && stage('msh', haproxy.port, { ...infra.cliEnv, ...haproxyCliEnv(haproxy) }, { apps: ['*'], scaleOut: { requestsPerSecondPerReplica: 40 }, scaleIn: { requestsPerSecondPerReplica: 5 } }),
    ]);
    stages.nginx = viaNginx;
    stages.haproxy = viaHaproxy;
  });
  after(async () => {
    for (const st of [stages.nginx, stages.haproxy]) {
      if (!st) continue;
      await st.events.close();
      await st.berth.stop();
      if (infra) await removeEnv(infra.docker, st.env);
    }
    await haproxy?.stop();
    await infra?.teardown();
    for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
  });

  /** Running replicas of web in `env`, by Docker's labels. */
  const replicas = async (env: string): Promise<number> =>
    (await infra!.docker.listContainers({ filters: { label: [`berth.env=${env}`, 'berth.app=web'], status: ['running'] } })).length;

  const scalerHealth = async (st: Stage): Promise<{ state?: string; ok?: boolean; message?: string }> =>
    fetch(`${st.berth.api}/api/v1/plugins/autoscale/health`).then((r) => r.json() as Promise<{ state?: string; message?: string }>, () => ({}));

  /** waitFor, with the scaler's health and the controller's last log lines in the failure message. */
  const until = async <T>(st: Stage, check: () => Promise<T> | T, ms: number, what: string) => {
    try {
      return await waitFor(check, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- the scaler's health ---\n${JSON.stringify(await scalerHealth(st))}\n--- berth run log (tail) ---\n${st.berth.logs().split('\n').slice(-30).join('\n')}`);
    }
  };

  /**
   * Once the scaler has been asked about web (on 1 replica): load through the proxy until Docker
   * runs 2+ replicas, then quiet until it runs 1 again. Returns the decisions with their arrival.
   */
  async function roundTrip(st: Stage): Promise<{ decisions: SeenEvent<Decision>[]; load: { ok: number; failed: number }; peak: number; seconds: number }> {
    await until(st, async () => (await replicas(st.env)) === 1 && /^web: 1 /.test((await scalerHealth(st)).message ?? ''), 45_000, 'web on 1 replica, the scaler asked about it');
    const began = Date.now();
    const load = burst(st.proxyPort, st.host);
    let peak = 1;
    let result: { ok: number; failed: number };
    try {
      peak = await until(st, async () => {
        const n = await replicas(st.env);
        return n >= 2 ? n : undefined;
      }, LOAD_MAX_SECONDS * 1000, 'a scale-out to 2+ replicas under load');
    } finally {
      result = await load.stop();
    }
    await until(st, async () => st.events.seen.some((e) => e.data.to < e.data.from) && (await replicas(st.env)) === 1, 45_000, 'a scale-in back to 1 replica once the load stopped');
    peak = Math.max(peak, ...st.events.seen.map((e) => e.data.to));
    return { decisions: [...st.events.seen], load: result, peak, seconds: (Date.now() - began) / 1000 };
  }

  /** What every round trip shows: out first (named metric, window), in only after the cooldown, never past the bounds. */
  function checkDecisions(decisions: SeenEvent<Decision>[], metric: RegExp): void {
    assert.ok(decisions.length >= 2, JSON.stringify(decisions));
    const [first] = decisions;
    assert.deepEqual({ from: first!.data.from, to: first!.data.to, scaler: first!.data.scaler }, { from: 1, to: 2, scaler: 'autoscale' });
    assert.match(first!.data.reason, new RegExp(`^${metric.source} [\\d.]+ ?(%|ms)? > [\\d.]+ ?(%|ms)? over ${WINDOW_SECONDS} s$`));
    for (const [i, d] of decisions.entries()) {
      assert.ok(d.data.to >= 1 && d.data.to <= 3, `within { min: 1, max: 3 }: ${JSON.stringify(d.data)}`);
      assert.ok(Math.abs(d.data.to - d.data.from) === 1, `maxStep 1: ${JSON.stringify(d.data)}`);
      // Arrival times carry a little jitter (the event stream): 0.5 s of slack on the 5-s cooldown.
      if (i > 0) assert.ok(d.at - decisions[i - 1]!.at >= COOLDOWN_SECONDS * 1000 - 500, `decision ${i} came ${d.at - decisions[i - 1]!.at} ms after the one before: inside the cooldown`);
    }
    const scaleIn = decisions.find((d) => d.data.to < d.data.from);
    assert.ok(scaleIn, 'a scale-in decision');
    assert.match(scaleIn.data.reason, new RegExp(`^${metric.source} [\\d.]+ ?(%|ms)? < [\\d.]+ ?(%|ms)? over ${WINDOW_SECONDS} s`));
  }

  const summary = (r: Awaited<ReturnType<typeof roundTrip>>): string =>
    `${r.load.ok} requests (${r.load.failed} failed), peak ${r.peak} replicas, ${r.decisions.map((d) => `${d.data.from}→${d.data.to} (${d.data.reason})`).join('; ')}; round trip ${r.seconds.toFixed(1)} s`;

  it('nginx: CPU from Docker stats (the busybox httpd forks per request) scales web out and back in', async (t) => {
    const st = stages.nginx;
    if (!st) return t.skip('no docker/nginx');
    const r = await roundTrip(st);
    t.diagnostic(summary(r));
    checkDecisions(r.decisions, /cpu/);
    assert.ok(r.load.ok > 0);
  });

  it('HAProxy: requests/s per replica from its backend counters scale web out and back in', async (t) => {
    const st = stages.haproxy;
    if (!st) return t.skip('no haproxy');
    const r = await roundTrip(st);
    t.diagnostic(summary(r));
    checkDecisions(r.decisions, /requests\/s per replica/);
    assert.equal(r.load.failed, 0, 'no request failed while HAProxy scaled the backend');
  });
});
