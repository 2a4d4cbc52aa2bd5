import type { HaproxyServer } from './config.js';
import { formatAddress } from './names.js';
import { ADMIN_FORCED_DRAIN, ADMIN_FORCED_MAINT, type LiveServer, type ServerCommand } from './runtime-api.js';

/** What the Runtime API must do to one backend: changes made at once, and servers to drain and then remove. */
export interface BackendChanges {
  backend: string;
  /** Added servers (then set ready), weights, servers put back in service: before any drain, so capacity only grows first. */
  now: ServerCommand[];
  /** Servers that leave: drained until their sessions end, then put in maintenance and deleted. */
  leave: string[];
}

/** The difference between the servers HAProxy runs for `backend` and the ones it should. */
export function backendChanges(backend: string, want: readonly HaproxyServer[], live: readonly LiveServer[]): BackendChanges {
  const now: ServerCommand[] = [];
  const leave: string[] = [];
  const running = new Map(live.map((s) => [s.name, s]));
  const wanted = new Set(want.map((s) => s.name));
  for (const s of want) {
    const cur = running.get(s.name);
    if (!cur) {
      now.push({ kind: 'add', backend, server: s.name, address: formatAddress(s), weight: s.weight }, { kind: 'state', backend, server: s.name, state: 'ready' });
      continue;
    }
    // The name holds a digest of the address: a server of that name elsewhere was moved by hand.
    if (cur.ip !== s.ip || cur.port !== s.port) now.push({ kind: 'addr', backend, server: s.name, ip: s.ip, port: s.port });
    if (cur.weight !== s.weight) now.push({ kind: 'weight', backend, server: s.name, weight: s.weight });
    if (cur.adminState & (ADMIN_FORCED_MAINT | ADMIN_FORCED_DRAIN)) now.push({ kind: 'state', backend, server: s.name, state: 'ready' });
  }
  for (const s of live) if (!wanted.has(s.name)) leave.push(s.name);
  return { backend, now, leave };
}

/** Whether a server set runs as wanted, and if not, what differs (for drift reports). */
export function serverDifferences(want: readonly HaproxyServer[], live: readonly LiveServer[]): string[] {
  const out: string[] = [];
  const running = new Map(live.map((s) => [s.name, s]));
  const wanted = new Set(want.map((s) => s.name));
  for (const s of want) {
    const cur = running.get(s.name);
    if (!cur) out.push(`server ${s.name} (${formatAddress(s)}) missing`);
    else if (cur.ip !== s.ip || cur.port !== s.port) out.push(`server ${s.name} at ${formatAddress(cur)}, berth wrote ${formatAddress(s)}`);
    else {
      if (cur.weight !== s.weight) out.push(`server ${s.name} has weight ${cur.weight}, berth wrote ${s.weight}`);
      if (cur.adminState & ADMIN_FORCED_MAINT) out.push(`server ${s.name} is in maintenance`);
      else if (cur.adminState & ADMIN_FORCED_DRAIN) out.push(`server ${s.name} is draining`);
    }
  }
  for (const s of live) if (!wanted.has(s.name)) out.push(`server ${s.name} (${formatAddress(s)}) is not in berth's file`);
  return out;
}
