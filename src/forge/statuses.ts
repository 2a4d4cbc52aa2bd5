import type { EventBus } from '../events/bus.js';
import type { BerthEvent } from '../events/types.js';
import type { CommitState, CommitStatusReporter } from './types.js';

/** Limits the forges put on a status description. */
const MAX_DESCRIPTION = 140;

function shaOf(revision: string): string | undefined {
  return /sha1:([0-9a-f]{40})/.exec(revision)?.[1];
}

/** What a finished reconcile says on its commit: `applied 3 apps, 1 rolled back: api health check failed`. */
export function describeReconcile(e: BerthEvent<'reconcile.finished'>): { state: CommitState; description: string } {
  if (e.reason === 'RenderFailed') return { state: 'failure', description: `not applied: ${(e.error ?? '').replace(/^.*?first: /, '')}` };
  if (e.apps.length === 0) return { state: e.result === 'Succeeded' ? 'success' : 'failure', description: e.result === 'Succeeded' ? 'in sync: nothing to change' : (e.error ?? e.result) };
  const count = (r: string) => e.apps.filter((a) => a.result === r).length;
  const parts = [`applied ${count('Succeeded')} app${count('Succeeded') === 1 ? '' : 's'}`];
  if (count('RolledBack')) parts.push(`${count('RolledBack')} rolled back`);
  if (count('Failed')) parts.push(`${count('Failed')} failed`);
  if (count('Skipped')) parts.push(`${count('Skipped')} skipped`);
  const bad = e.apps.find((a) => a.result === 'RolledBack' || a.result === 'Failed');
  const cause = bad ? `: ${bad.app} ${bad.result === 'RolledBack' ? 'health check failed' : (bad.error ?? 'failed')}` : '';
  return { state: e.result === 'Succeeded' ? 'success' : 'failure', description: parts.join(', ') + cause };
}

/**
 * Commit statuses follow the event bus: pending when a reconcile starts applying, then success or
 * failure, and drift on `<context>/drift`. Each reporter has its own queue on the bus, so a slow or
 * failing forge never slows a reconcile; its errors go to `onError`.
 */
export function reportCommitStatuses(bus: EventBus, reporters: CommitStatusReporter[], options: { context: string; onError: (reporter: string, err: unknown) => void }): () => void {
  const offs = reporters.map((reporter) => {
    const send = async (revision: string, context: string, state: CommitState, description: string): Promise<void> => {
      const sha = shaOf(revision);
      if (!sha) return;
      try {
        await reporter.report(sha, context, state, description.slice(0, MAX_DESCRIPTION));
      } catch (err) {
        options.onError(reporter.name, err);
      }
    };
    return bus.on(
      ['reconcile.started', 'reconcile.finished', 'drift.detected'],
      async (e) => {
        if (e.type === 'reconcile.started') await send(e.revision, options.context, 'pending', `applying ${e.apps} app${e.apps === 1 ? '' : 's'}`);
        else if (e.type === 'reconcile.finished' && !e.noop) {
          const { state, description } = describeReconcile(e);
          await send(e.revision, options.context, state, description);
        } else if (e.type === 'drift.detected' && !e.selfHeal) await send(e.revision, `${options.context}/drift`, 'failure', e.description);
      },
      { name: `commit-status:${reporter.name}` },
    );
  });
  return () => offs.forEach((off) => off());
}
