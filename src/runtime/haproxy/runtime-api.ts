import net from 'node:net';
import { NAME_PATTERN, parseAddress } from './names.js';

/**
 * HAProxy's Runtime API (the admin `stats socket … level admin`), one command per connection in
 * non-interactive mode: the reply is everything HAProxy writes before it closes the connection.
 */
export interface RuntimeApi {
  /** Sends one command line (no newline) and resolves HAProxy's reply, trimmed. Rejects when the socket cannot be used. */
  send(command: string): Promise<string>;
}

/** A RuntimeApi over the admin unix socket at `socketPath`. */
export function unixSocketApi(socketPath: string, timeoutMs = 5000): RuntimeApi {
  return {
    send: (command) =>
      new Promise((resolve, reject) => {
        const conn = net.createConnection(socketPath);
        let reply = '';
        conn.setTimeout(timeoutMs, () => conn.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        conn.on('connect', () => conn.write(`${command}\n`));
        conn.on('data', (d: Buffer) => (reply += d.toString()));
        conn.on('error', (err) => reject(new Error(`HAProxy admin socket ${socketPath}: ${err.message}`)));
        conn.on('close', (hadError) => {
          if (!hadError) resolve(reply.trim());
        });
      }),
  };
}

/** A change to one server, as the Runtime API makes it. */
export type ServerCommand =
  | { kind: 'add'; backend: string; server: string; address: string; weight: number }
  | { kind: 'state'; backend: string; server: string; state: 'ready' | 'drain' | 'maint' }
  | { kind: 'weight'; backend: string; server: string; weight: number }
  | { kind: 'addr'; backend: string; server: string; ip: string; port: number }
  | { kind: 'del'; backend: string; server: string }
  | { kind: 'shutdown-sessions'; backend: string; server: string };

function target(c: { backend: string; server: string }): string {
  for (const name of [c.backend, c.server]) {
    if (!NAME_PATTERN.test(name)) throw new Error(`not a HAProxy name: ${JSON.stringify(name)}`);
  }
  return `${c.backend}/${c.server}`;
}

function weightArg(weight: number): string {
  if (!Number.isInteger(weight) || weight < 0 || weight > 256) throw new Error(`not a HAProxy weight (0..256): ${weight}`);
  return String(weight);
}

/**
 * The command line of a server change. Every argument is checked against what HAProxy reads as one
 * word (names, IP:port, a whole number), so nothing a route holds can add a command (`;`) or an option.
 */
export function commandLine(c: ServerCommand): string {
  switch (c.kind) {
    case 'add': {
      const addr = parseAddress(c.address);
      if (!addr) throw new Error(`not an IP:port: ${JSON.stringify(c.address)}`);
      return `add server ${target(c)} ${c.address} weight ${weightArg(c.weight)}`;
    }
    case 'state':
      return `set server ${target(c)} state ${c.state}`;
    case 'weight':
      return `set server ${target(c)} weight ${weightArg(c.weight)}`;
    case 'addr': {
      if (!parseAddress(`${c.ip.includes(':') ? `[${c.ip}]` : c.ip}:${c.port}`)) throw new Error(`not an IP and port: ${JSON.stringify(c.ip)} ${c.port}`);
      return `set server ${target(c)} addr ${c.ip} port ${c.port}`;
    }
    case 'del':
      return `del server ${target(c)}`;
    case 'shutdown-sessions':
      return `shutdown sessions server ${target(c)}`;
  }
}

/** Whether HAProxy's reply to `c` says it was done (HAProxy answers errors as plain text, never with a status). */
export function succeeded(c: ServerCommand, reply: string): boolean {
  if (c.kind === 'add') return reply.startsWith('New server registered.');
  if (c.kind === 'del') return reply.startsWith('Server deleted.');
  return reply === '';
}

/** A server as `show servers state` reports it. */
export interface LiveServer {
  backend: string;
  name: string;
  ip: string;
  port: number;
  /** srv_admin_state bits: 0x01 forced maintenance, 0x08 forced drain (see SRV_ADMF_* in HAProxy). */
  adminState: number;
  /** The weight set in the config or by `set server … weight` (srv_uweight). */
  weight: number;
}

export const ADMIN_FORCED_MAINT = 0x01;
export const ADMIN_FORCED_DRAIN = 0x08;

/** Columns of a header line (`# a b c` or `# a,b,c`) by name. */
function columns(headerLine: string, separator: RegExp): Map<string, number> {
  return new Map(headerLine.replace(/^#\s*/, '').split(separator).map((name, i) => [name, i] as const));
}

/** `show servers state` (every backend, format 1): servers by backend. Backends without servers are absent: see parseBackends. */
export function parseServersState(reply: string): Map<string, LiveServer[]> {
  const lines = reply.split('\n');
  const head = lines.find((l) => l.startsWith('# '));
  const out = new Map<string, LiveServer[]>();
  if (!head) return out;
  const col = columns(head, / /);
  const at = (cells: string[], name: string): string => cells[col.get(name) ?? -1] ?? '';
  for (const line of lines) {
    if (!line || line.startsWith('#') || !line.includes(' ')) continue;
    const cells = line.split(' ');
    const backend = at(cells, 'be_name');
    const server: LiveServer = {
      backend,
      name: at(cells, 'srv_name'),
      ip: at(cells, 'srv_addr'),
      port: Number(at(cells, 'srv_port')),
      adminState: Number(at(cells, 'srv_admin_state')),
      weight: Number(at(cells, 'srv_uweight')),
    };
    out.set(backend, [...(out.get(backend) ?? []), server]);
  }
  return out;
}

/** `show backend`: the backend names HAProxy runs. */
export function parseBackends(reply: string): Set<string> {
  return new Set(reply.split('\n').filter((l) => l && !l.startsWith('#')));
}

/** `show stat <backend> 4 -1` (CSV): sessions and queued requests per server. */
export function parseServerLoad(reply: string): Map<string, { sessions: number; queued: number }> {
  const lines = reply.split('\n');
  const out = new Map<string, { sessions: number; queued: number }>();
  const head = lines.find((l) => l.startsWith('# '));
  if (!head) return out;
  const col = columns(head, /,/);
  for (const line of lines) {
    if (!line || line.startsWith('#')) continue;
    const cells = line.split(',');
    const name = cells[col.get('svname') ?? -1];
    if (!name || name === 'BACKEND' || name === 'FRONTEND') continue;
    out.set(name, { sessions: Number(cells[col.get('scur') ?? -1] || 0), queued: Number(cells[col.get('qcur') ?? -1] || 0) });
  }
  return out;
}

/** The worker's pid from `show info`: it changes when a reload's new worker answers the socket. */
export function parseWorkerPid(reply: string): number | undefined {
  const m = /^Pid: (\d+)$/m.exec(reply);
  return m ? Number(m[1]) : undefined;
}
