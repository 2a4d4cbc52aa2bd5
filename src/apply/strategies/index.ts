import type { StrategyType } from '../../render/types.js';
import { blueGreen } from './blue-green.js';
import { canary } from './canary.js';
import { recreate } from './recreate.js';
import { rolling } from './rolling.js';
import type { Strategy } from './types.js';

export type { Strategy };

/** Every strategy by its `strategy.type`: a new one is a file in this folder and one line here. */
export const STRATEGIES: Record<StrategyType, Strategy> = {
  rolling,
  recreate,
  'blue-green': blueGreen,
  canary,
};
