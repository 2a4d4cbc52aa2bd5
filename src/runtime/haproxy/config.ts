import { readState, stateLines } from '../embedded-state.js';
import type { ProxyConfig, ProxyRoute, UpstreamServer } from '../types.js';
import { backendName, fallbackName, formatAddress, frontendName, parseAddress, serverName } from './names.js';
import { pathPrefix } from './validate.js';

/**
 * Version of the generated text. Bump it whenever rendering changes, so a file written by another
 * berth version is rewritten (with a reload) at the next apply instead of being reported as a hand edit.
 */
export const HAPROXY_CONFIG_FORMAT = 1;
/** HAProxy's largest server weight; larger relative weights (canary steps) are scaled down to fit. */
export const MAX_WEIGHT = 256;

const HEADER = /^# Managed by berth \(haproxy config format (\d+)\) for environment "([^"]*)"/;

function header(env: string, what: string): string {
  return `# Managed by berth (haproxy config format ${HAPROXY_CONFIG_FORMAT}) for environment "${env}": ${what}`;
}

/** The file berth leaves for a removed environment: the path HAProxy loads stays valid, and nothing is routed. */
export function renderRetired(env: string): string {
  return `${header(env, 'retired, nothing routed; rewritten when an environment is applied here.')}\n`;
}

/** A server as HAProxy runs it: its name, address and effective weight (1 by default). */
export interface HaproxyServer {
  name: string;
  ip: string;
  port: number;
  weight: number;
}

/**
 * The route's servers as HAProxy runs them. Weights are relative, as nginx reads them; when the
 * largest exceeds HAProxy's 256 (a canary step of 10 replicas asks for 500) they are scaled to fit,
 * keeping their ratios as far as whole numbers allow.
 */
export function haproxyServers(servers: readonly UpstreamServer[]): HaproxyServer[] {
  const raw = servers.map((s) => s.weight ?? 1);
  const max = Math.max(1, ...raw);
  const scale = (w: number): number => (max <= MAX_WEIGHT ? w : Math.max(1, Math.round((w * MAX_WEIGHT) / max)));
  return servers
    .map((s, i) => {
      const addr = parseAddress(s.address);
      if (!addr) throw new Error(`server address ${JSON.stringify(s.address)} is not IP:port (validate routes before rendering)`);
      return { name: serverName(s), ...addr, weight: scale(raw[i]!) };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

type HostKind = 'exact' | 'suffix' | 'prefix' | 'any';

function hostKind(host: string): HostKind {
  if (host === '_') return 'any';
  if (host.startsWith('*.')) return 'suffix';
  if (host.endsWith('.*')) return 'prefix';
  return 'exact';
}

/**
 * nginx's server_name precedence: the exact name, then the longest `*.suffix`, then the longest
 * `prefix.*`; `_` catches any host last. HAProxy picks the site once, so a host that matches a site
 * without a matching path gets a 404, as from nginx, instead of falling to a wildcard site.
 */
function siteOrder(a: string, b: string): number {
  const rank: Record<HostKind, number> = { exact: 0, suffix: 1, prefix: 2, any: 3 };
  const ka = hostKind(a);
  const kb = hostKind(b);
  if (ka !== kb) return rank[ka] - rank[kb];
  if (a.length !== b.length) return b.length - a.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

function siteRule(host: string): string {
  const set = `http-request set-var(txn.berth_site) str(${host})`;
  const unset = '!{ var(txn.berth_site) -m found }';
  switch (hostKind(host)) {
    case 'exact':
      return `  ${set} if { var(txn.berth_host) -m str ${host} }`;
    case 'suffix':
      return `  ${set} if ${unset} { var(txn.berth_host) -m end ${host.slice(1)} }`;
    case 'prefix':
      return `  ${set} if ${unset} { var(txn.berth_host) -m beg ${host.slice(0, -1)} }`;
    case 'any':
      return `  ${set} if ${unset}`;
  }
}

/** `location /p/` + `location = /p` of nginx: the path itself or anything below it. */
function useBackend(env: string, r: ProxyRoute): string {
  const site = `{ var(txn.berth_site) -m str ${r.host} }`;
  const prefix = pathPrefix(r.path);
  const be = backendName(env, r.app);
  if (!prefix) return `  use_backend ${be} if ${site}`;
  return `  use_backend ${be} if ${site} { path -m str ${prefix} } || ${site} { path -m beg ${prefix}/ }`;
}

/** The prefix as a regex: '.' is the only character of a route path that a regex reads specially. */
function prefixRegex(prefix: string): string {
  return prefix.replace(/\./g, '[.]');
}

function defaultsName(env: string): string {
  return `berth-defaults_${frontendName(env).slice('berth_'.length)}`;
}

/**
 * The config sections of one environment, without the state comments: a named defaults section
 * (so berth's proxies never inherit the user's defaults, wherever the file is loaded), one frontend
 * on `bind` with nginx's host and path semantics, a 404 backend, and a backend per routed app
 * (leastconn, like nginx's least_conn; stripPrefix as a path rewrite).
 */
export function renderSections(config: ProxyConfig, bind: string): string {
  const env = config.env;
  const routes = [...config.routes].sort((a, b) => (a.app < b.app ? -1 : a.app > b.app ? 1 : 0));
  const defaults = defaultsName(env);
  const lines = [
    `defaults ${defaults}`,
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-request 60s',
    '  timeout http-keep-alive 75s',
    '  timeout queue 5s',
    // As nginx's proxy_next_upstream: a replica that refuses the connection is retried on another.
    '  retries 3',
    '  option redispatch 1',
    '  option forwardfor',
    '',
    `frontend ${frontendName(env)} from ${defaults}`,
    `  bind ${bind}`,
    '  http-request set-var(txn.berth_host) req.hdr(host),field(1,:),lower',
  ];
  const sites = [...new Set(routes.map((r) => r.host))].sort(siteOrder);
  for (const host of sites) lines.push(siteRule(host));
  lines.push('  http-request set-header X-Real-IP %[src]', '  http-request set-header X-Forwarded-Proto https if { ssl_fc }', '  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }');
  // Within a site, the longest prefix first: nginx's longest-prefix location match.
  const byPath = [...routes].sort((a, b) => pathPrefix(b.path).length - pathPrefix(a.path).length || (a.app < b.app ? -1 : 1));
  for (const r of byPath) lines.push(useBackend(env, r));
  lines.push(`  default_backend ${fallbackName(env)}`, '', `backend ${fallbackName(env)} from ${defaults}`, '  http-request return status 404', '');
  for (const r of routes) {
    lines.push(`backend ${backendName(env, r.app)} from ${defaults}`, '  balance leastconn');
    const prefix = pathPrefix(r.path);
    if (r.stripPrefix && prefix) lines.push(`  http-request replace-path ^${prefixRegex(prefix)}/?(.*)$ /\\1`);
    for (const s of haproxyServers(r.servers)) lines.push(`  server ${s.name} ${formatAddress(s)}${s.weight !== 1 ? ` weight ${s.weight}` : ''}`);
    lines.push('');
  }
  return lines.join('\n');
}


/**
 * HAProxy config text for one environment. The model is embedded as comment lines so berth reads
 * back exactly what it wrote, atomically with the config itself.
 */
export function renderHaproxyConfig(config: ProxyConfig, bind: string): string {
  const routes = [...config.routes].sort((a, b) => (a.app < b.app ? -1 : a.app > b.app ? 1 : 0));
  return [header(config.env, 'rewritten on every apply; do not edit.'), ...stateLines({ env: config.env, routes }), '', renderSections({ env: config.env, routes }, bind)].join('\n');
}

/**
 * Whether two models differ only in their servers (addresses, weights): such a change needs no
 * reload, the Runtime API makes it. Anything else (a route added, removed, moved, its prefix stripping) does.
 */
export function sameStructure(a: ProxyConfig, b: ProxyConfig, bind: string): boolean {
  const bare = (c: ProxyConfig): string => renderSections({ env: c.env, routes: c.routes.map((r) => ({ ...r, servers: [] })) }, bind);
  return a.env === b.env && bare(a) === bare(b);
}

/** What a berth file says about itself: its environment and format, whether it is a retired stub. */
export function fileHeader(text: string): { env: string; format: number; retired: boolean } | undefined {
  const m = HEADER.exec(text);
  if (!m) return undefined;
  return { env: m[2]!, format: Number(m[1]), retired: text === renderRetired(m[2]!) };
}

/** The model embedded by renderHaproxyConfig, or undefined when the text holds none. */
export function parseHaproxyState(text: string): ProxyConfig | undefined {
  const parsed = readState(text) as Partial<ProxyConfig> | undefined;
  if (typeof parsed?.env !== 'string' || !Array.isArray(parsed.routes)) return undefined;
  return { env: parsed.env, routes: parsed.routes };
}

/**
 * How a config file differs from what berth renders for its own model (a hand edit), or undefined
 * when it is exactly berth's or was written by a berth with another config format. The first
 * differing line is named, so the report says where.
 */
export function configDrift(text: string, model: ProxyConfig, bind: string): string | undefined {
  const head = fileHeader(text);
  if (head && head.format !== HAPROXY_CONFIG_FORMAT) return undefined;
  const expected = renderHaproxyConfig(model, bind);
  if (text === expected) return undefined;
  const got = text.split('\n');
  const want = expected.split('\n');
  let line = 0;
  while (line < got.length && line < want.length && got[line] === want[line]) line++;
  const shown = (lines: string[]): string => {
    const s = lines[line];
    if (s === undefined || (line === lines.length - 1 && s === '')) return 'end of file';
    const t = s.trim();
    return JSON.stringify(t.length > 60 ? `${t.slice(0, 57)}...` : t);
  };
  return `haproxy file edited: line ${line + 1} is ${shown(got)}, berth wrote ${shown(want)}`;
}
