import { didYouMean } from '../util/suggest.js';
import type { Problem } from './problems.js';
import type { DesiredApp } from './types.js';

/** Where a rendered app's field came from, so cross-document problems point at the right line. */
export type Locator = (app: string, pointer: string, key?: boolean) => Pick<Problem, 'file' | 'line' | 'column'>;

function routeKey(host: string, path: string): string {
  const p = path.length > 1 ? path.replace(/\/+$/, '') : path;
  return `${host} ${p}`;
}

/** Rules that span documents: unique names, routes and host ports; dependsOn names and cycles; port references. */
export function crossChecks(apps: readonly DesiredApp[], locate: Locator, invalidApps: ReadonlySet<string> = new Set()): Problem[] {
  const problems: Problem[] = [];
  const add = (code: Problem['code'], app: string, pointer: string, message: string, key = false): void => {
    problems.push({ code, ...locate(app, pointer, key), pointer, message });
  };

  const routes = new Map<string, string>();
  const hostPorts = new Map<string, string>();
  for (const app of apps) {
    const { spec } = app;
    if (spec.route) {
      const key = routeKey(spec.route.host, spec.route.path);
      const owner = routes.get(key);
      if (owner) add('route-conflict', app.name, '/spec/route', `route ${spec.route.host}${spec.route.path} is already claimed by app "${owner}"; each host+path may route to one app`, true);
      else routes.set(key, app.name);
      if (spec.ports.length === 0) add('invalid-reference', app.name, '/spec/route', `app "${app.name}" has a route but no ports; add spec.ports with the port to route to`, true);
      else if (spec.route.port !== undefined && !spec.ports.some((p) => p.containerPort === spec.route!.port)) {
        add('invalid-reference', app.name, '/spec/route/port', `route.port ${spec.route.port} is not one of the app's containerPorts (${spec.ports.map((p) => p.containerPort).join(', ')})`);
      }
    }
    for (const [i, port] of spec.ports.entries()) {
      if (port.hostPort === undefined) continue;
      const key = `${port.protocol}/${port.hostPort}`;
      const owner = hostPorts.get(key);
      if (owner) add('host-port-conflict', app.name, `/spec/ports/${i}/hostPort`, `host port ${port.hostPort}/${port.protocol} is already used by app "${owner}"`);
      else hostPorts.set(key, app.name);
    }
    const hc = spec.healthCheck;
    const probed = hc && (['http', 'tcp', 'grpc', 'redis', 'provider'] as const).map((kind) => [kind, hc[kind]?.port] as const).find(([, port]) => port !== undefined);
    if (probed && !spec.ports.some((p) => p.containerPort === probed[1])) {
      const [kind, port] = probed;
      add('invalid-reference', app.name, `/spec/healthCheck/${kind}/port`, `health check port ${port} is not published; add it to spec.ports (berth probes the published port on the host)`);
    }
  }

  const byName = new Map(apps.map((a) => [a.name, a]));
  for (const app of apps) {
    for (const [i, dep] of app.spec.dependsOn.entries()) {
      if (byName.has(dep) || invalidApps.has(dep)) continue;
      const guess = didYouMean(dep, byName.keys());
      add('unknown-dependency', app.name, `/spec/dependsOn/${i}`, `dependsOn names unknown app "${dep}"${guess ? `; did you mean "${guess}"?` : ''}`);
    }
  }
  for (const cycle of findCycles(apps)) {
    const first = cycle[0]!;
    const idx = byName.get(first)!.spec.dependsOn.indexOf(cycle[1]!);
    add('dependency-cycle', first, `/spec/dependsOn/${idx}`, `dependsOn cycle: ${cycle.join(' → ')}; remove one of these dependencies`);
  }
  return problems;
}

/** Each elementary cycle once, rotated to start at its smallest name, closed (`a → b → a`). */
export function findCycles(apps: readonly DesiredApp[]): string[][] {
  const deps = new Map(apps.map((a) => [a.name, a.spec.dependsOn.filter((d) => apps.some((x) => x.name === d))]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const seen = new Set<string>();
  const cycles: string[][] = [];
  const visit = (name: string): void => {
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of deps.get(name) ?? []) {
      if (state.get(dep) === 'visiting') {
        const cycle = stack.slice(stack.indexOf(dep));
        const min = cycle.indexOf([...cycle].sort()[0]!);
        const rotated = [...cycle.slice(min), ...cycle.slice(0, min)];
        const key = rotated.join(' ');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...rotated, rotated[0]!]);
        }
      } else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of [...deps.keys()].sort()) if (!state.has(name)) visit(name);
  return cycles;
}

/** Apps in dependency order (dependencies first), ties broken by name. Assumes no cycles. */
export function dependencyOrder<T extends { name: string; spec: { dependsOn: string[] } }>(apps: readonly T[]): T[] {
  const byName = new Map(apps.map((a) => [a.name, a]));
  const out: T[] = [];
  const done = new Set<string>();
  const visit = (a: T, path: Set<string>): void => {
    if (done.has(a.name) || path.has(a.name)) return;
    path.add(a.name);
    for (const d of [...a.spec.dependsOn].sort()) {
      const dep = byName.get(d);
      if (dep) visit(dep, path);
    }
    done.add(a.name);
    out.push(a);
  };
  for (const a of [...apps].sort((x, y) => (x.name < y.name ? -1 : 1))) visit(a, new Set());
  return out;
}
