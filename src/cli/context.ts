import { UsageError } from '../errors.js';
import { ValidationError } from '../render/problems.js';
import { envBranch, type RenderOptions } from '../render/render.js';
import { definedEnvironment, desiredState } from '../render/retire.js';
import type { DesiredState } from '../render/types.js';
import type { GitAuth } from '../source/git.js';
import { openSource, readRevision, type ConfigSource } from '../source/open.js';
import { RepoWriter } from '../source/write.js';
import type { Revision } from '../source/types.js';
import { manifestsOf, pluginCatalog } from './plugins.js';
import { chainSecretSources, envSecretSource, fileSecretSource, loadDigestKey, type SecretSource } from '../render/secrets.js';

/** Options every command understands; each also reads a BERTH_* environment variable. */
export interface GlobalOptions {
  repo: string;
  env?: string;
  output: 'text' | 'json' | 'yaml';
  secretsFile?: string;
  logLevel: string;
  /** validate: also require a value for every declared secret. */
  requireSecrets?: boolean;
  /** Branch, tag or sha to read (Git repositories). */
  ref?: string;
  stateDir: string;
  gitToken?: string;
  gitUsername?: string;
  /** plan and apply: retire --env, which berth.yaml no longer defines. */
  pruneEnvironment?: boolean;
  /** --plugin-dir folders. */
  pluginDir?: string[];
}

/** The Git credentials the options give (--git-token, --git-username). */
export function gitAuth(opts: Pick<GlobalOptions, 'gitToken' | 'gitUsername'>): GitAuth {
  return { ...(opts.gitToken && { token: opts.gitToken }), ...(opts.gitUsername && { username: opts.gitUsername }) };
}

export async function openCliSource(opts: GlobalOptions): Promise<ConfigSource> {
  return openSource(opts.repo, { stateDir: opts.stateDir, auth: gitAuth(opts) });
}

/** The writer for --repo (rollback, promotion, merge previews), with the options' credentials and `author` ("Name <email>"). */
export function cliWriter(opts: GlobalOptions & { author?: string }, env?: string): RepoWriter {
  return new RepoWriter(opts.repo, { stateDir: opts.stateDir, auth: gitAuth(opts), ...(opts.author !== undefined && { author: opts.author }), ...(env && { env }) });
}

/** The revision a one-shot command reads: --ref, else the environment's branch (Git), else HEAD or the directory. */
export async function cliRevision(opts: GlobalOptions, env?: string): Promise<Revision> {
  const source = await openCliSource(opts);
  return readRevision(source, { ...(opts.ref && { ref: opts.ref }), ...(env && { env }), branchOf: (rev, e) => envBranch(rev, e) });
}

/**
 * Which secret digest key a command uses: plan, apply and run the installation's key in --state-dir,
 * made on first use (so they agree with each other and with the labels of running containers);
 * render that key when there is one (a preview never writes); validate none (it prints no digest).
 */
export type DigestKeyUse = 'create' | 'existing' | 'none';

export function secretSourceFor(opts: Pick<GlobalOptions, 'secretsFile' | 'stateDir'>, keyUse: DigestKeyUse = 'create'): SecretSource {
  const source = opts.secretsFile ? chainSecretSources(fileSecretSource(opts.secretsFile), envSecretSource()) : envSecretSource();
  const digestKey = keyUse === 'none' ? undefined : loadDigestKey(opts.stateDir, keyUse === 'create');
  return digestKey ? { ...source, digestKey } : source;
}

const ENV_NAME = /^[a-z][a-z0-9-]{0,39}$/;

export function requireEnv(opts: Pick<GlobalOptions, 'env'>): string {
  if (!opts.env) throw new UsageError('--env ENV is required (or set BERTH_ENV)');
  // The name becomes part of file names (berth-<env>.conf, locks, history) and container labels.
  if (!ENV_NAME.test(opts.env)) throw new UsageError(`--env ${JSON.stringify(opts.env)} is not an environment name: lower-case letters, digits and '-', starting with a letter, at most 40 characters`);
  return opts.env;
}

/** --env's desired state at the revision the options name; every problem thrown as one ValidationError. */
export async function desiredStateFor(opts: GlobalOptions, unresolvedSecrets: RenderOptions['unresolvedSecrets'] = 'error'): Promise<DesiredState> {
  const env = requireEnv(opts);
  const revision = await cliRevision(opts, env);
  if (opts.pruneEnvironment) checkPruneEnvironment(revision, env);
  const plugins = manifestsOf(await pluginCatalog(opts));
  const rendered = desiredState(revision, env, { secrets: secretSourceFor(opts, unresolvedSecrets === 'allow' ? 'existing' : 'create'), unresolvedSecrets, plugins, ...(opts.pruneEnvironment && { pruneEnvironment: true }) });
  if (!rendered.ok) throw new ValidationError(rendered.problems, env);
  return rendered.state;
}

/** `--prune-environment` retires only an environment berth.yaml no longer defines: a defined one is retired with `retired: true`. */
export function checkPruneEnvironment(revision: Revision, env: string): Revision {
  const defined = definedEnvironment(revision, env);
  if (defined?.retired) throw new UsageError(`environment "${env}" is marked \`retired: true\` in berth.yaml: plan and apply it without --prune-environment`, { env });
  if (defined) {
    throw new UsageError(`--prune-environment is for an environment removed from berth.yaml, and "${env}" is still defined there; to retire it, set \`retired: true\` under it (or remove it) and commit`, { env });
  }
  return revision;
}
