import type { StrategyType } from '../../render/types.js';
import type { RolloutContext } from '../rollout.js';

/**
 * A rollout strategy: replaces an app's `old` replicas with the desired version, in its own order,
 * using only the rollout context's steps. It runs only when there are old replicas to replace; a
 * failed gate inside `ctx.start` or `ctx.watch` has already rolled back and throws.
 */
export interface Strategy {
  readonly type: StrategyType;
  replace(ctx: RolloutContext): Promise<void>;
}
