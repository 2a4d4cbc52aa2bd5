import type { Logger } from 'pino';
import { postPlan } from '../forge/post-plan.js';
import type { StatusReporter } from '../forge/statuses.js';
import type { Forge } from '../forge/types.js';
import type { SecretSource } from '../render/secrets.js';
import { planLive } from '../reconcile/plan-live.js';
import type { ProxyDriver, RuntimeDriver } from '../runtime/types.js';
import type { Revision } from '../source/types.js';

/** A branch to plan, as a webhook asks for it. */
export interface PreviewRequest {
  kind: 'push' | 'pull-request';
  /** The forge the webhook came from. */
  forge?: string;
  branch: string;
  sha?: string;
  number?: number;
  /** A pull request's target branch. */
  base?: string;
}

export interface PreviewDeps {
  env: string;
  forge: Forge;
  /** The plan status goes through the controller's reporter: queued, retried, never in a reconcile's way. */
  statuses: StatusReporter;
  /** The base status context (`berth/<env>`). */
  context: string;
  externalUrl?: string;
  log: Logger;
  runtime: RuntimeDriver;
  proxy: ProxyDriver;
  secrets: SecretSource;
  prune?: boolean;
  /** The environment's branch and `previewBranches`, per the revision last read; undefined before one was. */
  settings(): { branch: string; previewBranches: readonly string[] } | undefined;
  /** What merging `branch` into `into` would make (fetched first), read as a revision. */
  preview(into: string, branch: string): Promise<Revision>;
}

/** `feature/*` matches `feature/x` (not `feature/x/y`); `**` matches across `/`. */
export function branchMatches(pattern: string, branch: string): boolean {
  const source = pattern
    .split('**')
    .map((part) => part.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*'))
    .join('.*');
  return new RegExp(`^${source}$`).test(branch);
}

/**
 * Plans branches people review: pushes to branches matching `previewBranches`, and pull requests into
 * the environment's branch, each as what merging it would change on the live host. The plan is posted
 * as the status `<context>/plan` on the branch head and as one comment per open pull request. Runs
 * one plan at a time beside the reconcile loop (it only reads live state); a burst of pushes to one
 * branch plans its newest head once.
 */
export class PreviewPlanner {
  readonly #deps: PreviewDeps;
  readonly #queue = new Map<string, PreviewRequest & { numbers: Set<number> }>();
  #worker: Promise<void> | undefined;
  #stopped = false;

  constructor(deps: PreviewDeps) {
    this.#deps = deps;
  }

  /** Decides at once (the webhook's answer) and plans later. */
  request(e: PreviewRequest): { accepted: boolean; reason: string } {
    const settings = this.#deps.settings();
    if (!settings) return { accepted: false, reason: `environment ${this.#deps.env} has not read its config yet; push again once it has` };
    if (e.branch === settings.branch) return { accepted: false, reason: `${e.branch} is the environment's own branch: it is applied, not previewed` };
    if (e.kind === 'pull-request' && e.base !== undefined && e.base !== settings.branch) {
      return { accepted: false, reason: `pull request #${e.number} targets ${e.base}; environment ${this.#deps.env} follows ${settings.branch}` };
    }
    if (e.kind === 'push' && !settings.previewBranches.some((p) => branchMatches(p, e.branch))) {
      return { accepted: false, reason: `push to ${e.branch}, which matches no previewBranches of environment ${this.#deps.env}` };
    }
    const queued = this.#queue.get(e.branch);
    const numbers = new Set(queued?.numbers);
    if (e.number !== undefined) numbers.add(e.number);
    this.#queue.set(e.branch, { ...e, numbers });
    this.#worker ??= this.#drain();
    return { accepted: true, reason: `planning ${e.branch} against environment ${this.#deps.env}; the plan is posted as ${this.#deps.context}/plan` };
  }

  /** Resolves once every requested plan was posted (or failed). */
  async idle(): Promise<void> {
    while (this.#worker) await this.#worker;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.clear();
    await this.idle();
  }

  async #drain(): Promise<void> {
    try {
      while (!this.#stopped && this.#queue.size) {
        const [branch, request] = this.#queue.entries().next().value!;
        this.#queue.delete(branch);
        await this.#plan(request).catch((err: unknown) => this.#deps.log.warn({ env: this.#deps.env, branch, err: (err as Error).message }, 'preview plan failed'));
      }
    } finally {
      this.#worker = undefined;
    }
  }

  async #plan(request: PreviewRequest & { numbers: Set<number> }): Promise<void> {
    const d = this.#deps;
    const settings = d.settings();
    if (!settings) return;
    const revision = await d.preview(settings.branch, request.branch);
    const sha = revision.ref.sha ?? request.sha;
    if (!sha) return;
    // A pull request from a fork, or a branch that moved since: what was read is not what the forge asked about.
    if (request.sha && request.sha !== sha) {
      d.log.info({ env: d.env, branch: request.branch, asked: request.sha, found: sha }, 'preview plan skipped: the branch head is not the commit the webhook names (a fork, or a newer push follows)');
      return;
    }
    const planned = await planLive(revision, d.env, { secrets: d.secrets, runtime: d.runtime, proxy: d.proxy, ...(d.prune !== undefined && { prune: d.prune }) });
    const base = { env: d.env, context: d.context, branch: request.branch, sha, into: settings.branch, ...(d.externalUrl && { externalUrl: d.externalUrl }) };
    const toPost = planned.ok ? { ...base, plan: planned.plan } : { ...base, problems: planned.problems };
    // A push to a branch with pull requests comments on each; a pull request's own event comments on it.
    const numbers = request.numbers.size ? [...request.numbers] : undefined;
    const posted = await postPlan(d.forge, toPost, { ...(numbers && { numbers }), setStatus: (s) => d.statuses.post(s) });
    d.log.info({ env: d.env, branch: request.branch, sha, status: posted.status.description, comments: posted.comments.map((c) => c.number) }, 'preview plan posted');
  }
}
