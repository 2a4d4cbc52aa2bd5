// Shared by the scale benchmarks: an environment of N routed apps (one replica each) on the real
// dockerd and a private nginx, applied with the real CLI (compiled build), and torn down after.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { dockerOptions } from '../src/runtime/docker/driver.js';
import { ensureDemoImages } from '../test/support/docker.js';
import { cliEnvFor, removeEnv, removeLabelled } from '../test/support/env.js';
import { manyAppsRepo, type ManyAppsRepo } from '../test/support/many-apps.js';
import { get, launchNginx, type TestNginx } from '../test/support/nginx.js';
import { runBerth } from '../test/support/run.js';

export const APPS = Number(process.env.BENCH_APPS ?? 100);

export interface ManyEnv {
  docker: Docker;
  nginx: TestNginx;
  repo: ManyAppsRepo;
  /** Environment variables for the CLI under test. */
  cliEnv: NodeJS.ProcessEnv;
  /** `berth apply` with extra args; throws unless it exits 0. Returns wall time and its summary line. */
  apply(args?: string[]): Promise<{ ms: number; summary: string }>;
  /** Resolves once every app answers its own name through nginx. */
  allServing(timeoutMs?: number): Promise<void>;
  teardown(): Promise<void>;
}

/** `intervalSeconds`: the apps' health-check interval (default 0.25 s, for quick gates; berth's own default is 2 s). */
export async function manyEnv(count = APPS, options: { intervalSeconds?: number } = {}): Promise<ManyEnv> {
  const docker = new Docker(dockerOptions(process.env.DOCKER_HOST));
  await ensureDemoImages(docker);
  const nginx = await launchNginx();
  const repo = manyAppsRepo({ count, ...(options.intervalSeconds !== undefined && { intervalSeconds: options.intervalSeconds }) });
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-state-'));
  const cliEnv: NodeJS.ProcessEnv = { ...cliEnvFor(nginx, stateDir), BERTH_REPO: repo.dir, BERTH_ENV: repo.env, BERTH_LOG_LEVEL: 'warn' };
  const allServing = async (timeoutMs = 120_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let waiting = [...repo.apps];
    while (waiting.length) {
      const answers = await Promise.all(waiting.map(async (app) => ((await get(nginx.port, repo.host(app)).catch(() => undefined))?.body === `${app}\n` ? undefined : app)));
      waiting = answers.filter((a): a is string => a !== undefined);
      if (waiting.length && Date.now() > deadline) throw new Error(`${waiting.length} apps not serving through nginx after ${timeoutMs} ms (first: ${waiting[0]})`);
      if (waiting.length) await new Promise((r) => setTimeout(r, 100));
    }
  };
  return {
    docker,
    nginx,
    repo,
    cliEnv,
    allServing,
    apply: async (args = []) => {
      const t0 = performance.now();
      const r = await runBerth(['apply', ...args], cliEnv);
      const ms = performance.now() - t0;
      if (r.code !== 0) throw new Error(`berth apply exited ${r.code}:\n${r.stderr.slice(-3000)}`);
      const summary = r.stderr.trim().split('\n').filter((l) => /^✔|^✖/.test(l)).pop() ?? '';
      return { ms, summary };
    },
    teardown: async () => {
      await removeEnv(docker, repo.env);
      nginx.stop();
      repo.cleanup();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

const run = promisify(execFile);

/**
 * The floor: the same containers started with the docker CLI, `parallel` at a time, then probed on
 * their published port until each answers /health. What a careful script would do without berth.
 */
export async function dockerRunFloor(docker: Docker, count: number, parallel = 4): Promise<number> {
  const label = `berth-bench-floor=${Math.random().toString(36).slice(2, 8)}`;
  const t0 = performance.now();
  const ports: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const { stdout } = await run('docker', ['run', '-d', '--label', label, '-p', '127.0.0.1::8080', 'berth-demo/httpd:1.0']);
      const info = await docker.getContainer(stdout.trim()).inspect();
      ports[i] = Number(info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort);
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, worker));
    for (const port of ports) {
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return performance.now() - t0;
  } finally {
    await removeLabelled(docker, label);
  }
}

/** VmRSS and VmHWM (peak since start, or since resetPeak) of a process, in MB, from /proc. */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** Resets a process's peak RSS (VmHWM) to its current RSS, so the next peak is of what follows. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}
