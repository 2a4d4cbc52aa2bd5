import type { Plan } from '../plan/types.js';
import { formatProblem, type Problem } from '../render/problems.js';
import { planComment, planDescription, planMarker } from './plan-comment.js';
import { partHeader } from './comments.js';
import { statusContexts, statusRequest } from './statuses.js';
import type { CommentSync, Forge, StatusRequest } from './types.js';

/** A plan of a branch for one environment, or why there is none (the branch does not render). */
export interface PlanToPost {
  env: string;
  /** The base status context (`berth/<env>`); the plan goes on `<context>/plan`. */
  context: string;
  branch: string;
  sha: string;
  /** The environment's branch, when the plan is of merging `branch` into it. */
  into?: string;
  plan?: Plan;
  problems?: Problem[];
  externalUrl?: string;
}

/** What was posted: the status, and per pull request what became of berth's comment. */
export interface PostedPlan {
  status: StatusRequest;
  comments: { number: number; sync: CommentSync }[];
}

/** The `<context>/plan` status for a plan (`success`: a plan was made) or for a branch that does not render (`failure`). */
export function planStatus(p: PlanToPost): StatusRequest {
  const context = statusContexts(p.context).plan;
  const link = { externalUrl: p.externalUrl, path: '/api/v1/plan' };
  if (p.plan) return statusRequest(p.sha, context, 'success', planDescription(p.plan), link);
  const first = p.problems?.[0];
  return statusRequest(p.sha, context, 'failure', `not valid: ${p.problems?.length ?? 0} problem(s)${first ? `; first: ${formatProblem(first)}` : ''}`, link);
}

/** The comment for a branch that does not render: every problem, as `berth validate` prints them, within `budget` characters. */
function problemsComment(p: PlanToPost, budget: number): string[] {
  const problems = p.problems ?? [];
  const head = [`### berth plan for \`${p.env}\`: not valid`, '', `\`${p.branch}\` (${p.sha.slice(0, 12)}) has ${problems.length} problem(s); nothing can be planned until they are fixed:`, '', '```'];
  const lines: string[] = [];
  let used = head.join('\n').length + 100;
  for (const x of problems) {
    const line = formatProblem(x).replace(/```/g, "'''");
    if (used + line.length + 1 > budget) {
      lines.push(`… ${problems.length - lines.length} more (berth validate lists them all)`);
      break;
    }
    lines.push(line);
    used += line.length + 1;
  }
  return [[...head, ...lines, '```', ''].join('\n')];
}

/**
 * Posts a plan where people review the branch: the status `<context>/plan` on its head, and one
 * comment per open pull request of it (updated in place on every push, never repeated). `setStatus`
 * is the caller's: the CLI sets it directly, the controller through its retrying reporter.
 */
export async function postPlan(forge: Forge, p: PlanToPost, options: { numbers?: number[]; setStatus?: (s: StatusRequest) => Promise<void> | void } = {}): Promise<PostedPlan> {
  const status = planStatus(p);
  await (options.setStatus ?? ((s: StatusRequest) => forge.setStatus(s)))(status);
  // Only pull requests that would merge into the planned branch: the plan is of that merge.
  const numbers = options.numbers ?? (await forge.pullRequestsFor(p.branch)).filter((pr) => !p.into || pr.baseBranch === p.into).map((pr) => pr.number);
  if (numbers.length === 0) return { status, comments: [] };
  const marker = planMarker(p.env);
  // Room for the hidden line the forge client puts before each part (`<!-- marker part N -->`).
  const budget = forge.maxCommentChars - partHeader(marker, 999).length;
  const parts = p.plan ? planComment({ env: p.env, plan: p.plan, branch: p.branch, sha: p.sha, ...(p.into && { into: p.into }) }, budget) : problemsComment(p, budget);
  const comments: PostedPlan['comments'] = [];
  for (const number of new Set(numbers)) comments.push({ number, sync: await forge.upsertComment(number, marker, parts) });
  return { status, comments };
}
