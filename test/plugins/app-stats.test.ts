import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type Docker from 'dockerode';
import { appStatsSource } from '../../src/plugins/app-stats.js';
import { containerStats } from '../../src/runtime/docker/driver.js';
import { HaproxyDriver } from '../../src/runtime/haproxy/driver.js';
import { backendName } from '../../src/runtime/haproxy/names.js';
import { parseBackendStats, readBackendStats } from '../../src/runtime/haproxy/stats.js';
import type { ContainerStats, LiveContainer, ProxyAppStats, ProxyDriver, RuntimeDriver } from '../../src/runtime/types.js';

// The stats berth hands scalers (PluginContext.appStats): Docker's numbers as `docker stats` shows
// them, HAProxy's backend counters, and the module that turns both into one reading per app.

/** A `GET /containers/{id}/stats?stream=false` answer (cgroup v1, as the test dockerd gives it), with `over` on top. */
function rawStats(over: { total?: number; preTotal?: number; system?: number; preSystem?: number; online?: number; usage?: number; inactive?: number; v2?: boolean; limit?: number } = {}): Docker.ContainerStats {
  const inactive = over.inactive ?? 0;
  return {
    read: '2025-01-15T10:00:01Z',
    preread: '2025-01-15T10:00:00Z',
    cpu_stats: { cpu_usage: { total_usage: over.total ?? 540_000_000, percpu_usage: [1, 2], usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: over.system ?? 2_002_000_000_000, online_cpus: over.online ?? 2, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    precpu_stats: { cpu_usage: { total_usage: over.preTotal ?? 40_000_000, percpu_usage: [1, 2], usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: over.preSystem ?? 2_000_000_000_000, online_cpus: over.online ?? 2, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    memory_stats: { usage: over.usage ?? 50_000_000, max_usage: 0, limit: over.limit ?? 200_000_000, stats: over.v2 ? { inactive_file: inactive } : { total_inactive_file: inactive } },
  } as unknown as Docker.ContainerStats;
}

describe('containerStats: docker stats arithmetic', () => {
  it('CPU % is the container delta over the system delta, times the online CPUs', () => {
    // 0.5 s of CPU while the host's 2 CPUs counted 2 s between them (1 s of wall time): 25% of the host, 50% of one CPU.
    assert.equal(containerStats(rawStats()).cpuPercent, 50);
  });

  it('falls back to the per-CPU list when online_cpus is absent', () => {
    assert.equal(containerStats(rawStats({ online: 0 })).cpuPercent, 50);
  });

  it('is 0 without a previous reading (precpu empty) or without CPU use', () => {
    assert.equal(containerStats(rawStats({ preSystem: 0, system: 0 })).cpuPercent, 0);
    assert.equal(containerStats(rawStats({ total: 40_000_000 })).cpuPercent, 0);
  });

  it('memory leaves out inactive page cache (cgroup v1 and v2), and keeps the limit', () => {
    assert.deepEqual(
      { ...containerStats(rawStats({ usage: 50_000_000, inactive: 10_000_000 })), cpuPercent: 0 },
      { cpuPercent: 0, memoryBytes: 40_000_000, memoryLimitBytes: 200_000_000 },
    );
    assert.equal(containerStats(rawStats({ usage: 50_000_000, inactive: 20_000_000, v2: true })).memoryBytes, 30_000_000);
  });
});

// The BACKEND row of HAProxy 2.6's `show stat <backend> 2 -1`, as the Runtime API answers it (columns up to ttime).
const HEAD = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,';
const ROW = (backend: string, reqTot: string, rtime: string) => `${backend},BACKEND,0,0,0,1,999,5,410,2475,0,0,,0,0,0,0,UP,1,1,0,,0,2,0,,1,3,0,,5,,1,5,,5,,,,0,5,0,0,0,0,,,,${reqTot},0,0,0,0,0,0,1,,,0,1,${rtime},3,`;

describe('HAProxy backend stats', () => {
  it('reads req_tot and rtime from the BACKEND row', () => {
    assert.deepEqual(parseBackendStats(`${HEAD}\n${ROW('be_x', '1234', '7')}\n`, 'be_x'), { requestsTotal: 1234, meanResponseMs: 7 });
  });

  it('no row for the backend, no header, or an empty req_tot: undefined; an empty rtime: no mean', () => {
    assert.equal(parseBackendStats(`${HEAD}\n${ROW('be_y', '5', '1')}\n`, 'be_x'), undefined);
    assert.equal(parseBackendStats("Can't find backend.", 'be_x'), undefined);
    assert.equal(parseBackendStats(`${HEAD}\n${ROW('be_x', '', '1')}\n`, 'be_x'), undefined);
    assert.deepEqual(parseBackendStats(`${HEAD}\n${ROW('be_x', '5', '')}\n`, 'be_x'), { requestsTotal: 5 });
  });

  it('never sends a name HAProxy would read as more than one word', async () => {
    const sent: string[] = [];
    await assert.rejects(readBackendStats({ send: async (c) => (sent.push(c), '') }, 'be_x; shutdown'), /not a HAProxy name/);
    assert.deepEqual(sent, []);
  });

  const driver = (answers: (command: string) => string): HaproxyDriver =>
    new HaproxyDriver({ configFile: '/nonexistent/berth.cfg', socket: '/nonexistent.sock', bind: '127.0.0.1:1', checkCmd: ['true'], reloadCmd: ['true'], minReloadIntervalMs: 0, api: { send: async (c) => answers(c) } });

  it('HaproxyDriver.stats: the counter, with the worker pid as its epoch', async () => {
    const be = backendName('production', 'web');
    const d = driver((c) => (c === 'show info' ? 'Name: HAProxy\nPid: 4242\n' : c === `show stat ${be} 2 -1` ? `${HEAD}\n${ROW(be, '99', '3')}` : ''));
    assert.deepEqual(await d.stats('production', 'web'), { requestsTotal: 99, epoch: '4242', meanResponseMs: 3 });
  });

  it('HaproxyDriver.stats: undefined when a reload changed the worker while it read', async () => {
    const be = backendName('production', 'web');
    let pid = 1;
    const d = driver((c) => (c === 'show info' ? `Pid: ${pid++}\n` : `${HEAD}\n${ROW(be, '99', '3')}`));
    assert.equal(await d.stats('production', 'web'), undefined);
  });
});

function container(id: string, app: string, state: LiveContainer['state'] = 'running'): LiveContainer {
  return { id, name: id, env: 'production', app, revision: 'r', specHash: 'h', replica: 0, spec: '', image: 'i', state, status: '', ports: [], created: 0, host: 'local' };
}

function fakeRuntime(containers: LiveContainer[], stats: Record<string, ContainerStats | Error | undefined> | undefined): RuntimeDriver {
  const runtime = {
    name: 'docker',
    list: async () => containers,
    ...(stats && {
      stats: async (id: string) => {
        const s = stats[id];
        if (s instanceof Error) throw s;
        return s;
      },
    }),
  };
  return runtime as unknown as RuntimeDriver;
}

function fakeProxy(readings: (ProxyAppStats | Error | undefined)[]): ProxyDriver {
  return {
    name: 'haproxy',
    stats: async () => {
      const r = readings.shift();
      if (r instanceof Error) throw r;
      return r;
    },
  } as unknown as ProxyDriver;
}

describe('appStatsSource', () => {
  const MB = 1_000_000;

  it('averages CPU and memory over the running replicas of the app only', async () => {
    const runtime = fakeRuntime([container('a', 'web'), container('b', 'web'), container('c', 'web', 'exited'), container('d', 'api')], {
      a: { cpuPercent: 80, memoryBytes: 100 * MB, memoryLimitBytes: 200 * MB },
      b: { cpuPercent: 20, memoryBytes: 50 * MB, memoryLimitBytes: 500 * MB },
      c: { cpuPercent: 999, memoryBytes: 1, memoryLimitBytes: 1 },
      d: { cpuPercent: 999, memoryBytes: 1, memoryLimitBytes: 1 },
    });
    const stats = await appStatsSource({ env: 'production', runtime })('web');
    assert.deepEqual(stats, { replicas: 2, cpuPercent: 50, memoryBytes: 75 * MB, memoryPercent: 30, source: ['docker'] });
  });

  it('a replica that cannot be read is left out of the averages, not the count', async () => {
    const runtime = fakeRuntime([container('a', 'web'), container('b', 'web')], { a: { cpuPercent: 40, memoryBytes: 1, memoryLimitBytes: 0 }, b: new Error('gone') });
    const stats = await appStatsSource({ env: 'production', runtime })('web');
    assert.deepEqual(stats, { replicas: 2, cpuPercent: 40, memoryBytes: 1, source: ['docker'] });
  });

  it('a runtime without stats: the replica count and nothing else', async () => {
    const stats = await appStatsSource({ env: 'production', runtime: fakeRuntime([container('a', 'web')], undefined) })('web');
    assert.deepEqual(stats, { replicas: 1, source: [] });
  });

  it('requests/s from two counter readings of the same epoch; none from the first, after a reload, or a counter that went back', async () => {
    let t = 0;
    const proxy = fakeProxy([
      { requestsTotal: 100, epoch: 'w1', meanResponseMs: 4 },
      { requestsTotal: 400, epoch: 'w1', meanResponseMs: 5 },
      { requestsTotal: 30, epoch: 'w2' },
      { requestsTotal: 130, epoch: 'w2' },
      { requestsTotal: 20, epoch: 'w2' },
    ]);
    const read = appStatsSource({ env: 'production', runtime: fakeRuntime([container('a', 'web')], undefined), proxy, now: () => t });
    assert.deepEqual(await read('web'), { replicas: 1, meanResponseMs: 4, source: ['haproxy'] });
    t += 2000;
    assert.deepEqual(await read('web'), { replicas: 1, requestsPerSecond: 150, meanResponseMs: 5, source: ['haproxy'] });
    t += 1000;
    assert.deepEqual(await read('web'), { replicas: 1, source: [] }, 'another epoch');
    t += 4000;
    assert.equal((await read('web')).requestsPerSecond, 25);
    t += 1000;
    assert.equal((await read('web')).requestsPerSecond, undefined, 'the counter went back');
  });

  it('a proxy that cannot be read: a warning, and the runtime metrics still', async () => {
    const warnings: string[] = [];
    const read = appStatsSource({
      env: 'production',
      runtime: fakeRuntime([container('a', 'web')], { a: { cpuPercent: 10, memoryBytes: 1, memoryLimitBytes: 100 } }),
      proxy: fakeProxy([new Error('no socket')]),
      onWarning: (msg, fields) => void warnings.push(`${msg}: ${String(fields.err)}`),
    });
    assert.deepEqual(await read('web'), { replicas: 1, cpuPercent: 10, memoryBytes: 1, memoryPercent: 1, source: ['docker'] });
    assert.deepEqual(warnings, ['proxy stats could not be read: no socket']);
  });

  it('a runtime that cannot list rejects: the scaler reports it', async () => {
    const runtime = { name: 'docker', list: async () => Promise.reject(new Error('Docker is down')) } as unknown as RuntimeDriver;
    await assert.rejects(appStatsSource({ env: 'production', runtime })('web'), /Docker is down/);
  });
});
