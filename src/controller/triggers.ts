import path from 'node:path';
import { watch } from 'chokidar';
import cron from 'node-cron';
import type { Controller } from './controller.js';

export type Stop = () => Promise<void> | void;

/** Polls every `intervalMs` ± 10 % (jitter keeps many controllers from hitting the Git server together). */
export function startPolling(controller: Controller, intervalMs: number): Stop {
  let timer: NodeJS.Timeout;
  const schedule = (): void => {
    const jittered = intervalMs * (0.9 + Math.random() * 0.2);
    timer = setTimeout(() => {
      controller.trigger('poll');
      schedule();
    }, jittered);
    timer.unref();
  };
  schedule();
  return () => clearTimeout(timer);
}

/** Watches a local repository's refs: a commit or a push into it triggers within a second. */
export async function watchRefs(controller: Controller, gitdir: string): Promise<Stop> {
  const watcher = watch([path.join(gitdir, 'refs', 'heads'), path.join(gitdir, 'packed-refs')], { ignoreInitial: true, depth: 5 });
  let debounce: NodeJS.Timeout | undefined;
  const fire = (p: string): void => {
    if (p.endsWith('.lock')) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => controller.trigger('watch'), 50);
  };
  watcher.on('add', fire).on('change', fire);
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return async () => {
    clearTimeout(debounce);
    await watcher.close();
  };
}

/** Full resync on a cron schedule (timezone-aware). A run during a reconcile folds into it. */
/** Throws with a hint when `expression` is not a cron expression node-cron understands. */
export function validateCron(expression: string): void {
  if (!cron.validate(expression)) throw new Error(`invalid cron expression ${JSON.stringify(expression)} (5 or 6 fields, e.g. "0 3 * * *")`);
}

export function scheduleResync(controller: Controller, expression: string, timezone?: string): Stop {
  validateCron(expression);
  const task = cron.schedule(expression, () => void controller.trigger('cron'), { ...(timezone && { timezone }), noOverlap: true });
  return () => void task.stop();
}
