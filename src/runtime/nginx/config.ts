import { createHash } from 'node:crypto';
import { locationDirectives } from '../../render/nginx-directives.js';
import { readState, stateLines } from '../embedded-state.js';
import type { ProxyConfig, ProxyRoute } from '../types.js';

/**
 * Version of the generated text. Bump it whenever rendering changes, so a file written by another
 * berth version is rewritten at the next apply instead of being reported as a hand edit.
 */
export const CONFIG_FORMAT = 3;

/** Host name of the server block that answers with the config generation (never a real host: .invalid). */
export function statusHost(env: string): string {
  return `berth-status-${env}.invalid`;
}

export const GENERATION_PATH = '/berth/generation';

/**
 * The upstream of an app: readable, and injective across environments sharing one nginx. The
 * readable part alone is not (`a-b`/`c` and `a`/`b-c` both read `a_b_c`), so a digest of the exact
 * pair follows it.
 */
export function upstreamName(env: string, app: string): string {
  const digest = createHash('sha256').update(`${env}\0${app}`).digest('hex').slice(0, 10);
  return `berth_${env}_${app}`.replace(/[^A-Za-z0-9_]/g, '_') + `_${digest}`;
}

function routeLocations(env: string, r: ProxyRoute): string[] {
  const upstream = `http://${upstreamName(env, r.app)}`;
  const body = (target: string): string[] => [`    proxy_pass ${target};`, ...locationDirectives(r.proxyOptions.nginx).map((line) => `    ${line}`)];
  if (r.path === '/') return ['  location / {', ...body(upstream), '  }'];
  const prefix = r.path.replace(/\/+$/, '');
  const target = r.stripPrefix ? `${upstream}/` : upstream;
  return [`  location ${prefix}/ {`, ...body(target), '  }', `  location = ${prefix} {`, ...body(target), '  }'];
}


/**
 * nginx config text for one environment: an upstream per routed app (least_conn, keepalive) and a
 * server per host. The model is embedded as comment lines so berth reads back exactly what it
 * wrote, at any size, atomically with the config itself.
 */
export function renderNginxConfig(config: ProxyConfig, listen: string): string {
  const routes = [...config.routes].sort((a, b) => (a.app < b.app ? -1 : 1));
  const lines = [`# Managed by berth (config format ${CONFIG_FORMAT}) for environment "${config.env}": rewritten on every apply; do not edit.`, ...stateLines({ env: config.env, routes }), ''];
  for (const r of routes) {
    lines.push(`upstream ${upstreamName(config.env, r.app)} {`, '  least_conn;');
    if (r.servers.length === 0) lines.push('  server 127.0.0.1:9 down; # no healthy replica yet');
    for (const s of [...r.servers].sort((a, b) => (a.address < b.address ? -1 : 1))) {
      lines.push(`  server ${s.address} max_fails=1 fail_timeout=2s${s.weight !== undefined ? ` weight=${s.weight}` : ''};`);
    }
    lines.push('  keepalive 16;', '}', '');
  }
  const hosts = new Map<string, ProxyRoute[]>();
  for (const r of routes) hosts.set(r.host, [...(hosts.get(r.host) ?? []), r]);
  for (const host of [...hosts.keys()].sort()) {
    lines.push('server {', `  listen ${listen};`, `  server_name ${host};`);
    const byPath = hosts.get(host)!.sort((a, b) => (a.path < b.path ? -1 : 1));
    for (const r of byPath) lines.push(...routeLocations(config.env, r));
    lines.push('}', '');
  }
  const body = lines.join('\n');
  // `nginx -s reload` returns before new workers serve: berth polls this to know the switch happened.
  const generation = configGeneration(body);
  return `${body}server {\n  listen ${listen};\n  server_name ${statusHost(config.env)};\n  location = ${GENERATION_PATH} { access_log off; return 200 "${generation}"; }\n}\n`;
}

/** Short digest of a config body: what the status server answers once nginx serves that config. */
export function configGeneration(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}

/** The generation embedded in a rendered config. */
export function generationOf(text: string): string | undefined {
  return /return 200 "([0-9a-f]{16})";/.exec(text)?.[1];
}

/** 127.0.0.1 and the port of a `listen` value ("80", "127.0.0.1:8080", "*:80 reuseport"); undefined for unix sockets. */
export function listenAddress(listen: string): { host: string; port: number } | undefined {
  const first = listen.trim().split(/\s+/)[0] ?? '';
  if (first.startsWith('unix:')) return undefined;
  const m = /^(?:\[([^\]]+)\]:|([^:]+):)?(\d+)$/.exec(first);
  if (!m) return undefined;
  const ip = m[1] ?? m[2];
  const host = !ip || ip === '*' || ip === '0.0.0.0' ? '127.0.0.1' : ip === '::' ? '::1' : ip;
  return { host, port: Number(m[3]) };
}

/**
 * The model embedded by renderNginxConfig, or undefined when the text is not berth's. Reads both
 * layouts: many short state lines, and the single long line of files written before them.
 */
export function parseNginxState(text: string): ProxyConfig | undefined {
  const parsed = readState(text) as ProxyConfig | undefined;
  if (!parsed || !Array.isArray(parsed.routes)) return undefined;
  // Files written before options were keyed by proxy kind carry `options`: they are nginx's.
  for (const r of parsed.routes as (ProxyRoute & { options?: Record<string, string | number> })[]) {
    if (!r.proxyOptions) r.proxyOptions = { nginx: r.options ?? {} };
    delete r.options;
  }
  return parsed;
}

/**
 * How a config file differs from what berth renders for its own model (a hand edit), or undefined
 * when it is exactly berth's or was written by a berth with another config format. The first differing line is named, so the report says where.
 */
export function configDrift(text: string, model: ProxyConfig, listen: string): string | undefined {
  // Another berth version renders differently: not a hand edit (the next apply rewrites it).
  const format = /^# Managed by berth (?:\(config format (\d+)\) )?for environment /.exec(text);
  if (format && Number(format[1] ?? 1) !== CONFIG_FORMAT) return undefined;
  const expected = renderNginxConfig(model, listen);
  if (text === expected) return undefined;
  const got = text.split('\n');
  const want = expected.split('\n');
  let line = 0;
  while (line < got.length && line < want.length && got[line] === want[line]) line++;
  // The text after the last newline is '' in both: past it is the end of the file.
  const shown = (lines: string[]): string => {
    const s = line >= lines.length - 1 && !lines[line] ? undefined : lines[line]!.trim();
    return s === undefined ? 'end of file' : JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
  };
  return `nginx file edited: line ${line + 1} is ${shown(got)}, berth wrote ${shown(want)}`;
}
