import type { Strategy } from './types.js';

/** Never more than replicas + maxSurge running, never fewer than replicas − maxUnavailable serving. */
export const rolling: Strategy = {
  type: 'rolling',
  async replace(ctx) {
    const { maxSurge, maxUnavailable } = ctx.target.strategy;
    while (ctx.ready.length + ctx.fresh.length < ctx.want || ctx.old.length > 0) {
      const have = ctx.ready.length + ctx.fresh.length;
      if (have >= ctx.want) {
        const out = ctx.old;
        ctx.old = [];
        await ctx.takeOut(out, [...ctx.ready, ...ctx.fresh]);
        break;
      }
      const room = ctx.want + maxSurge - (have + ctx.old.length);
      if (room <= 0) {
        const out = ctx.old.splice(0, Math.min(ctx.old.length, Math.max(1, maxUnavailable)));
        await ctx.takeOut(out, [...ctx.ready, ...ctx.fresh, ...ctx.old]);
        continue;
      }
      await ctx.start(Math.min(ctx.want - have, room));
      // One reload swaps the healthy new replicas in and as many old ones out.
      const excess = Math.max(0, ctx.ready.length + ctx.fresh.length + ctx.old.length - ctx.want);
      const out = ctx.old.splice(0, Math.min(excess, ctx.old.length));
      await ctx.switchTo([...ctx.ready, ...ctx.fresh, ...ctx.old]);
      await ctx.retire(out);
    }
  },
};
