import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { normalizeRepoPath } from '../forge/select.js';
import { MAX_CONTEXT } from '../forge/statuses.js';
import type { ForgeName } from '../forge/types.js';

/** Options of the commands that report to a forge (commit statuses, pull request comments). */
export interface ForgeCliOptions {
  /** Unset: chosen from the repo URL (see selectForge). */
  forge?: ForgeName;
  forgeUrl?: string;
  forgeRepo?: string;
  /** Never logged, never printed. */
  forgeToken?: string;
  /** Template of the status context; `{env}` is the environment. */
  statusContext: string;
  /** berth's own address, linked from each status (target_url). */
  externalUrl?: string;
}

const FORGES: readonly ForgeName[] = ['github', 'gitea', 'gitlab', 'local'];
export const DEFAULT_STATUS_CONTEXT = 'berth/{env}';

function httpUrl(flag: string): (value: string) => string {
  return (value) => {
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      throw new UsageError(`${flag}: expected an http(s) URL, got "${value}"`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${flag}: expected an http(s) URL, got a ${u.protocol} URL`);
    return value.replace(/\/+$/, '');
  };
}

function repoPath(value: string): string {
  const repo = normalizeRepoPath(value);
  if (!repo) throw new UsageError(`--forge-repo: expected owner/name (GitLab: group/subgroup/project), got "${value}"`);
  return repo;
}

/** The status context for `env`: `{env}` replaced; at most 255 characters, as the forges take. */
export function statusContext(template: string, env: string): string {
  const context = template.replaceAll('{env}', env);
  if (!context.trim()) throw new UsageError('--status-context: the context is empty');
  if (context.length > MAX_CONTEXT) throw new UsageError(`--status-context: "${context.slice(0, 40)}…" has ${context.length} characters; forges take at most ${MAX_CONTEXT}`, env ? { env } : {});
  return context;
}

/** --forge, --forge-url, --forge-repo, --forge-token, --status-context and --external-url, each also from a BERTH_ variable. */
export function addForgeOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--forge <forge>', 'where commit statuses and pull request comments go (default: from the repo URL; a local repo gets git notes)').choices(FORGES).env('BERTH_FORGE'))
    .addOption(new Option('--forge-url <url>', 'forge API base, e.g. https://github.example.com/api/v3 or https://gitea.example.com/api/v1').env('BERTH_FORGE_URL').argParser(httpUrl('--forge-url')))
    .addOption(new Option('--forge-repo <owner/name>', 'repository on the forge, when the repo URL is not the forge\'s (GitLab: group/subgroup/project)').env('BERTH_FORGE_REPO').argParser(repoPath))
    .addOption(new Option('--forge-token <token>', 'forge API token (default GITHUB_TOKEN, GITEA_TOKEN or GITLAB_TOKEN); never logged').env('BERTH_FORGE_TOKEN'))
    .addOption(
      new Option('--status-context <template>', 'commit status context; {env} is the environment').env('BERTH_STATUS_CONTEXT').default(DEFAULT_STATUS_CONTEXT).argParser((value: string) => {
        // Checked again with the environment's name (statusContext); the template alone must already fit.
        if (!value.trim()) throw new UsageError('--status-context: the template is empty');
        if (value.replaceAll('{env}', '').length > MAX_CONTEXT) throw new UsageError(`--status-context: the template is longer than ${MAX_CONTEXT} characters without {env}`);
        return value;
      }),
    )
    .addOption(new Option('--external-url <url>', "berth's own address, linked from each commit status").env('BERTH_EXTERNAL_URL').argParser(httpUrl('--external-url')));
}
