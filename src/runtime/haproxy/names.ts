import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { UpstreamServer } from '../types.js';

/** Characters HAProxy allows in proxy and server names. */
export const NAME_PATTERN = /^[A-Za-z0-9_.:-]+$/;

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 10);
}

function readable(text: string): string {
  return text.replace(/[^A-Za-z0-9_]/g, '_');
}

/**
 * The backend of an app: readable, and injective across environments sharing one HAProxy (the
 * readable part alone is not: `a-b`/`c` and `a`/`b-c` both read `a_b_c`, so a digest follows it).
 */
export function backendName(env: string, app: string): string {
  return `berth_${readable(env)}_${readable(app)}_${digest(env, app)}`;
}

/** The frontend of an environment. */
export function frontendName(env: string): string {
  return `berth_${readable(env)}_${digest(env)}`;
}

/** The backend answering 404 when no route matches (the '-' never appears in a backendName). */
export function fallbackName(env: string): string {
  return `berth-no-route_${readable(env)}_${digest(env)}`;
}

/**
 * A server's name: the container's short id (what `docker ps` shows) and a digest of container and
 * address, so a container started again on another port is another server (removed and added, not edited).
 */
export function serverName(s: Pick<UpstreamServer, 'containerId' | 'address'>): string {
  const short = s.containerId.replace(/[^A-Za-z0-9]/g, '').slice(0, 12) || 'srv';
  return `${short}-${digest(s.containerId, s.address).slice(0, 8)}`;
}

/** IP and port of `host:port`, `[v6]:port` or `v6:port` (HAProxy's own reading: the port follows the last colon); undefined otherwise. */
export function parseAddress(address: string): { ip: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|(.+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const ip = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (!isIP(ip) || port < 1 || port > 65535) return undefined;
  return { ip, port };
}

/** How HAProxy is given an address, in the config and on the Runtime API: IPv6 in brackets. */
export function formatAddress(a: { ip: string; port: number }): string {
  return isIP(a.ip) === 6 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}
