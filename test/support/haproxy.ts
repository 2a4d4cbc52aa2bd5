import {spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { findBinary, requireBinary } from './services.js';
import { parseWorkerPid, unixSocketApi, type RuntimeApi } from '../../src/runtime/haproxy/runtime-api.js';
import { freePort } from './nginx.js';

/**
 * A private HAProxy in master-worker mode (`-W`, in the foreground of a child process). Reload is
 * SIGUSR2 to the master (`kill -USR2 <pid>`), what Debian's unit does for `systemctl reload
 * haproxy`: HAProxy 2.6's master CLI `reload` command works too, but answers nothing about the
 * outcome, and needs a socket client in the reload command. The master re-reads the config, starts a
 * new worker and lets the old one finish its connections. In master-worker mode the master hands the
 * listening sockets to the new worker itself (`-x sockpair@…`), so the admin socket needs no
 * `expose-fd listeners`: this global section is Debian's, minus what a private instance cannot use.
 */
export interface TestHaproxy {
  prefix: string;
  /** The file berth owns: conf.d/berth.cfg (HAProxy loads the folder after global.cfg). */
  configFile: string;
  /** The admin socket (Runtime API, `level admin`). */
  socket: string;
  port: number;
  bind: string;
  checkCmd: string[];
  reloadCmd: string[];
  masterPid: number;
  api: RuntimeApi;
  /** The current worker's pid (`show info`): it changes on every reload, and only then. */
  workerPid(): Promise<number | undefined>;
  /** The master's log (HAProxy's alerts and notices). */
  log(): string;
  stop(): Promise<void>;
}

export function haproxyBinary(): string | undefined {
  return findBinary(['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'], '-v');
}

/** The environment variables that point the berth CLI at this HAProxy. */
export function haproxyCliEnv(h: TestHaproxy): NodeJS.ProcessEnv {
  return {
    BERTH_PROXY: 'haproxy',
    BERTH_HAPROXY_CONFIG: h.configFile,
    BERTH_HAPROXY_SOCKET: h.socket,
    BERTH_HAPROXY_BIND: h.bind,
    BERTH_HAPROXY_CHECK_CMD: h.checkCmd.join(' '),
    BERTH_HAPROXY_RELOAD_CMD: h.reloadCmd.join(' '),
  };
}

/** A private HAProxy, or a skip (locally) / failure (CI) when HAProxy is not installed. */
export async function startHaproxy(t: TestContext): Promise<TestHaproxy | undefined> {
  if (!requireBinary(t, haproxyBinary(), { name: 'HAProxy', apt: 'haproxy', purpose: 'the integration tests' })) return undefined;
  return launchHaproxy();
}

/** Starts the private HAProxy on a free 127.0.0.1 port; throws when HAProxy is not installed (benchmarks). */
export async function launchHaproxy(): Promise<TestHaproxy> {
  const bin = haproxyBinary();
  if (!bin) throw new Error('HAProxy is not installed (apt-get install haproxy)');
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'berth-haproxy-'));
  const confDir = path.join(prefix, 'conf.d');
  mkdirSync(confDir);
  const socket = path.join(prefix, 'admin.sock');
  const global = path.join(prefix, 'global.cfg');
  writeFileSync(
    global,
    `global
  master-worker
  pidfile ${prefix}/haproxy.pid
  stats socket ${socket} mode 600 level admin
  stats timeout 30s
  maxconn 4096
`,
  );
  const port = await freePort();
  const logFile = path.join(prefix, 'haproxy.log');
  const out = openSync(logFile, 'a');
  const child = spawn(bin, ['-W', '-f', global, '-f', confDir], { stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const api = unixSocketApi(socket, 2000);
  const workerPid = (): Promise<number | undefined> => api.send('show info').then(parseWorkerPid, () => undefined);
  const log = (): string => readFileSync(logFile, 'utf8');
  const deadline = Date.now() + 10_000;
  while ((await workerPid()) === undefined) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`haproxy did not start:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const masterPid = child.pid!;
  return {
    prefix,
    configFile: path.join(confDir, 'berth.cfg'),
    socket,
    port,
    bind: `127.0.0.1:${port}`,
    checkCmd: [bin, '-c', '-f', global, '-f', confDir],
    reloadCmd: ['kill', '-USR2', String(masterPid)],
    masterPid,
    api,
    workerPid,
    log,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
