/**
 * The per-location nginx directives a route may set (`route.nginx`), how many arguments each
 * takes, and how a value becomes arguments. Pure: render checks against it, the nginx driver
 * writes from it.
 *
 * A repo author must not reach beyond the app's own location: no files (`access_log`, `include`,
 * `root`), no control flow (`return`, `rewrite`, `if`, `set`), no other upstream (`proxy_pass`).
 * An operator can widen the list per environment with `policy.nginxDirectives` in berth.yaml.
 */
import { didYouMean } from '../util/suggest.js';

/** A directive's value: one string (split at whitespace), a number, a list of arguments, or several lists (the directive repeated). */
export type NginxDirectiveValue = string | number | (string | number)[] | (string | number)[][];

interface DirectiveRule {
  /** Fewest and most arguments one occurrence takes. */
  args: [number, number];
  /** May appear several times in one location (given as a list of lists). */
  repeat?: boolean;
  /** What it is for, shown in docs and errors. */
  about: string;
  /** The only words its arguments may be (on | off …). */
  values?: readonly string[];
  /** Its first argument is an HTTP header name. */
  header?: boolean;
  /** Index of the one argument that may be empty (a header value: "" means no header). */
  emptyAt?: number;
}

const ONE: [number, number] = [1, 1];
const ON_OFF = ['on', 'off'] as const;

/** The built-in allow-list. Every name here is safe inside one location block. */
const NGINX_DIRECTIVES: Readonly<Record<string, DirectiveRule>> = {
  client_max_body_size: { args: ONE, about: 'largest request body, e.g. 10m' },
  client_body_buffer_size: { args: ONE, about: 'request body buffer' },
  client_body_timeout: { args: ONE, about: 'time between two reads of the request body' },
  send_timeout: { args: ONE, about: 'time between two writes to the client' },
  keepalive_timeout: { args: [1, 2], about: 'client keep-alive timeout' },
  limit_rate: { args: ONE, about: 'response rate per connection' },
  limit_rate_after: { args: ONE, about: 'bytes sent before limit_rate applies' },
  chunked_transfer_encoding: { args: ONE, values: ON_OFF, about: 'on | off' },
  if_modified_since: { args: ONE, values: ['off', 'exact', 'before'], about: 'off | exact | before' },
  etag: { args: ONE, values: ON_OFF, about: 'on | off' },
  expires: { args: [1, 2], about: 'Expires and Cache-Control headers' },
  add_header: { args: [2, 3], repeat: true, header: true, emptyAt: 1, about: 'response header: name, value [, always]' },
  proxy_set_header: { args: [2, 2], repeat: true, header: true, emptyAt: 1, about: 'request header to the app: name, value (replaces berth\'s own for that name)' },
  proxy_hide_header: { args: ONE, repeat: true, header: true, about: 'app response header not passed to the client' },
  proxy_pass_header: { args: ONE, repeat: true, header: true, about: 'app response header passed although hidden by default' },
  proxy_ignore_headers: { args: [1, 8], about: 'app response headers nginx does not act on' },
  proxy_connect_timeout: { args: ONE, about: 'connect timeout to a replica (berth: 2s)' },
  proxy_read_timeout: { args: ONE, about: 'time between two reads from the app' },
  proxy_send_timeout: { args: ONE, about: 'time between two writes to the app' },
  proxy_buffering: { args: ONE, values: ON_OFF, about: 'on | off' },
  proxy_request_buffering: { args: ONE, values: ON_OFF, about: 'on | off' },
  proxy_buffer_size: { args: ONE, about: 'buffer for the response head' },
  proxy_buffers: { args: [2, 2], about: 'number and size of response buffers' },
  proxy_busy_buffers_size: { args: ONE, about: 'buffers busy sending to the client' },
  proxy_max_temp_file_size: { args: ONE, about: 'largest temporary file for a response (0: none)' },
  proxy_next_upstream: { args: [1, 9], about: 'when to try another replica (berth: error timeout http_502 http_503)' },
  proxy_next_upstream_tries: { args: ONE, about: 'replicas tried per request (berth: 3)' },
  proxy_next_upstream_timeout: { args: ONE, about: 'time limit for trying replicas' },
  proxy_ignore_client_abort: { args: ONE, values: ON_OFF, about: 'on | off' },
  proxy_intercept_errors: { args: ONE, values: ON_OFF, about: 'on | off' },
  proxy_redirect: { args: [1, 2], repeat: true, about: 'rewrite Location headers' },
  proxy_cookie_path: { args: [1, 2], repeat: true, about: 'rewrite cookie paths' },
  proxy_cookie_domain: { args: [1, 2], repeat: true, about: 'rewrite cookie domains' },
  gzip: { args: ONE, values: ON_OFF, about: 'on | off' },
  gzip_types: { args: [1, 64], about: 'MIME types to compress' },
  gzip_min_length: { args: ONE, about: 'smallest response compressed' },
  gzip_comp_level: { args: ONE, about: '1–9' },
  gzip_proxied: { args: [1, 9], about: 'which proxied responses to compress' },
  gzip_vary: { args: ONE, values: ON_OFF, about: 'on | off' },
};

/** Directives berth writes in every location; a route that sets one replaces berth's line. */
const BERTH_DEFAULT_DIRECTIVES: readonly (readonly [string, ...string[]])[] = [
  ['proxy_http_version', '1.1'],
  ['proxy_set_header', 'Connection', ''],
  ['proxy_set_header', 'Host', '$host'],
  ['proxy_set_header', 'X-Real-IP', '$remote_addr'],
  ['proxy_set_header', 'X-Forwarded-For', '$proxy_add_x_forwarded_for'],
  ['proxy_set_header', 'X-Forwarded-Proto', '$scheme'],
  ['proxy_next_upstream', 'error', 'timeout', 'http_502', 'http_503'],
  ['proxy_next_upstream_tries', '3'],
  ['proxy_connect_timeout', '2s'],
];

/** A value as occurrences of argument lists: `"X-A v"` → [["X-A", "v"]]; `[a, "b c"]` → [["a", "b c"]]; `[[a, b], [c, d]]` → two. */
export function directiveOccurrences(value: NginxDirectiveValue): string[][] {
  if (typeof value === 'number') return [[String(value)]];
  if (typeof value === 'string') return [value.split(/[ \t]+/).filter((a) => a !== '')];
  if (repeated(value)) return value.map((occ) => occ.map(String));
  return [(value as (string | number)[]).map(String)];
}

/** The list-of-lists form: the directive given several times. */
function repeated(value: NginxDirectiveValue): value is (string | number)[][] {
  return Array.isArray(value) && value.length > 0 && value.every((v) => Array.isArray(v));
}

/** Longest argument written: nginx refuses a token over its 4 KiB read buffer ("too long parameter"). */
const MAX_ARGUMENT_CHARS = 1024;

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Why an argument cannot be written safely, or undefined when it can. */
function unsafeArgument(arg: string): string | undefined {
  if (arg.length > MAX_ARGUMENT_CHARS) return `${arg.length} characters (at most ${MAX_ARGUMENT_CHARS})`;
  if (/[\u0000-\u001f\u007f]/.test(arg)) return 'a control character (newline, tab, NUL…)';
  if (arg.includes('$')) return 'a "$": nginx would read it as a variable, and nginx has no way to write a literal "$"';
  return undefined;
}

/** One argument as nginx parses a double-quoted token: `\` and `"` escaped. Callers check unsafeArgument first. */
export function quoteNginx(arg: string): string {
  return `"${arg.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Directive lines for a location: berth's defaults (unless the route replaces them), then the route's own, sorted by name. */
export function locationDirectives(options: Readonly<Record<string, NginxDirectiveValue>> | undefined): string[] {
  const own = Object.entries(options ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const ownHeaders = new Set(
    own.filter(([name]) => name === 'proxy_set_header').flatMap(([, v]) => directiveOccurrences(v).map((occ) => (occ[0] ?? '').toLowerCase())),
  );
  const replaced = (name: string, first: string | undefined): boolean =>
    name === 'proxy_set_header' ? ownHeaders.has((first ?? '').toLowerCase()) : own.some(([n]) => n === name);
  const lines: string[] = [];
  for (const [name, ...args] of BERTH_DEFAULT_DIRECTIVES) {
    if (!replaced(name, args[0])) lines.push(`${name} ${args.map((a) => (a === '' ? '""' : a)).join(' ')};`);
  }
  for (const [name, value] of own) {
    for (const occ of directiveOccurrences(value)) lines.push(`${name} ${occ.map(quoteNginx).join(' ')};`);
  }
  return lines;
}

export interface DirectiveProblem {
  /** JSON pointer below route.nginx: `/<name>` or `/<name>/<i>`. */
  pointer: string;
  /** Whether the problem is the key (the name) rather than its value. */
  key: boolean;
  message: string;
}

/**
 * Everything wrong with a route's directives: names outside the allow-list (plus `extra`), wrong
 * argument counts, repeats of a directive that cannot repeat, and arguments that cannot be written
 * safely.
 */
export function checkDirectives(options: Readonly<Record<string, NginxDirectiveValue>>, extra: readonly string[] = []): DirectiveProblem[] {
  const problems: DirectiveProblem[] = [];
  const setHeaders = new Set<string>();
  for (const [name, value] of Object.entries(options)) {
    const at = `/${name}`;
    const rule = Object.hasOwn(NGINX_DIRECTIVES, name) ? NGINX_DIRECTIVES[name] : undefined;
    if (!rule && !extra.includes(name)) {
      const known = [...Object.keys(NGINX_DIRECTIVES), ...extra];
      const guess = didYouMean(name, known);
      const allowed = guess ? `did you mean "${guess}"?` : `allowed: ${known.join(', ')}`;
      problems.push({
        pointer: at,
        key: true,
        message: `route.nginx.${name}: "${name}" is not an allowed per-route nginx directive; ${allowed} (an operator can allow more in berth.yaml: policy.nginxDirectives)`,
      });
      continue;
    }
    const occurrences = directiveOccurrences(value);
    const nested = repeated(value);
    if (nested && occurrences.length > 1 && rule && !rule.repeat) {
      problems.push({ pointer: at, key: false, message: `route.nginx.${name}: "${name}" may appear once per location; give one list of arguments` });
      continue;
    }
    const numbers = typeof value === 'number' ? [value] : Array.isArray(value) ? value.flat().filter((v): v is number => typeof v === 'number') : [];
    const odd = numbers.find((n) => !Number.isSafeInteger(n) || n < 0);
    if (odd !== undefined) {
      problems.push({ pointer: at, key: false, message: `route.nginx.${name}: ${odd} is not a whole number nginx reads (write sizes and times as strings, e.g. "10m", "1.5s")` });
      continue;
    }
    const [min, max] = rule?.args ?? [1, 64];
    for (const [i, occ] of occurrences.entries()) {
      const where = nested ? `${at}/${i}` : at;
      if (occ.length < min || occ.length > max) {
        const want = min === max ? `${min}` : `${min} to ${max}`;
        const spaces = typeof value === 'string' && /\s/.test(value.trim()) ? `; a string is split at spaces, so to keep spaces inside one argument write a list, e.g. ${name}: [${JSON.stringify(occ[0] ?? '')}, "a value with spaces"]` : '';
        problems.push({ pointer: where, key: false, message: `route.nginx.${name}: takes ${want} argument${max === 1 ? '' : 's'}, got ${occ.length} (${occ.map((a) => JSON.stringify(a)).join(' ') || 'none'})${spaces}` });
        continue;
      }
      const wrong = argumentProblem(rule, occ);
      if (wrong) problems.push({ pointer: where, key: false, message: `route.nginx.${name}: ${wrong}` });
      else if (name === 'proxy_set_header') {
        const header = occ[0]!.toLowerCase();
        if (setHeaders.has(header)) problems.push({ pointer: where, key: false, message: `route.nginx.proxy_set_header: header ${occ[0]} is set twice (nginx would send both)` });
        setHeaders.add(header);
      }
    }
  }
  return problems;
}

/** What is wrong with one occurrence's arguments, or undefined. */
function argumentProblem(rule: DirectiveRule | undefined, occ: readonly string[]): string | undefined {
  for (const [i, arg] of occ.entries()) {
    const why = unsafeArgument(arg);
    if (why) return `argument ${JSON.stringify(arg.length > 60 ? `${arg.slice(0, 57)}...` : arg)} contains ${why}`;
    if (arg === '' && rule?.emptyAt !== i) return `argument ${i + 1} is empty`;
    if (rule?.values && !rule.values.includes(arg)) return `${JSON.stringify(arg)} is not one of ${rule.values.join(', ')}`;
  }
  if (rule?.header && !HEADER_NAME.test(occ[0] ?? '')) return `${JSON.stringify(occ[0])} is not an HTTP header name (letters, digits and !#%&'*+.^_\`|~-)`;
  return undefined;
}
