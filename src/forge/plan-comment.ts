import { formatPlan } from '../plan/format.js';
import type { Plan } from '../plan/types.js';

/** The hidden marker that finds berth's plan comment for an environment on a pull request. */
export function planMarker(env: string): string {
  return `berth-plan:${env}`;
}

/** A plan in a few words, for the `<context>/plan` status: `2 to replace, 1 to create, 0 to remove`. */
export function planDescription(plan: Plan): string {
  if (plan.empty) return 'no changes: live state already matches';
  const apps = (...kinds: string[]) => plan.apps.filter((a) => !a.held && a.actions.some((x) => kinds.includes(x.kind))).length;
  const create = apps('create');
  const replace = apps('replace');
  const remove = plan.apps.filter((a) => a.op === 'prune' && a.actions.length).length;
  const other = plan.apps.filter((a) => !a.held && a.op === 'converge' && a.actions.length && !a.actions.some((x) => x.kind === 'create' || x.kind === 'replace')).length;
  const held = plan.apps.filter((a) => a.held && a.actions.length).length;
  return [`${replace} to replace`, `${create} to create`, `${remove} to remove`, ...(other ? [`${other} to update`] : []), ...(held ? [`${held} held`] : [])].join(', ');
}

export interface PlanCommentInput {
  env: string;
  plan: Plan;
  /** The branch planned and its head. */
  branch: string;
  sha: string;
  /** The environment's branch it would be merged into, when the plan is of that merge. */
  into?: string;
}

/** Lines a plan shows unfolded; a longer one goes inside <details>. */
const FOLD_AFTER = 25;

/**
 * The pull-request comment for a plan, as parts each at most `budget` characters long (the caller
 * leaves room for the marker line the forge client adds): a heading with the summary, then the plan as `berth plan` prints it
 * (no colours; secrets never appear in a plan), folded when long, split across comments when over the
 * forge's limit, each part's code block closed and reopened.
 */
export function planComment(input: PlanCommentInput, budget: number): string[] {
  const { env, plan } = input;
  const head = [
    `### berth plan for \`${env}\`: ${planDescription(plan)}`,
    '',
    input.into
      ? `Merging \`${input.branch}\` (${input.sha.slice(0, 12)}) into \`${input.into}\` would change the live host as follows.`
      : `Applying \`${input.branch}\` (${input.sha.slice(0, 12)}) would change the live host as follows.`,
    `_Planned against live state at ${plan.createdAt}; updated on every push._`,
    '',
  ].join('\n');
  const lines = formatPlan(plan).split('\n');
  const fold = lines.length > FOLD_AFTER;
  const open = fold ? `<details><summary>Plan (${lines.length} lines)</summary>\n\n\`\`\`diff\n` : '```diff\n';
  const close = fold ? '```\n\n</details>\n' : '```\n';
  const parts: string[] = [];
  let body = head + open;
  let used = 0;
  for (const raw of lines) {
    // A single line longer than a comment is cut: the whole plan is still in `berth plan`.
    const line = raw.length > budget / 2 ? `${raw.slice(0, Math.floor(budget / 2))} …` : raw;
    if (body.length + line.length + 1 + close.length > budget && used > 0) {
      parts.push(body + close);
      body = `_(continued, part ${parts.length + 1})_\n\n` + open;
      used = 0;
    }
    body += line.replace(/```/g, "'''") + '\n';
    used++;
  }
  parts.push(body + close);
  return parts;
}
