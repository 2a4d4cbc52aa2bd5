import type { ProxyConfig, ProxyRoute } from '../types.js';
import { parseAddress, serverName } from './names.js';

/** route.host as the App schema allows it: a name, `*.suffix`, `prefix.*` or `_` (any host). */
const HOST = /^(?:_|(?!\*\..*\.\*$)(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?:\.\*)?)$/;
/** route.path as the App schema allows it: segments of letters, digits and . _ ~ - (nothing HAProxy's parser or regex reads specially but '.'). */
const PATH = /^(?=\/)(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._~-]+)*\/?$/;

/** One thing HAProxy cannot be given: which app, which field, what is expected. */
export interface RouteProblem {
  app: string;
  field: string;
  message: string;
}

/** The route's path prefix without trailing slashes ('' for '/'). */
export function pathPrefix(path: string): string {
  return path.replace(/\/+$/, '');
}

/** Everything in one route that HAProxy cannot express or that would be unsafe to write. */
export function routeProblems(r: ProxyRoute): RouteProblem[] {
  const out: RouteProblem[] = [];
  const add = (field: string, message: string): void => void out.push({ app: r.app, field, message });
  if (typeof r.host !== 'string' || r.host.length > 253 || !HOST.test(r.host)) add('route.host', `${JSON.stringify(r.host)} is not a host HAProxy can match: expected a lower-case name (web.example.com), *.suffix, prefix.* or _`);
  if (typeof r.path !== 'string' || r.path.length > 1024 || !PATH.test(r.path)) add('route.path', `${JSON.stringify(r.path)} is not a path prefix: expected segments of letters, digits and . _ ~ - (e.g. /api/v2)`);
  if (typeof r.stripPrefix !== 'boolean') add('route.stripPrefix', `expected true or false, got ${JSON.stringify(r.stripPrefix)}`);
  for (const key of Object.keys(r.proxyOptions ?? {})) {
    if (key !== 'nginx') add(`route.proxyOptions.${key}`, `HAProxy reads no per-route options (proxyOptions.${key} is not a proxy kind berth knows); remove it`);
  }
  const seen = new Set<string>();
  r.servers.forEach((s, i) => {
    if (!parseAddress(s.address)) add(`servers[${i}].address`, `${JSON.stringify(s.address)} is not an address HAProxy can dial: expected IP:port (127.0.0.1:32768 or [::1]:32768)`);
    if (s.weight !== undefined && !(Number.isInteger(s.weight) && s.weight >= 1)) add(`servers[${i}].weight`, `expected a whole number ≥ 1, got ${JSON.stringify(s.weight)}`);
    const name = serverName(s);
    if (seen.has(name)) add(`servers[${i}]`, `container ${s.containerId} at ${s.address} is listed twice`);
    seen.add(name);
  });
  return out;
}

/** Problems across routes: two apps on one host + path (HAProxy would silently serve only the first). */
export function configProblems(config: ProxyConfig): RouteProblem[] {
  const out = config.routes.flatMap(routeProblems);
  const apps = new Map<string, string>();
  const owner = new Map<string, string>();
  for (const r of config.routes) {
    if (apps.has(r.app)) out.push({ app: r.app, field: 'app', message: 'the app has two routes; berth gives each app one' });
    apps.set(r.app, r.host);
    const key = `${r.host} ${pathPrefix(r.path) || '/'}`;
    const other = owner.get(key);
    if (other !== undefined) out.push({ app: r.app, field: 'route', message: `host ${r.host} path ${r.path} is already routed to app "${other}"` });
    else owner.set(key, r.app);
  }
  return out;
}

/** The route's nginx directives, which HAProxy does not read: worth a warning, not a refusal (they are nginx's). */
export function ignoredNginxOptions(r: ProxyRoute): string[] {
  return Object.keys(r.proxyOptions?.nginx ?? {}).sort();
}
