/**
 * What a `renderTransform` hook returns is checked as the repo's own apps are: each app against the
 * App schema, then the cross-app checks (routes, host ports, dependencies) and the repo's policy (so a
 * plugin cannot add what the repo forbids, e.g. `privileged`). Spec hashes are computed again. Pure.
 */
import { crossChecks, type Locator } from './checks.js';
import { policyChecks } from './policy.js';
import type { Problem } from './problems.js';
import { specHash } from './render.js';
import { validateValue } from './schema.js';
import { SecretValue } from './secrets.js';
import type { DesiredApp, DesiredState } from './types.js';

/** An app as an App document again: secrets back as `{ secretRef }`, nothing undefined. */
function asDocument(app: DesiredApp): Record<string, unknown> {
  const plain = (v: unknown): unknown => {
    if (v instanceof SecretValue) return { secretRef: v.ref };
    if (Array.isArray(v)) return v.map(plain);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, plain(x)]));
    return v;
  };
  return { apiVersion: 'berth/v1', kind: 'App', metadata: { name: app.name, ...(Object.keys(app.labels ?? {}).length && { labels: app.labels }) }, spec: plain(app.spec) };
}

function isApp(v: unknown): v is DesiredApp {
  return !!v && typeof v === 'object' && typeof (v as DesiredApp).name === 'string' && !!(v as DesiredApp).spec && typeof (v as DesiredApp).spec === 'object';
}

/**
 * The desired state with `apps` (a transform's output) in place of its apps, or the problems that
 * refuse it. `source` names the transform in problems and in each changed app's `sources`.
 */
export function checkTransformed(state: DesiredState, apps: unknown, source: string): { ok: true; state: DesiredState } | { ok: false; problems: Problem[] } {
  const at = { file: source, line: 0, column: 0 };
  if (!Array.isArray(apps)) return { ok: false, problems: [{ code: 'schema', ...at, message: `renderTransform must return the list of apps, got ${apps === null ? 'null' : typeof apps}` }] };
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const out: DesiredApp[] = [];
  for (const [i, app] of apps.entries()) {
    if (!isApp(app)) {
      problems.push({ code: 'schema', ...at, message: `app [${i}] is not an app (name, labels, spec)` });
      continue;
    }
    if (seen.has(app.name)) problems.push({ code: 'duplicate-app', ...at, message: `app "${app.name}" is returned twice` });
    seen.add(app.name);
    const schema = validateValue('App', asDocument(app), source, () => ({ line: 0, column: 0 }));
    problems.push(...schema.map((p) => ({ ...p, message: `app ${app.name}: ${p.message}` })));
    const labels = app.labels ?? {};
    const hash = specHash(app.name, labels, app.spec);
    const before = state.apps.find((a) => a.name === app.name);
    const changed = !before || before.specHash !== hash || before.spec.replicas !== app.spec.replicas || JSON.stringify(before.labels) !== JSON.stringify(labels);
    out.push({ ...app, labels, specHash: hash, sources: changed ? [...(before?.sources ?? []), source] : app.sources });
  }
  if (problems.length) return { ok: false, problems };
  const locate: Locator = () => at;
  problems.push(...crossChecks(out, locate), ...policyChecks(out, state.settings.policy, locate));
  if (problems.length) return { ok: false, problems };
  return { ok: true, state: { ...state, apps: out.sort((a, b) => (a.name < b.name ? -1 : 1)) } };
}
