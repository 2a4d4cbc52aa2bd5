import { selectForge } from '../forge/select.js';
import type { ConfigSource } from '../source/open.js';
import type { GlobalOptions } from './context.js';
import { DEFAULT_STATUS_CONTEXT, statusContext, type ForgeCliOptions } from './forge-options.js';
import type { StatusOptions } from './pipeline.js';

/**
 * Where `env`'s commit statuses go, from the forge options and the repo (selectForge): a forge's API,
 * git notes for a local repository, or nowhere (`note` says why and how to turn them on).
 */
export function statusOptionsFor(opts: GlobalOptions & Partial<ForgeCliOptions>, env: string, source: ConfigSource): StatusOptions & { note: string } {
  const { forge, note } = selectForge({
    repo: opts.repo,
    ...(source.git && { git: source.git }),
    ...(opts.forge && { forge: opts.forge }),
    ...(opts.forgeUrl && { forgeUrl: opts.forgeUrl }),
    ...(opts.forgeRepo && { forgeRepo: opts.forgeRepo }),
    ...(opts.forgeToken && { forgeToken: opts.forgeToken }),
  });
  return { ...(forge && { forge }), context: statusContext(opts.statusContext ?? DEFAULT_STATUS_CONTEXT, env), ...(opts.externalUrl && { externalUrl: opts.externalUrl }), note };
}
