import type { RolloutContext } from '../rollout.js';
import type { Strategy } from './types.js';

/** Starts whatever of the new set is still missing, switches all traffic in one reload, retires the old set. */
export async function promote(ctx: RolloutContext): Promise<void> {
  await ctx.start(ctx.want - ctx.ready.length - ctx.fresh.length);
  await ctx.switchTo([...ctx.ready, ...ctx.fresh]);
  const out = ctx.old;
  ctx.old = [];
  await ctx.retire(out);
}

/** The whole new set healthy before one switch. */
export const blueGreen: Strategy = {
  type: 'blue-green',
  replace: promote,
};
