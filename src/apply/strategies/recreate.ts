import type { Strategy } from './types.js';

/** Old replicas leave first, then the new ones start: never two versions at once (pinned host ports need it). */
export const recreate: Strategy = {
  type: 'recreate',
  async replace(ctx) {
    const out = ctx.old;
    ctx.old = [];
    await ctx.takeOut(out, [...ctx.ready]);
    await ctx.start(Math.max(0, ctx.want - ctx.ready.length));
    await ctx.switchTo([...ctx.ready, ...ctx.fresh]);
  },
};
