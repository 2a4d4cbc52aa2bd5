import { promote } from './blue-green.js';
import type { Strategy } from './types.js';

/**
 * Each step runs enough new replicas for its weight, splits traffic by upstream weights, and watches
 * the new replicas for the step's pause; then the new set is promoted as in blue-green.
 */
export const canary: Strategy = {
  type: 'canary',
  async replace(ctx) {
    for (const step of ctx.target.strategy.steps ?? []) {
      const target = Math.min(ctx.want, Math.max(1, Math.ceil((ctx.want * step.weight) / 100)));
      await ctx.start(target - ctx.ready.length - ctx.fresh.length);
      const canaries = [...ctx.ready, ...ctx.fresh];
      // Weights are per server: each side's total is proportional to the step's split.
      const weights = new Map<string, number>();
      for (const m of canaries) weights.set(m.id, Math.max(1, step.weight * ctx.old.length));
      for (const m of ctx.old) weights.set(m.id, Math.max(1, (100 - step.weight) * canaries.length));
      await ctx.switchTo([...ctx.old, ...canaries], weights);
      ctx.progress('wait', `canary at ${step.weight}%: watching for ${step.pauseSeconds}s`);
      await ctx.watch(step.pauseSeconds);
    }
    await promote(ctx);
  },
};
