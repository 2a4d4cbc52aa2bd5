import type { Operation } from 'rfc6902';
import { revisionKey, type Revision, type RepoFile } from '../source/types.js';
import { canonicalJson, sha256 } from '../util/canonical.js';
import { didYouMean } from '../util/suggest.js';
import { crossChecks, type Locator } from './checks.js';
import { DocCache } from './doc-cache.js';
import { applyJsonPatch, applyMergePatch } from './json-patch.js';
import { joinPointer, limitProblem, valueAt, type ParsedDoc, type Position } from './parse.js';
import { compareProblems, type Problem } from './problems.js';
import { policyChecks, resolvePolicy, type RawPolicy } from './policy.js';
import { validateValue } from './schema.js';
import { ANY_PLUGIN, renderPlugins, type PluginDoc, type PluginManifests } from './plugins.js';
import { digestKeyId, secretEnvName, SecretValue, type SecretSource } from './secrets.js';
import type { DesiredApp, DesiredState, EnvironmentConfig, EnvValue, RenderedSpec, RepositoryConfig } from './types.js';

export interface RenderOptions {
  secrets: SecretSource;
  /** Shared across renders to skip unchanged files. */
  cache?: DocCache;
  /**
   * Secrets declared in berth.yaml but without a value: an error (default; plan and apply need
   * real values) or allowed (validate and render previews, e.g. in a pull request's CI).
   */
  unresolvedSecrets?: 'error' | 'allow';
  /**
   * The plugins that exist (discovery's manifests): Plugin documents are checked against them (the
   * plugin named in `use`, its config against its schema, dependencies). Without it, only the
   * Plugin schema is checked and configs are taken as they are (units that do not care for plugins).
   */
  plugins?: PluginManifests;
  /**
   * What a problem in a Plugin document does: `block` (default; validate) fails the render like any
   * problem; `contain` (reconciles) leaves it on that plugin (`problems`), which then cannot start,
   * and renders the apps.
   */
  pluginProblems?: 'block' | 'contain';
}

export type RenderResult = { ok: true; state: DesiredState } | { ok: false; problems: Problem[] };

interface OverlayDoc {
  target: string;
  patch?: Operation[];
  merge?: Record<string, unknown>;
}

interface PendingOverlay {
  doc: ParsedDoc;
  overlay: OverlayDoc;
  id: string;
}

interface RenderedApp {
  app?: DesiredApp;
  problems: Problem[];
  applied: AppDraft['overlays'];
  unresolved: string[];
}

type FieldLocator = (draft: AppDraft, pointer: string, key?: boolean) => Pick<Problem, 'file' | 'line' | 'column'>;

/** Overlays → schema check of the result → defaults, secrets and hash, for one app. */
function renderApp(base: AppDraft, overlays: PendingOverlay[], secrets: SecretContext, locateField: FieldLocator): RenderedApp {
  const draft: AppDraft = { ...base, overlays: [] };
  const problems: Problem[] = [];
  for (const { doc, overlay } of overlays) problems.push(...applyOverlay(draft, doc, overlay));
  const done = (app?: DesiredApp, unresolved: string[] = []): RenderedApp => ({ app, problems, applied: draft.overlays, unresolved });
  if (problems.length) return done();
  if (draft.overlays.length) {
    const found = validateValue('App', draft.value, draft.base.file, (pointer, key) => {
      const at = locateField(draft, pointer, key);
      return { line: at.line, column: at.column } satisfies Position;
    });
    if (found.length) {
      for (const p of found) problems.push({ ...p, ...locateField(draft, p.pointer ?? '', p.code === 'unknown-field') });
      return done();
    }
  }
  const unresolved = new Set<string>();
  const app = resolveApp(draft, secrets, unresolved, (pointer, message) => {
    problems.push({ code: 'secret-missing', ...locateField(draft, pointer), pointer, message });
  });
  return done(app, [...unresolved]);
}

interface AppDraft {
  name: string;
  base: ParsedDoc;
  value: unknown;
  overlays: { doc: ParsedDoc; overlay: OverlayDoc }[];
}

const REPO_FILES = ['berth.yaml', 'berth.yml'];

/** Reads berth.yaml: the environments and their branches. */
export function loadRepositoryConfig(revision: Revision, cache = new DocCache()): { config?: RepositoryConfig; doc?: ParsedDoc; problems: Problem[] } {
  const file = REPO_FILES.map((f) => revision.files.get(f)).find((f): f is RepoFile => f !== undefined);
  if (!file) {
    return {
      problems: [{ code: 'missing-file', file: 'berth.yaml', line: 1, column: 1, message: 'no berth.yaml at the repo root; create one with apiVersion: berth/v1, kind: Repository and environments: { <name>: { branch: <branch> } }' }],
    };
  }
  const checked = cache.check(file, 'Repository');
  if (!checked.doc || checked.problems.length) return { problems: checked.problems, doc: checked.doc };
  // Read by every render, plan and branch lookup of a revision: built once per berth.yaml content.
  const doc = checked.doc;
  return cache.memo(`repository\0${file.path}\0${file.id}`, () => repositoryConfig(doc));
}

/** berth.yaml's environments (policies resolved) and declared secrets, or its problems. */
function repositoryConfig(doc: ParsedDoc): { config?: RepositoryConfig; doc: ParsedDoc; problems: Problem[] } {
  const raw = doc.value as { environments: Record<string, Omit<Partial<EnvironmentConfig>, 'policy'> & { branch: string; policy?: RawPolicy }>; policy?: RawPolicy; secrets?: Record<string, { description?: string }> };
  // Looked up by names from the CLI and the repo: no inherited keys (toString, constructor…) may answer.
  const environments: Record<string, EnvironmentConfig> = Object.create(null) as Record<string, EnvironmentConfig>;
  for (const [name, env] of Object.entries(raw.environments)) {
    environments[name] = { branch: env.branch, selfHeal: env.selfHeal ?? false, prune: env.prune ?? true, ...(env.retired && { retired: true }), ...(env.healLimit && { healLimit: env.healLimit }), ...(env.previewBranches?.length && { previewBranches: env.previewBranches }), policy: resolvePolicy(raw.policy, env.policy) };
  }
  const secrets: Record<string, string> = Object.create(null) as Record<string, string>;
  const byVariable = new Map<string, string>();
  const problems: Problem[] = [];
  for (const [name, s] of Object.entries(raw.secrets ?? {})) {
    secrets[name] = s.description ?? '';
    // db-password and db_password would both read BERTH_SECRET_DB_PASSWORD: one value for two names.
    const variable = secretEnvName(name);
    const other = byVariable.get(variable);
    if (other === undefined) byVariable.set(variable, name);
    else {
      const pointer = joinPointer(['secrets', name]);
      problems.push({ code: 'schema', file: doc.file, ...doc.locate(pointer, true), pointer, message: `secret "${name}" would read the same variable ${variable} as secret "${other}"; rename one of them` });
    }
  }
  if (problems.length) return { problems, doc: doc };
  return { config: { environments, secrets }, doc: doc, problems: [] };
}

/** The branch `env` follows according to the revision's berth.yaml, if that names it. */
export function envBranch(revision: Revision, env: string, cache?: DocCache): string | undefined {
  return loadRepositoryConfig(revision, cache).config?.environments[env]?.branch;
}

/** Renders every environment (or the named ones) and returns all problems, deduplicated. */
export function validateRepository(revision: Revision, options: RenderOptions & { environments?: string[] }): { environments: string[]; problems: Problem[] } {
  const cache = options.cache ?? new DocCache();
  const repo = loadRepositoryConfig(revision, cache);
  if (!repo.config) return { environments: [], problems: repo.problems };
  const envs = options.environments ?? Object.keys(repo.config.environments).sort();
  const byKey = new Map<string, Problem>();
  const envsOf = new Map<string, string[]>();
  for (const env of envs) {
    const result = renderEnvironment(revision, env, { ...options, cache });
    if (result.ok) continue;
    for (const p of result.problems) {
      const key = `${p.file}:${p.line}:${p.column}:${p.message}`;
      if (!byKey.has(key)) byKey.set(key, p);
      envsOf.set(key, [...(envsOf.get(key) ?? []), env]);
    }
  }
  const problems = [...byKey.entries()].map(([key, p]) => {
    const seenIn = envsOf.get(key)!;
    return envs.length > 1 && seenIn.length < envs.length ? { ...p, env: seenIn.join(',') } : p;
  });
  return { environments: envs, problems: problems.sort(compareProblems) };
}

/** Pure: the files of one revision + an environment → the desired state, or every problem found. */
export function renderEnvironment(revision: Revision, environment: string, options: RenderOptions): RenderResult {
  const cache = options.cache ?? new DocCache();
  const problems: Problem[] = [];
  const repo = loadRepositoryConfig(revision, cache);
  if (!repo.config) return { ok: false, problems: repo.problems };
  const settings = repo.config.environments[environment];
  if (!settings) {
    const names = Object.keys(repo.config.environments);
    const guess = didYouMean(environment, names);
    const at = repo.doc?.locate('/environments', true) ?? { line: 1, column: 1 };
    return {
      ok: false,
      problems: [{ code: 'unknown-environment', file: repo.doc?.file ?? 'berth.yaml', ...at, message: `environment "${environment}" is not defined in berth.yaml${guess ? `; did you mean "${guess}"?` : ''} (defined: ${names.join(', ')})` }],
    };
  }

  // Symlinks the source refused (out of the repo, broken): each a problem at the link, whatever it
  // stood for (a file, or a whole folder such as apps/), and never an absent file.
  const files: RepoFile[] = [];
  for (const file of revision.files.values()) {
    if (file.unread?.limit === 'symlink') problems.push(limitProblem(file.path, file.unread));
    else files.push(file);
  }
  const drafts = new Map<string, AppDraft>();
  const draftIds = new Map<string, string>();
  const invalidApps = new Set<string>();
  const pending = new Map<string, PendingOverlay[]>();
  for (const file of files.filter((f) => f.path.startsWith('apps/'))) {
    const checked = cache.check(file, 'App');
    problems.push(...checked.problems);
    if (checked.doc && checked.problems.length) {
      // Still a known app: references to it must not turn into false "unknown app" errors.
      const name = (checked.doc.value as { metadata?: { name?: unknown } } | null)?.metadata?.name;
      if (typeof name === 'string') invalidApps.add(name);
    }
    if (!checked.doc || checked.problems.length) continue;
    const name = (checked.doc.value as { metadata: { name: string } }).metadata.name;
    const existing = drafts.get(name);
    if (existing) {
      problems.push({ code: 'duplicate-app', file: file.path, ...checked.doc.locate('/metadata/name'), pointer: '/metadata/name', message: `app "${name}" is already defined in ${existing.base.file}; app names must be unique` });
      continue;
    }
    drafts.set(name, { name, base: checked.doc, value: checked.doc.value, overlays: [] });
    draftIds.set(name, file.id);
  }

  for (const file of files.filter((f) => f.path.startsWith('overlays/'))) {
    const [, envDir, ...rest] = file.path.split('/');
    if (!envDir) continue;
    if (rest.length === 0) {
      problems.push({ code: 'overlay-unknown-environment', file: file.path, line: 1, column: 1, message: `${file.path} is not in an environment's folder, so no environment would apply it; move it to overlays/<environment>/ (environments: ${Object.keys(repo.config.environments).join(', ')})` });
      continue;
    }
    if (!repo.config.environments[envDir]) {
      const guess = didYouMean(envDir, Object.keys(repo.config.environments));
      problems.push({ code: 'overlay-unknown-environment', file: file.path, line: 1, column: 1, message: `overlays/${envDir}/ is not an environment in berth.yaml${guess ? `; did you mean overlays/${guess}/?` : ''}` });
      continue;
    }
    if (envDir !== environment) continue;
    const checked = cache.check(file, 'Overlay');
    problems.push(...checked.problems);
    if (!checked.doc || checked.problems.length) continue;
    const overlay = checked.doc.value as OverlayDoc;
    const draft = drafts.get(overlay.target);
    if (!draft && invalidApps.has(overlay.target)) continue;
    if (!draft) {
      const guess = didYouMean(overlay.target, drafts.keys());
      problems.push({ code: 'overlay-unknown-target', file: file.path, ...checked.doc.locate('/target'), pointer: '/target', message: `overlay targets unknown app "${overlay.target}"${guess ? `; did you mean "${guess}"?` : ''}` });
      continue;
    }
    pending.set(overlay.target, [...(pending.get(overlay.target) ?? []), { doc: checked.doc, overlay, id: file.id }]);
  }

  const locateField = (draft: AppDraft, pointer: string, key = false): Pick<Problem, 'file' | 'line' | 'column'> => {
    // Newest overlay that wrote the field (or a parent of it) wins; else the app file.
    for (const { doc, overlay } of [...draft.overlays].reverse()) {
      if (overlay.merge && valueAt(overlay.merge, pointer) !== undefined) return { file: doc.file, ...doc.locate('/merge' + pointer, key) };
      const idx = (overlay.patch ?? []).findIndex((op) => pointer === op.path || pointer.startsWith(op.path + '/'));
      if (idx >= 0) return { file: doc.file, ...doc.locate(`/patch/${idx}`) };
    }
    return { file: draft.base.file, ...draft.base.locate(pointer, key) };
  };

  // One rendered app depends only on its app file, its overlays, the declared secrets and their
  // values: memoised on exactly those, so a one-file commit re-renders one app.
  const secretCtx: SecretContext = { source: options.secrets, declared: repo.config.secrets, allowUnresolved: options.unresolvedSecrets === 'allow' };
  const secretKey = sha256(canonicalJson([digestKeyId(options.secrets.digestKey), ...Object.keys(repo.config.secrets).sort().map((n) => [n, options.secrets.get(n) ?? null, secretCtx.allowUnresolved])]));
  const apps: DesiredApp[] = [];
  const unresolved = new Set<string>();
  for (const draft of [...drafts.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const overlays = pending.get(draft.name) ?? [];
    const key = ['app', environment, draft.base.file, draftIds.get(draft.name), ...overlays.map((o) => `${o.doc.file}@${o.id}`), secretKey].join('\0');
    const result = cache.memo(key, () => renderApp(draft, overlays, secretCtx, locateField));
    draft.overlays = result.applied;
    problems.push(...result.problems);
    for (const name of result.unresolved) unresolved.add(name);
    if (result.app) apps.push(result.app);
    else invalidApps.add(draft.name);
  }

  const locator: Locator = (app, pointer, key) => locateField(drafts.get(app)!, pointer, key);
  problems.push(...crossChecks(apps, locator, invalidApps));
  problems.push(...policyChecks(apps, settings.policy, locator));

  const pluginDocs: PluginDoc[] = [];
  const pluginNames = new Map<string, string>();
  for (const file of files.filter((f) => f.path.startsWith('plugins/'))) {
    const checked = cache.check(file, 'Plugin');
    problems.push(...checked.problems);
    if (!checked.doc || checked.problems.length) continue;
    const v = checked.doc.value as PluginDoc['value'] & { spec: { enabled?: boolean; environments?: string[] } };
    const other = pluginNames.get(v.metadata.name);
    if (other) {
      problems.push({ code: 'duplicate-plugin', file: file.path, ...checked.doc.locate('/metadata/name'), pointer: '/metadata/name', message: `plugin "${v.metadata.name}" is already defined in ${other}` });
      continue;
    }
    pluginNames.set(v.metadata.name, file.path);
    for (const [i, env] of (v.spec.environments ?? []).entries()) {
      if (!repo.config.environments[env]) problems.push({ code: 'unknown-environment', file: file.path, ...checked.doc.locate(`/spec/environments/${i}`), pointer: `/spec/environments/${i}`, message: `environment "${env}" is not defined in berth.yaml` });
    }
    if (v.spec.enabled === false || (v.spec.environments && !v.spec.environments.includes(environment))) continue;
    pluginDocs.push({ file: file.path, doc: checked.doc, value: v });
  }
  const rendered = renderPlugins(pluginDocs, options.plugins ?? ANY_PLUGIN, secretCtx, unresolved);
  if (options.pluginProblems !== 'contain') problems.push(...rendered.problems);
  const plugins = rendered.plugins;

  if (problems.length) return { ok: false, problems: dedupe(problems).sort(compareProblems) };
  return { ok: true, state: { environment, settings, revision: revision.ref, revisionKey: revisionKey(revision), apps, plugins, unresolvedSecrets: [...unresolved].sort() } };
}

function applyOverlay(draft: AppDraft, doc: ParsedDoc, overlay: OverlayDoc): Problem[] {
  let value = draft.value;
  if (overlay.patch?.length) {
    const result = applyJsonPatch(value, overlay.patch);
    if (!result.ok) {
      const op = overlay.patch[result.index]!;
      return [{ code: 'overlay-failed', file: doc.file, ...doc.locate(`/patch/${result.index}`), pointer: `/patch/${result.index}`, message: `overlay not applied: operation ${result.index} (${op.op} ${op.path}) on app "${draft.name}" failed: ${result.message}` }];
    }
    value = result.value;
  }
  if (overlay.merge) value = applyMergePatch(value, overlay.merge);
  const name = (value as { metadata?: { name?: unknown } } | null)?.metadata?.name;
  if (name !== draft.name) {
    return [{ code: 'overlay-failed', file: doc.file, ...doc.locate('', false), message: `overlay must not rename app "${draft.name}" (metadata.name became ${JSON.stringify(name)})` }];
  }
  draft.value = value;
  draft.overlays.push({ doc, overlay });
  return [];
}

interface RawApp {
  metadata: { name: string; labels?: Record<string, string> };
  spec: Omit<Partial<RenderedSpec>, 'env' | 'healthCheck' | 'strategy' | 'route' | 'ports' | 'volumes'> & {
    image: string;
    env?: Record<string, string | number | boolean | { secretRef: string }>;
    ports?: Partial<RenderedSpec['ports'][number]>[];
    volumes?: Partial<RenderedSpec['volumes'][number]>[];
    healthCheck?: Partial<Omit<NonNullable<RenderedSpec['healthCheck']>, 'grpc' | 'redis' | 'provider'>> & {
      grpc?: { port: number; service?: string; tls?: false };
      redis?: { port: number; password?: { secretRef: string } };
      provider?: { protocol: string; port?: number; config?: Record<string, unknown> };
    };
    strategy?: Partial<RenderedSpec['strategy']>;
    route?: Partial<NonNullable<RenderedSpec['route']>> & { host: string };
  };
}

interface SecretContext {
  source: SecretSource;
  declared: Record<string, string>;
  allowUnresolved: boolean;
}

/** Fills defaults, resolves secrets and hashes: one validated app document → a DesiredApp. */
function resolveApp(draft: AppDraft, secrets: SecretContext, unresolved: Set<string>, missing: (pointer: string, message: string) => void): DesiredApp | undefined {
  const raw = structuredClone(draft.value) as RawApp;
  const s = raw.spec;
  const env: Record<string, EnvValue> = {};
  let ok = true;
  /** A `{ secretRef }` at `path` (what, for messages: `env DB_PASSWORD`) → its SecretValue, or undefined after reporting why. */
  const secretOf = (ref: string, path: string[], what: string): SecretValue | undefined => {
    const pointer = joinPointer([...path, 'secretRef']);
    if (!(ref in secrets.declared)) {
      const guess = didYouMean(ref, Object.keys(secrets.declared));
      missing(pointer, `secretRef "${ref}" (${what}) is not declared in berth.yaml secrets${guess ? `; did you mean "${guess}"?` : `; add it under secrets: with a description`}`);
      ok = false;
      return undefined;
    }
    const value = secrets.source.get(ref);
    if (value === undefined) {
      if (!secrets.allowUnresolved) {
        missing(pointer, `secret "${ref}" (${what}) has no value; set ${secretEnvName(ref)} or add "${ref}" to a --secrets-file (looked in ${secrets.source.describe()})`);
        ok = false;
        return undefined;
      }
      unresolved.add(ref);
    }
    return new SecretValue(ref, value, secrets.source.digestKey);
  };
  for (const key of Object.keys(s.env ?? {}).sort()) {
    const v = s.env![key]!;
    if (typeof v === 'object') {
      const secret = secretOf(v.secretRef, ['spec', 'env', key], `env ${key}`);
      if (secret) env[key] = secret;
    } else env[key] = String(v);
  }
  const hc = s.healthCheck;
  const redisPassword = hc?.redis?.password && secretOf(hc.redis.password.secretRef, ['spec', 'healthCheck', 'redis', 'password'], 'healthCheck.redis.password');
  if (!ok) return undefined;
  const spec: RenderedSpec = {
    image: s.image,
    replicas: s.replicas ?? 1,
    ...(s.command && { command: s.command }),
    ...(s.args && { args: s.args }),
    ...(s.workingDir && { workingDir: s.workingDir }),
    ...(s.user && { user: s.user }),
    env,
    ports: (s.ports ?? []).map((p) => ({ ...(p.name && { name: p.name }), containerPort: p.containerPort!, ...(p.hostPort && { hostPort: p.hostPort }), protocol: p.protocol ?? 'tcp' })),
    ...(s.resources && { resources: s.resources }),
    volumes: (s.volumes ?? []).map((v) => ({ source: v.source!, target: v.target!, readOnly: v.readOnly ?? false })),
    restartPolicy: s.restartPolicy ?? 'unless-stopped',
    stopGracePeriodSeconds: s.stopGracePeriodSeconds ?? 10,
    init: s.init ?? true,
    ...(s.privileged && { privileged: true }),
    ...(s.capAdd?.length && { capAdd: [...s.capAdd].sort() }),
    ...(hc && {
      healthCheck: {
        ...(hc.http && { http: { ...hc.http, path: hc.http.path ?? '/' } }),
        ...(hc.tcp && { tcp: hc.tcp }),
        ...(hc.exec && { exec: hc.exec }),
        // The newer protocols enter only when set, so the rendered form of every other check is as before.
        ...(hc.grpc && { grpc: { port: hc.grpc.port, service: hc.grpc.service ?? '' } }),
        ...(hc.redis && { redis: { port: hc.redis.port, ...(redisPassword && { password: redisPassword }) } }),
        ...(hc.provider && { provider: { protocol: hc.provider.protocol, ...(hc.provider.port !== undefined && { port: hc.provider.port }), config: hc.provider.config ?? {} } }),
        intervalSeconds: hc.intervalSeconds ?? 2,
        timeoutSeconds: hc.timeoutSeconds ?? 1,
        failureThreshold: hc.failureThreshold ?? 3,
        successThreshold: hc.successThreshold ?? 1,
        startPeriodSeconds: hc.startPeriodSeconds ?? 0,
        timeoutTotalSeconds: hc.timeoutTotalSeconds ?? 60,
      },
    }),
    ...(s.route && { route: { ...s.route, host: s.route.host, path: s.route.path ?? '/', stripPrefix: s.route.stripPrefix ?? false, drainSeconds: s.route.drainSeconds ?? 2 } }),
    strategy: {
      type: s.strategy?.type ?? 'rolling',
      maxSurge: s.strategy?.maxSurge ?? 1,
      maxUnavailable: s.strategy?.maxUnavailable ?? 0,
      ...(s.strategy?.steps && { steps: s.strategy.steps.map((st) => ({ weight: st.weight, pauseSeconds: st.pauseSeconds ?? 30 })) }),
    },
    dependsOn: s.dependsOn ?? [],
    ...(s.scaling && { scaling: s.scaling }),
  };
  const labels = raw.metadata.labels ?? {};
  return { name: draft.name, labels, spec, specHash: specHash(draft.name, labels, spec), sources: [draft.base.file, ...draft.overlays.map((o) => o.doc.file)] };
}

/**
 * The part of a spec that defines one container. Replicas, scaling, route, strategy, health check
 * and dependsOn are left out: changing them scales, re-routes or re-gates, never recreates.
 */
export function containerFields(name: string, labels: Record<string, string>, spec: RenderedSpec): Record<string, unknown> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.env)) env[k] = typeof v === 'string' ? v : `secret:${v.ref}:hmac:${v.digest().slice(0, 16)}`;
  return {
    name,
    labels,
    image: spec.image,
    command: spec.command,
    args: spec.args,
    workingDir: spec.workingDir,
    user: spec.user,
    env,
    ports: spec.ports,
    resources: spec.resources,
    volumes: spec.volumes,
    restartPolicy: spec.restartPolicy,
    stopGracePeriodSeconds: spec.stopGracePeriodSeconds,
    init: spec.init,
    privileged: spec.privileged,
    capAdd: spec.capAdd,
  };
}

/** Stable across runs and key order; secrets enter by digest only. Equal hash ⇔ same container. */
export function specHash(name: string, labels: Record<string, string>, spec: RenderedSpec): string {
  return sha256(canonicalJson(containerFields(name, labels, spec))).slice(0, 16);
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.file}:${p.line}:${p.column}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
