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

/**
 * An image reference with its registry and Docker Hub's `library/` spelled out, so a policy
 * prefix matches however the app writes it: `nginx:1` → `docker.io/library/nginx:1`.
 */
export function qualifiedImage(ref: string): string {
  const slash = ref.indexOf('/');
  const first = slash === -1 ? '' : ref.slice(0, slash);
  const hasRegistry = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return ref;
  return slash === -1 ? `docker.io/library/${ref}` : `docker.io/${ref}`;
}

/** Whether `image` is allowed by a policy prefix: the prefix ends at a path, tag or digest boundary unless it ends with `/`. */
export function imageAllowed(image: string, prefix: string): boolean {
  const full = qualifiedImage(image);
  // A bare name (`nginx`) as a prefix means that Hub repository; with a registry host it is as written.
  const want = prefix.includes('/') || prefix.includes('.') || prefix.includes(':') ? qualifiedPrefix(prefix) : `docker.io/library/${prefix}`;
  if (!full.startsWith(want)) return false;
  if (want.endsWith('/')) return true;
  const next = full[want.length];
  return next === undefined || next === '/' || next === ':' || next === '@';
}

function qualifiedPrefix(prefix: string): string {
  const first = prefix.split('/')[0]!;
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  return hasRegistry ? prefix : `docker.io/${prefix}`;
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
    if (policy.images && !policy.images.some((prefix) => imageAllowed(spec.image, prefix))) {
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
