import { revisionKey, type Revision } from '../source/types.js';
import { DocCache } from './doc-cache.js';
import type { Problem } from './problems.js';
import { loadRepositoryConfig, renderEnvironment, type RenderOptions, type RenderResult } from './render.js';
import { DEFAULT_POLICY, type DesiredState, type EnvironmentConfig } from './types.js';

export interface RetireOptions {
  /**
   * `--prune-environment`: `env` is no longer in berth.yaml and everything left of it is to be
   * removed. Only for an environment berth.yaml does not define (the CLI refuses it otherwise).
   */
  pruneEnvironment?: boolean;
}

/**
 * The one way plan, apply and the controller get an environment's desired state: rendered from the
 * repo, or, for an environment being retired (`retired: true` in berth.yaml, or removed from it and
 * named with `--prune-environment`), its end state: no apps, no routes. Planned against live state,
 * that removes every container and route the environment has left, and nothing of any other.
 */
export function desiredState(revision: Revision, env: string, options: RenderOptions & RetireOptions): RenderResult {
  const cache = options.cache ?? new DocCache();
  const repo = loadRepositoryConfig(revision, cache);
  const settings = repo.config?.environments[env];
  if (repo.config && (settings?.retired || (!settings && options.pruneEnvironment))) return { ok: true, state: retiredState(revision, env, settings) };
  const rendered = renderEnvironment(revision, env, { ...options, cache });
  if (rendered.ok || !repo.config || settings) return rendered;
  return { ok: false, problems: rendered.problems.map((p) => withRetireHint(p, env)) };
}

/** `env` as berth.yaml at `revision` defines it (retired or not), if it does. */
export function definedEnvironment(revision: Revision, env: string, cache?: DocCache): EnvironmentConfig | undefined {
  return loadRepositoryConfig(revision, cache).config?.environments[env];
}

/** `prune` for a plan of `desired`: a retiring environment removes everything, whatever `--no-prune` says. */
export function pruneFor(desired: DesiredState, flag: boolean | undefined): boolean | undefined {
  return desired.settings.retired ? true : flag;
}

/** Nothing runs and nothing is routed; no heal (a stray container is reported as drift, not removed behind a person's back). */
function retiredState(revision: Revision, env: string, settings: EnvironmentConfig | undefined): DesiredState {
  const base: EnvironmentConfig = settings ?? { branch: revision.ref.branch ?? 'HEAD', selfHeal: false, prune: true, policy: DEFAULT_POLICY };
  return {
    environment: env,
    settings: { ...base, selfHeal: false, prune: true, retired: true },
    revision: revision.ref,
    revisionKey: revisionKey(revision),
    apps: [],
    plugins: [],
    unresolvedSecrets: [],
  };
}

/** The "environment not defined" problem, with the way to retire what it left behind. */
function withRetireHint(p: Problem, env: string): Problem {
  if (p.code !== 'unknown-environment' || p.pointer !== undefined) return p;
  return { ...p, message: `${p.message}; if it was removed on purpose, see what is left of it with \`berth plan --env ${env} --prune-environment\`, then remove that with \`berth apply --env ${env} --prune-environment\`` };
}
