import type { Plan } from './types.js';

type Paint = (style: 'red' | 'green' | 'yellow' | 'cyan' | 'bold' | 'dim', text: string) => string;

const SYMBOL: Record<string, [string, 'green' | 'yellow' | 'red' | 'cyan']> = {
  create: ['+', 'green'],
  'scale-up': ['↑', 'green'],
  replace: ['~', 'yellow'],
  heal: ['♻', 'yellow'],
  'scale-down': ['↓', 'yellow'],
  remove: ['-', 'red'],
  'route-update': ['⇄', 'cyan'],
};

/** Human-readable plan: one line per action, field diffs indented, summary last. Secrets never appear. */
export function formatPlan(plan: Plan, paint: Paint = (_, t) => t): string {
  const lines = [paint('bold', `Plan for ${plan.env} at ${plan.revision}`)];
  if (plan.empty) return [...lines, paint('green', 'No changes: live state matches the repo (Synced).')].join('\n');
  for (const app of plan.apps) {
    if (app.held && app.actions.length) lines.push(paint('red', `✋ ${app.app.padEnd(16)} held                   ${app.held.message} [${app.held.reason}]`));
    for (const a of app.actions) {
      const [sym, color] = SYMBOL[a.kind] ?? ['?', 'yellow'];
      const what = a.kind === 'replace' ? `replace ${a.count} (${a.strategy})` : a.count ? `${a.kind} ${a.count}` : a.kind;
      lines.push(`${paint(color, `${sym} ${app.app.padEnd(16)}`)} ${what.padEnd(22)} ${a.reason}`);
      for (const d of a.diff.slice(0, 20)) lines.push(paint('dim', `      ${d}`));
      if (a.diff.length > 20) lines.push(paint('dim', `      … ${a.diff.length - 20} more`));
    }
  }
  // The proxy's file edited by hand: no route changes, but apply writes the file again.
  if (plan.proxy.rewrite) lines.push(`${paint('cyan', `⇄ ${'(proxy)'.padEnd(16)}`)} ${'rewrite'.padEnd(22)} ${plan.proxy.rewrite}`);
  // A retired environment: its proxy config is removed last, once every app of it is gone.
  if (plan.proxy.remove) lines.push(`${paint('red', `- ${'(proxy)'.padEnd(16)}`)} ${'remove'.padEnd(22)} environment retired: its proxy config is removed`);
  const summary = [
    ...Object.entries(plan.counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`),
    ...(plan.proxy.rewrite ? ['1 proxy rewrite'] : []),
    ...(plan.proxy.remove ? ['1 proxy remove'] : []),
  ].join(', ');
  lines.push('', paint('bold', `${summary}`));
  return lines.join('\n');
}
