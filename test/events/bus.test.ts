import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus } from '../../src/events/bus.js';
import type { BerthEvent } from '../../src/events/types.js';

/** A drift.healed payload numbered by its app name, small enough to compare in a list. */
const healed = (n: number) => ({ env: 'production', revision: 'main@worktree', apps: [`app${n}`], description: `healed: app${n}` });
const numberOf = (e: BerthEvent<'drift.healed'>): number => Number(e.apps[0]!.slice(3));

/** A promise with its resolve function outside. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('EventBus', () => {
  it('emit returns before any subscriber runs and never waits for a slow one', async () => {
    const bus = new EventBus();
    const slow = gate();
    const fast: number[] = [];
    let slowStarted = 0;
    bus.on('drift.healed', async () => {
      slowStarted++;
      await slow.promise;
    });
    bus.on('drift.healed', (e) => void fast.push(numberOf(e)));

    const event = bus.emit('drift.healed', healed(1));
    assert.equal(slowStarted, 0, 'no subscriber runs inside emit');
    assert.deepEqual([event.type, event.seq, event.apps], ['drift.healed', 1, ['app1']]);
    bus.emit('drift.healed', healed(2));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(fast, [1, 2], 'the fast subscriber is not held up by the slow one');
    assert.equal(slowStarted, 1, 'the slow subscriber is still on its first event');
    slow.open();
    await bus.flush();
    assert.equal(slowStarted, 2);
  });

  it('keeps each subscriber’s order, whatever its handlers take', async () => {
    const bus = new EventBus();
    const seen: number[] = [];
    bus.on('drift.healed', async (e) => {
      const n = numberOf(e);
      // Early events take longest: a subscriber that ran handlers concurrently would reorder them.
      await new Promise((r) => setTimeout(r, (10 - n) * 2));
      seen.push(n);
    });
    for (let n = 0; n < 10; n++) bus.emit('drift.healed', healed(n));
    await bus.flush();
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('delivers only the subscribed types, and * gets everything', async () => {
    const bus = new EventBus();
    const typed: string[] = [];
    const all: string[] = [];
    bus.on(['drift.healed', 'drift.detected'], (e) => void typed.push(e.type));
    bus.on('*', (e) => void all.push(e.type));
    bus.emit('drift.healed', healed(1));
    bus.emit('reconcile.error', { env: 'production', trigger: 'poll', reason: 'SourceUnavailable', message: 'down' });
    bus.emit('drift.detected', { env: 'production', revision: 'r', apps: ['web'], selfHeal: false, description: 'd' });
    await bus.flush();
    assert.deepEqual(typed, ['drift.healed', 'drift.detected']);
    assert.deepEqual(all, ['drift.healed', 'reconcile.error', 'drift.detected']);
  });

  it('a throwing subscriber is reported through onError and keeps receiving; the others are unaffected', async () => {
    const errors: { name: string; message: string; seq?: number }[] = [];
    const bus = new EventBus({ onError: (name, err, event) => void errors.push({ name, message: (err as Error).message, ...(event && { seq: event.seq }) }) });
    const received: number[] = [];
    const others: number[] = [];
    bus.on(
      'drift.healed',
      async (e) => {
        received.push(numberOf(e));
        if (numberOf(e) === 1) throw new Error('boom');
      },
      { name: 'flaky' },
    );
    bus.on('drift.healed', (e) => {
      others.push(numberOf(e));
      if (numberOf(e) === 2) throw new Error('sync boom');
    }, { name: 'sync' });
    for (let n = 1; n <= 3; n++) bus.emit('drift.healed', healed(n));
    await bus.flush();
    assert.deepEqual(received, [1, 2, 3]);
    assert.deepEqual(others, [1, 2, 3]);
    assert.deepEqual(errors, [
      { name: 'flaky', message: 'boom', seq: 1 },
      { name: 'sync', message: 'sync boom', seq: 2 },
    ]);
  });

  it('flush waits for every subscriber, including events emitted while handling', async () => {
    const bus = new EventBus();
    const done: string[] = [];
    bus.on('drift.detected', async (e) => {
      await new Promise((r) => setTimeout(r, 20));
      done.push('slow');
      // A subscriber that emits: flush must wait for what that starts too.
      bus.emit('drift.healed', { env: e.env, revision: e.revision, apps: e.apps, description: e.description });
    });
    bus.on('drift.healed', async () => {
      await new Promise((r) => setTimeout(r, 20));
      done.push('chained');
    });
    bus.emit('drift.detected', { env: 'production', revision: 'r', apps: ['web'], selfHeal: true, description: 'd' });
    await bus.flush();
    assert.deepEqual(done, ['slow', 'chained']);
    await bus.flush();
  });

  it('a subscriber with a full queue loses its oldest events, reported once; the others lose nothing', async () => {
    const errors: string[] = [];
    const bus = new EventBus({ onError: (name, err) => void errors.push(`${name}: ${(err as Error).message}`) });
    const small: number[] = [];
    const big: number[] = [];
    bus.on('drift.healed', (e) => void small.push(numberOf(e)), { name: 'small', maxQueue: 2 });
    bus.on('drift.healed', (e) => void big.push(numberOf(e)), { name: 'big' });
    // Emitted in one go: no subscriber runs before the last emit returns.
    for (let n = 1; n <= 5; n++) bus.emit('drift.healed', healed(n));
    await bus.flush();
    assert.deepEqual(small, [4, 5], 'the newest maxQueue events are kept');
    assert.deepEqual(big, [1, 2, 3, 4, 5]);
    assert.equal(errors.length, 1, 'the drop is reported once, not per event');
    assert.match(errors[0]!, /^small: .*too slow.*queue of 2/);
  });

  it('an unsubscribed handler receives nothing more', async () => {
    const bus = new EventBus();
    const seen: number[] = [];
    const off = bus.on('drift.healed', (e) => void seen.push(numberOf(e)));
    bus.emit('drift.healed', healed(1));
    await bus.flush();
    off();
    bus.emit('drift.healed', healed(2));
    await bus.flush();
    assert.deepEqual(seen, [1]);
  });
  it('latestOnly replaces a waiting event with the newest, without reporting a drop', async () => {
    const errors: string[] = [];
    const bus = new EventBus({ onError: (name, err) => errors.push(`${name}: ${(err as Error).message}`) });
    const seen: string[] = [];
    bus.on('drift.healed', (e) => void seen.push(e.revision), { name: 'snapshot', latestOnly: true });
    for (const r of ['a', 'b', 'c']) bus.emit('drift.healed', { env: 'e', revision: r, apps: [], description: 'healed' });
    await bus.flush();
    assert.deepEqual(seen, ['c']);
    assert.deepEqual(errors, []);
  });
});
