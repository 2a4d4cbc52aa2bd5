/**
 * Plugin documents of one environment: which plugin each uses, its config checked against that
 * plugin's schema, its secrets resolved, and the order plugins start in (dependencies first). Pure:
 * the plugins that exist come in as manifests (discovery read them; no plugin code runs here).
 */
import type { PluginManifest } from '../plugins/types.js';
import { didYouMean } from '../util/suggest.js';
import type { ParsedDoc } from './parse.js';
import { joinPointer } from './parse.js';
import type { Problem } from './problems.js';
import { validatePart } from './schema.js';
import { MASK, SecretValue, secretEnvName, type SecretSource } from './secrets.js';
import type { PluginConfig } from './types.js';

/** The plugins that exist, as render sees them. */
export interface PluginManifests {
  get(use: string): PluginManifest | undefined;
  names(): string[];
}

/** Without discovery (units): any `use` is taken, with no config schema. */
export const ANY_PLUGIN: PluginManifests = {
  get: (use) => ({ name: use, version: '0.0.0', provides: ['event-handler', 'health-check', 'load-balancer', 'metrics-exporter', 'scaler', 'lifecycle-hook', 'message-queue'] }),
  names: () => [],
};

export interface PluginDoc {
  file: string;
  doc: ParsedDoc;
  value: {
    metadata: { name: string };
    spec: { type?: PluginConfig['type']; use: string; priority?: number; required?: boolean; timeoutSeconds?: number; isolation?: 'inline' | 'worker'; memoryLimitMb?: number; integrity?: string; config?: Record<string, unknown> };
  };
}

interface SecretContext {
  source: SecretSource;
  declared: Record<string, string>;
  allowUnresolved: boolean;
}

function isSecretRef(v: unknown): v is { secretRef: string } {
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { secretRef?: unknown }).secretRef === 'string';
}

/**
 * Replaces each `{ secretRef }` in `value` with its secret: `reveal` gives what the schema checks
 * (the value, or a placeholder when unresolved), `keep` what the plugin config holds (a SecretValue).
 */
function resolveSecrets(value: unknown, pointer: string[], ctx: SecretContext, problems: (pointer: string, message: string) => void, unresolved: Set<string>, found: Map<string, SecretValue>): unknown {
  if (isSecretRef(value)) {
    const at = joinPointer([...pointer, 'secretRef']);
    const name = value.secretRef;
    if (!(name in ctx.declared)) {
      const guess = didYouMean(name, Object.keys(ctx.declared));
      problems(at, `secretRef "${name}" is not declared in berth.yaml secrets${guess ? `; did you mean "${guess}"?` : '; add it under secrets: with a description'}`);
      return '';
    }
    const secret = ctx.source.get(name);
    if (secret === undefined) {
      if (!ctx.allowUnresolved) {
        problems(at, `secret "${name}" has no value; set ${secretEnvName(name)} or add "${name}" to a --secrets-file (looked in ${ctx.source.describe()})`);
        return '';
      }
      unresolved.add(name);
    }
    found.set(joinPointer(pointer), new SecretValue(name, secret, ctx.source.digestKey));
    return secret ?? '********';
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveSecrets(v, [...pointer, String(i)], ctx, problems, unresolved, found));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveSecrets(v, [...pointer, k], ctx, problems, unresolved, found)]));
  }
  return value;
}

/** Puts the SecretValues back where the config had `{ secretRef }`, into the validated copy (defaults filled). */
function restoreSecrets(config: Record<string, unknown>, found: Map<string, SecretValue>, base: string): Record<string, unknown> {
  for (const [pointer, secret] of found) {
    const parts = pointer.slice(base.length).split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    let at: Record<string, unknown> = config;
    for (const part of parts.slice(0, -1)) at = at[part] as Record<string, unknown>;
    at[parts.at(-1)!] = secret;
  }
  return config;
}

/**
 * A secret's value never reaches a message: the schema saw it, the problem names only the field and
 * the secret. A problem about an object holding a secret may quote the object (oneOf, enum, const):
 * the value is masked there.
 */
function hideSecrets(p: Problem, found: Map<string, SecretValue>): Problem {
  if (!p.pointer) return p;
  const own = found.get(p.pointer);
  if (own) return { ...p, message: `${p.pointer.split('/').slice(3).join('.')}: the secret "${own.ref}" does not fit this field's schema` };
  let message = p.message;
  for (const [pointer, secret] of found) {
    if (!secret.resolved || !pointer.startsWith(`${p.pointer}/`)) continue;
    const value = secret.reveal();
    for (const form of new Set([value, JSON.stringify(value).slice(1, -1)])) if (form) message = message.split(form).join(MASK);
  }
  return message === p.message ? p : { ...p, message };
}

/**
 * Checks the enabled Plugin documents against the plugins that exist and returns them in start order
 * (each after the plugins it depends on; otherwise by priority, then name). Problems point at the
 * document's lines; a plugin with problems is still returned, carrying them (`problems`), so a
 * controller can contain it (the plugin is in error, the apps apply) while validate reports them.
 */
export function renderPlugins(docs: PluginDoc[], manifests: PluginManifests, secrets: SecretContext, unresolved: Set<string>): { plugins: PluginConfig[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const configs: PluginConfig[] = [];
  const byUse = new Map<string, PluginConfig[]>();
  const docOf = new Map<string, PluginDoc>();
  for (const d of docs) {
    const { metadata, spec } = d.value;
    const mine: Problem[] = [];
    const at = (pointer: string, message: string, code: Problem['code'] = 'schema'): void => void mine.push({ code, file: d.file, ...d.doc.locate(pointer), pointer, message });
    const config: PluginConfig = {
      name: metadata.name,
      ...(spec.type && { type: spec.type }),
      use: spec.use,
      config: {},
      file: d.file,
      priority: spec.priority ?? 100,
      required: spec.required ?? false,
      timeoutSeconds: spec.timeoutSeconds ?? 5,
      isolation: spec.isolation ?? 'inline',
      memoryLimitMb: spec.memoryLimitMb ?? 64,
      ...(spec.integrity && { integrity: spec.integrity }),
      after: [],
    };
    configs.push(config);
    docOf.set(config.name, d);
    byUse.set(spec.use, [...(byUse.get(spec.use) ?? []), config]);
    const done = () => {
      if (mine.length) config.problems = mine;
      problems.push(...mine);
    };
    const manifest = manifests.get(spec.use);
    if (!manifest) {
      const known = manifests.names();
      const guess = didYouMean(spec.use, known);
      at('/spec/use', `no plugin named "${spec.use}"${guess ? `; did you mean "${guess}"?` : ''} (known: ${known.join(', ') || 'none'}; plugins from a folder need --plugin-dir, npm packages must be installed beside berth)`, 'unknown-plugin');
      done();
      continue;
    }
    if (spec.type && !manifest.provides.includes(spec.type)) at('/spec/type', `plugin "${spec.use}" provides ${manifest.provides.join(', ')}, not ${spec.type}`);
    if (isSecretRef(spec.config)) {
      // The config is the plugin's settings; a secret is one of its values.
      at('/spec/config', 'spec.config: expected the plugin\'s settings (an object); put a secretRef on one of its values, e.g. config: { token: { secretRef: NAME } }');
      done();
      continue;
    }
    const found = new Map<string, SecretValue>();
    const checked = resolveSecrets(structuredClone(spec.config ?? {}), ['spec', 'config'], secrets, (pointer, message) => at(pointer, message, 'secret-missing'), unresolved, found) as Record<string, unknown>;
    if (!mine.length && manifest.configSchema) {
      // An unresolved secret (previews) is only a placeholder to the schema: not judged until it has a value.
      const configProblems = validatePart(manifest.configSchema, checked, d.doc, '/spec/config').filter((p) => !(p.pointer && found.get(p.pointer)?.resolved === false));
      mine.push(...configProblems.map((p) => hideSecrets(p, found)));
    }
    if (!mine.length) config.config = restoreSecrets(checked, found, '/spec/config');
    done();
  }

  // Dependencies are between plugins (manifest names): each must be enabled here by some document.
  for (const c of configs) {
    const d = docOf.get(c.name)!;
    for (const dep of manifests.get(c.use)?.dependsOn ?? []) {
      const providers = byUse.get(dep);
      if (!providers?.length) {
        const p: Problem = { code: 'unknown-dependency', file: d.file, ...d.doc.locate('/spec/use'), pointer: '/spec/use', message: `plugin "${c.use}" depends on plugin "${dep}", which no Plugin document enables for this environment` };
        c.problems = [...(c.problems ?? []), p];
        problems.push(p);
        continue;
      }
      c.after.push(...providers.map((p) => p.name).filter((n) => n !== c.name));
    }
    c.after.sort();
  }
  let order = startOrder(configs);
  // The plugins of each cycle cannot start: each carries the problem, and the rest start in order.
  while ('cycle' in order) {
    for (const name of order.cycle) {
      const d = docOf.get(name)!;
      const c = configs.find((x) => x.name === name)!;
      const p: Problem = { code: 'dependency-cycle', file: d.file, ...d.doc.locate('/spec/use'), pointer: '/spec/use', message: `plugin dependency cycle: ${[...order.cycle, order.cycle[0]].join(' → ')}` };
      c.problems = [...(c.problems ?? []), p];
      c.after = [];
      problems.push(p);
    }
    order = startOrder(configs);
  }
  return { plugins: order.sorted, problems };
}

/** Kahn's algorithm, ready plugins taken by priority then name: deterministic, dependencies first. */
export function startOrder(configs: PluginConfig[]): { sorted: PluginConfig[] } | { cycle: string[] } {
  const byName = new Map(configs.map((c) => [c.name, c]));
  const waiting = new Map(configs.map((c) => [c.name, new Set(c.after.filter((a) => byName.has(a)))]));
  const sorted: PluginConfig[] = [];
  const rank = (a: PluginConfig, b: PluginConfig) => a.priority - b.priority || (a.name < b.name ? -1 : 1);
  while (waiting.size) {
    const ready = [...waiting].filter(([, deps]) => deps.size === 0).map(([n]) => byName.get(n)!).sort(rank);
    if (!ready.length) return { cycle: findCycle(waiting) };
    const next = ready[0]!;
    sorted.push(next);
    waiting.delete(next.name);
    for (const deps of waiting.values()) deps.delete(next.name);
  }
  return { sorted };
}

function findCycle(waiting: Map<string, Set<string>>): string[] {
  const start = [...waiting.keys()].sort()[0]!;
  const seen: string[] = [];
  let at = start;
  while (!seen.includes(at)) {
    seen.push(at);
    at = [...waiting.get(at)!].sort()[0]!;
  }
  return seen.slice(seen.indexOf(at));
}
