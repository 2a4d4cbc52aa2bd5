import path from 'node:path';
import type { Locator } from './checks.js';
import { checkDirectives } from './nginx-directives.js';
import type { Problem } from './problems.js';
import { DEFAULT_POLICY, type DesiredApp, type RepoPolicy } from './types.js';

/** berth.yaml's `policy` as written (top level or under an environment). */
export interface RawPolicy {
  hostPaths?: string[];
  privileged?: boolean;
  capabilities?: string[];
  images?: string[];
  nginxDirectives?: string[];
  hostPorts?: (number | string)[];
}

/** An environment's policy: its own fields, else the top-level ones, else the defaults. */
export function resolvePolicy(top: RawPolicy | undefined, env: RawPolicy | undefined): RepoPolicy {
  const pick = <K extends keyof RawPolicy>(key: K): RawPolicy[K] => env?.[key] ?? top?.[key];
  const ports = pick('hostPorts');
  const images = pick('images');
  return {
    hostPaths: (pick('hostPaths') ?? DEFAULT_POLICY.hostPaths).map((p) => normaliseHostPath(p)),
    privileged: pick('privileged') ?? DEFAULT_POLICY.privileged,
    capabilities: pick('capabilities') ?? DEFAULT_POLICY.capabilities,
    ...(images && { images }),
    nginxDirectives: pick('nginxDirectives') ?? DEFAULT_POLICY.nginxDirectives,
    hostPorts: ports ? ports.map(portRange) : DEFAULT_POLICY.hostPorts,
  };
}

function portRange(p: number | string): [number, number] {
  if (typeof p === 'number') return [p, p];
  const [a, b] = p.split('-').map(Number) as [number, number];
  return a <= b ? [a, b] : [b, a];
}

function normaliseHostPath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/** `dir` is `root` or below it, segment-wise (`/srv/a` is not below `/srv/ab`). */
function within(dir: string, root: string): boolean {
  return root === '/' || dir === root || dir.startsWith(root + '/');
}

/** An image reference in parts, Docker Hub spelled out: `nginx:1` → docker.io, library/nginx, tag 1. */
export interface ImageParts {
  registry: string;
  path: string;
  tag?: string;
  digest?: string;
}

const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * Splits a reference the way Docker reads it: the first component is a registry when it has a `.`
 * or a `:` or is `localhost`; otherwise the image is on Docker Hub, where a one-component path is
 * under `library/`.
 */
function parseImage(ref: string): ImageParts {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) [rest, digest] = [rest.slice(0, at), rest.slice(at + 1)];
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) [rest, tag] = [rest.slice(0, colon), rest.slice(colon + 1)];
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  const hasRegistry = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasRegistry ? first : 'docker.io';
  let path = hasRegistry ? rest.slice(slash + 1) : rest;
  if (HUB_ALIASES.has(registry)) {
    registry = 'docker.io';
    if (!path.includes('/')) path = `library/${path}`;
  }
  return { registry, path, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** The reference with registry and Hub's `library/` spelled out: `nginx:1` → `docker.io/library/nginx:1`. */
export function qualifiedImage(ref: string): string {
  const p = parseImage(ref);
  return `${p.registry}/${p.path}${p.tag !== undefined ? `:${p.tag}` : ''}${p.digest !== undefined ? `@${p.digest}` : ''}`;
}

/**
 * Whether `image` is allowed by a policy entry, compared part by part after both are spelled out:
 * a registry host alone (`registry.example.com`) allows all of it; a repository (`nginx`,
 * `ghcr.io/acme/web`) allows it and everything below it; an entry ending in `/` allows what is
 * below that path; a tag or digest in the entry must match exactly.
 */
export function imageAllowed(image: string, entry: string): boolean {
  return allowedBy(parseImage(image), entry);
}

function allowedBy(img: ImageParts, entry: string): boolean {
  const below = entry.endsWith('/');
  const trimmed = entry.replace(/\/+$/, '');
  if (!trimmed.includes('/')) {
    // `registry.example.com`, `localhost:5000`: a registry host (a port, never a tag, after its colon).
    const [host, port] = trimmed.split(':') as [string, string | undefined];
    if ((host.includes('.') || host === 'localhost') && (port === undefined || /^\d+$/.test(port))) {
      return img.registry === (HUB_ALIASES.has(trimmed) ? 'docker.io' : trimmed);
    }
  }
  // A path prefix (`berth-demo/`) is a namespace, never a Hub `library/` image: parse it with a child.
  const want = below ? parseImage(`${trimmed}/x`) : parseImage(trimmed);
  const path = below ? want.path.slice(0, -2) : want.path;
  if (img.registry !== want.registry) return false;
  if (!below && (want.tag !== undefined || want.digest !== undefined)) {
    return img.path === path && (want.tag === undefined || img.tag === want.tag) && (want.digest === undefined || img.digest === want.digest);
  }
  return img.path === path || img.path.startsWith(`${path}/`);
}

/** Where a policy field is set. The same words in every environment, so a problem seen in several is reported once. */
const where = (field: string): string => `berth.yaml: policy.${field} (at the top, or under the environment)`;

/**
 * What the environment's policy refuses in its apps: host paths, privileged mode, capabilities,
 * images, host ports and nginx directives. Each problem points at the app's field.
 */
export function policyChecks(apps: readonly DesiredApp[], policy: RepoPolicy, locate: Locator): Problem[] {
  const problems: Problem[] = [];
  const add = (code: Problem['code'], app: string, pointer: string, message: string, key = false): void => {
    problems.push({ code, ...locate(app, pointer, key), pointer, message });
  };
  for (const app of apps) {
    const { spec } = app;
    for (const [i, v] of spec.volumes.entries()) {
      if (!v.source.startsWith('/')) continue;
      const at = `/spec/volumes/${i}/source`;
      const dir = normaliseHostPath(v.source);
      if (v.source.split('/').includes('..')) {
        add('policy', app.name, at, `volume source ${JSON.stringify(v.source)} contains "..": write the host path it means`);
      } else if (!policy.hostPaths.some((root) => within(dir, root))) {
        const allowed = policy.hostPaths.length ? `allowed: ${policy.hostPaths.join(', ')}` : 'no host path is allowed';
        add('policy', app.name, at, `volume source ${v.source} is a host path the environment's policy does not allow (${allowed}); use a named volume, or allow it in ${where('hostPaths')}`);
      }
    }
    if (spec.privileged && !policy.privileged) {
      add('policy', app.name, '/spec/privileged', `app "${app.name}" asks for a privileged container, which the environment's policy does not allow; allow it in ${where('privileged')}`);
    }
    for (const [i, cap] of (spec.capAdd ?? []).entries()) {
      if (policy.capabilities.includes(cap)) continue;
      const allowed = policy.capabilities.length ? `allowed: ${policy.capabilities.join(', ')}` : 'no capability is allowed';
      add('policy', app.name, `/spec/capAdd/${i}`, `capability ${cap} is not allowed by the environment's policy (${allowed}); list it in ${where('capabilities')}`);
    }
    const image = policy.images && parseImage(spec.image);
    if (policy.images && image && !policy.images.some((entry) => allowedBy(image, entry))) {
      add('policy', app.name, '/spec/image', `image ${spec.image} is not from an allowed source (allowed: ${policy.images.join(', ') || 'none'}); allowed prefixes are set in ${where('images')}`);
    }
    for (const [i, port] of spec.ports.entries()) {
      if (port.hostPort === undefined || policy.hostPorts.some(([lo, hi]) => port.hostPort! >= lo && port.hostPort! <= hi)) continue;
      const allowed = policy.hostPorts.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`)).join(', ') || 'none';
      add('policy', app.name, `/spec/ports/${i}/hostPort`, `host port ${port.hostPort} is not allowed by the environment's policy (allowed: ${allowed}); change it, or allow it in ${where('hostPorts')}`);
    }
    if (spec.route?.nginx) {
      for (const p of checkDirectives(spec.route.nginx, policy.nginxDirectives)) add('nginx-directive', app.name, `/spec/route/nginx${p.pointer}`, p.message, p.key);
    }
  }
  return problems;
}
