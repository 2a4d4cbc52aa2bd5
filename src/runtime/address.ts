import type { LiveContainer } from './types.js';

/** Host address of a container port as published (0.0.0.0 → 127.0.0.1: berth only dials loopback-side). */
export function publishedAddress(container: Pick<LiveContainer, 'ports'>, containerPort: number): { host: string; port: number } | undefined {
  const p = container.ports.find((x) => x.containerPort === containerPort && x.protocol === 'tcp');
  if (!p) return undefined;
  const host = !p.hostIp || p.hostIp === '0.0.0.0' || p.hostIp === '::' ? '127.0.0.1' : p.hostIp;
  return { host, port: p.hostPort };
}

/** `host:port` a proxy uses to reach a replica's `containerPort`, when it is published. */
export function serverAddressOf(container: Pick<LiveContainer, 'ports'>, containerPort: number | undefined): string | undefined {
  const addr = containerPort === undefined ? undefined : publishedAddress(container, containerPort);
  return addr ? `${addr.host}:${addr.port}` : undefined;
}
