import { plan } from '../plan/plan.js';
import type { Plan } from '../plan/types.js';
import type { PluginManifests } from '../render/plugins.js';
import type { Problem } from '../render/problems.js';
import { desiredState, pruneFor } from '../render/retire.js';
import type { SecretSource } from '../render/secrets.js';
import type { DesiredState } from '../render/types.js';
import { observe } from '../runtime/observe.js';
import type { ProxyDriver, RuntimeDriver } from '../runtime/types.js';
import type { Revision } from '../source/types.js';
import { withScaling } from './plugins.js';

export type LivePlan = { ok: true; desired: DesiredState; plan: Plan } | { ok: false; problems: Problem[] };

/**
 * What applying `revision` to `env` would change on the live host, as `berth plan` shows it (a person
 * asked: versions held after a rollback are planned too). Read-only. `berth plan` and the controller's
 * pull-request plans both call it, so a plan comment reads the same whoever posted it.
 */
export async function planLive(
  revision: Revision,
  env: string,
  deps: { secrets: SecretSource; runtime: RuntimeDriver; proxy: ProxyDriver; prune?: boolean; pruneEnvironment?: boolean; plugins?: PluginManifests; scaled?: ReadonlyMap<string, number> },
): Promise<LivePlan> {
  const rendered = desiredState(revision, env, { secrets: deps.secrets, ...(deps.pruneEnvironment && { pruneEnvironment: true }), ...(deps.plugins && { plugins: deps.plugins, pluginProblems: 'contain' }) });
  if (!rendered.ok) return rendered;
  // Replicas a scaler of `berth run` set are what the environment wants, not a change to plan.
  const desired = withScaling(rendered.state, deps.scaled);
  const live = await observe(desired.environment, deps.runtime, deps.proxy);
  const prune = pruneFor(desired, deps.prune);
  return { ok: true, desired, plan: plan(desired, live, { ...(prune !== undefined && { prune }) }) };
}
