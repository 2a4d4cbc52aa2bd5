import { DockerDriver } from './docker/driver.js';
import { HaproxyDriver, type HaproxyOptions } from './haproxy/driver.js';
import type { CommandRunner } from './command.js';
import { NginxDriver, type NginxOptions } from './nginx/driver.js';
import type { ProxyDriver, RuntimeDriver } from './types.js';

/** Options of each runtime kind. A new runtime (Swarm, several hosts) adds its kind here and one line in RUNTIMES. */
export interface RuntimeOptionsByKind {
  docker: { host?: string; hostIp?: string };
}

/** Options of each proxy kind. A new proxy (HAProxy) adds its kind here and one line in PROXIES. */
export interface ProxyOptionsByKind {
  /** `container`: nginx runs in that container (on the runtime's Docker), and its commands run there. */
  nginx: NginxOptions & { container?: string };
  /** HAProxy on this host: its config file, admin socket (Runtime API), check and reload commands. */
  haproxy: HaproxyOptions;
}

export type RuntimeSelection = { [K in keyof RuntimeOptionsByKind]: { kind: K } & RuntimeOptionsByKind[K] }[keyof RuntimeOptionsByKind];
export type ProxySelection = { [K in keyof ProxyOptionsByKind]: { kind: K } & ProxyOptionsByKind[K] }[keyof ProxyOptionsByKind];

const RUNTIMES: { [K in keyof RuntimeOptionsByKind]: (o: RuntimeOptionsByKind[K]) => RuntimeDriver } = {
  docker: (o) => new DockerDriver(o),
};

const PROXIES: { [K in keyof ProxyOptionsByKind]: (o: ProxyOptionsByKind[K], runtime: RuntimeDriver) => ProxyDriver } = {
  nginx: ({ container, ...o }, runtime) => new NginxDriver(container ? { ...o, runCommand: execIn(runtime, container) } : o),
  haproxy: (o) => new HaproxyDriver(o),
};

/** Runs a command inside a container through the runtime (Docker's exec API): no docker CLI needed. */
export function execIn(runtime: RuntimeDriver, container: string, timeoutMs = 30_000): CommandRunner {
  return async (argv) => {
    try {
      const r = await runtime.exec(container, argv, timeoutMs);
      return { ok: r.exitCode === 0, output: r.output || (r.exitCode === 0 ? '' : `exit code ${r.exitCode}`) };
    } catch (err) {
      return { ok: false, output: `could not run "${argv.join(' ')}" in container ${container}: ${(err as Error).message}` };
    }
  };
}

export interface Drivers {
  runtime: RuntimeDriver;
  proxy: ProxyDriver;
}

/** The one place that turns options into drivers: everything else takes them as parameters. */
export function createDrivers(selection: { runtime: RuntimeSelection; proxy: ProxySelection }): Drivers {
  const { kind: runtimeKind, ...runtimeOptions } = selection.runtime;
  const runtime = RUNTIMES[runtimeKind](runtimeOptions);
  return { runtime, proxy: buildProxy(selection.proxy, runtime) };
}

/** PROXIES[kind] with its own options: generic, so TypeScript pairs each kind with its options. */
function buildProxy<K extends keyof ProxyOptionsByKind>(selection: { kind: K } & ProxyOptionsByKind[K], runtime: RuntimeDriver): ProxyDriver {
  // The kind rides along in the options object: each factory reads its own fields only.
  return PROXIES[selection.kind](selection, runtime);
}
