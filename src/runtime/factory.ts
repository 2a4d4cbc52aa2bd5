import { DockerDriver } from './docker/driver.js';
import { NginxDriver, type NginxOptions } from './nginx/driver.js';
import type { ProxyDriver, RuntimeDriver } from './types.js';

/** Options of each runtime kind. A new runtime (Swarm, several hosts) adds its kind here and one line in RUNTIMES. */
export interface RuntimeOptionsByKind {
  docker: { host?: string; hostIp?: string };
}

/** Options of each proxy kind. A new proxy (HAProxy) adds its kind here and one line in PROXIES. */
export interface ProxyOptionsByKind {
  nginx: NginxOptions;
}

export type RuntimeSelection = { [K in keyof RuntimeOptionsByKind]: { kind: K } & RuntimeOptionsByKind[K] }[keyof RuntimeOptionsByKind];
export type ProxySelection = { [K in keyof ProxyOptionsByKind]: { kind: K } & ProxyOptionsByKind[K] }[keyof ProxyOptionsByKind];

const RUNTIMES: { [K in keyof RuntimeOptionsByKind]: (o: RuntimeOptionsByKind[K]) => RuntimeDriver } = {
  docker: (o) => new DockerDriver(o),
};

const PROXIES: { [K in keyof ProxyOptionsByKind]: (o: ProxyOptionsByKind[K]) => ProxyDriver } = {
  nginx: (o) => new NginxDriver(o),
};

export interface Drivers {
  runtime: RuntimeDriver;
  proxy: ProxyDriver;
}

/** The one place that turns options into drivers: everything else takes them as parameters. */
export function createDrivers(selection: { runtime: RuntimeSelection; proxy: ProxySelection }): Drivers {
  const { kind: runtimeKind, ...runtimeOptions } = selection.runtime;
  const { kind: proxyKind, ...proxyOptions } = selection.proxy;
  return { runtime: RUNTIMES[runtimeKind](runtimeOptions), proxy: PROXIES[proxyKind](proxyOptions) };
}
