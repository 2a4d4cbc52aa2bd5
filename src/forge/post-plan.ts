import type { Plan } from '../plan/types.js';
import { formatProblem, type Problem } from '../render/problems.js';
import { planComment, planDescription, planMarker } from './plan-comment.js';
import { fitDescription, statusContexts } from './statuses.js';
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
  const link = p.externalUrl ? { targetUrl: `${p.externalUrl.replace(/\/+$/, '')}/api/v1/plan` } : {};
  if (!p.plan) {
    const first = p.problems?.[0];
    return { sha: p.sha, context, state: 'failure', description: fitDescription(`not valid: ${p.problems?.length ?? 0} problem(s)${first ? `; first: ${formatProblem(first)}` : ''}`), ...link };
  }
  return { sha: p.sha, context, state: 'success', description: fitDescription(planDescription(p.plan)), ...link };
}

/** The comment for a branch that does not render: every problem, as `berth validate` prints them. */
function problemsComment(p: PlanToPost, maxChars: number): string[] {
  const problems = p.problems ?? [];
  const shown = problems.slice(0, 200).map((x) => formatProblem(x).replace(/```/g, "'''"));
  const body = [
    `### berth plan for \`${p.env}\`: not valid`,
    '',
    `\`${p.branch}\` (${p.sha.slice(0, 12)}) has ${problems.length} problem(s); nothing can be planned until they are fixed:`,
    '',
    '```',
    ...shown,
    ...(problems.length > shown.length ? [`… ${problems.length - shown.length} more (berth validate lists them all)`] : []),
    '```',
    '',
  ].join('\n');
  return [body.length > maxChars - 200 ? `${body.slice(0, maxChars - 220)}\n\`\`\`\n(cut: berth validate lists them all)\n` : body];
}

/**
 * Posts a plan where people review the branch: the status `<context>/plan` on its head, and one
 * comment per open pull request of it (updated in place on every push, never repeated). `setStatus`
 * is the caller's: the CLI sets it directly, the controller through its retrying reporter.
 */
export async function postPlan(forge: Forge, p: PlanToPost, options: { numbers?: number[]; setStatus?: (s: StatusRequest) => Promise<void> | void } = {}): Promise<PostedPlan> {
  const status = planStatus(p);
  await (options.setStatus ?? ((s: StatusRequest) => forge.setStatus(s)))(status);
  const numbers = options.numbers ?? (await forge.pullRequestsFor(p.branch)).map((pr) => pr.number);
  const parts = p.plan ? planComment({ env: p.env, plan: p.plan, branch: p.branch, sha: p.sha, ...(p.into && { into: p.into }) }, forge.maxCommentChars) : problemsComment(p, forge.maxCommentChars);
  const comments: PostedPlan['comments'] = [];
  for (const number of [...new Set(numbers)]) comments.push({ number, sync: await forge.upsertComment(number, planMarker(p.env), parts) });
  return { status, comments };
}
