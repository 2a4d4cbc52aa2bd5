import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { follow, type FollowOptions } from '../../src/controller/streams.js';
import { Feed } from '../support/memory.js';
import { until } from './harness.js';

// follow(): how the controller keeps its event streams (Docker /events, the proxy's file) open.

interface Run {
  events: number[];
  resumed: number;
  sleeps: number[];
  warnings: string[];
  done: Promise<void>;
  abort(): void;
}

function start(open: FollowOptions<number>['open'], over: Partial<FollowOptions<number>> = {}): Run {
  const controller = new AbortController();
  const run = { events: [] as number[], resumed: 0, sleeps: [] as number[], warnings: [] as string[], abort: () => controller.abort() } as Run;
  run.done = follow<number>({
    name: 'test',
    open,
    onEvent: (e) => void run.events.push(e),
    onResumed: () => void run.resumed++,
    signal: controller.signal,
    log: { warn: (_o: unknown, msg?: string) => void run.warnings.push(String(msg)), info: () => {} },
    sleep: async (ms) => void run.sleeps.push(ms),
    settleMs: 30,
    ...over,
  } as FollowOptions<number>);
  return run;
}

describe('follow: event streams with reconnects', () => {
  it('delivers events; a lost stream is reopened and, once back, asks for one re-check', async () => {
    const feed = new Feed<number>();
    const run = start((s) => feed.stream(s));
    await until(() => feed.open === 1, 1000, 'open');
    feed.push(1);
    await until(() => run.events.length === 1, 1000, 'first event');
    assert.equal(run.resumed, 0, 'the first connect is no reconnect');

    feed.break();
    feed.push(2); // lost: nothing listens
    await until(() => feed.opened === 2 && feed.open === 1, 1000, 'reopened');
    await until(() => run.resumed === 1, 1000, 're-check after the stream stayed open');
    feed.push(3);
    await until(() => run.events.length === 2, 1000, 'events after the reconnect');
    assert.deepEqual(run.events, [1, 3]);
    assert.equal(run.resumed, 1, 'one re-check per loss');
    assert.deepEqual(run.sleeps, [1000]);
    assert.deepEqual(run.warnings, ['event stream lost; reconnecting']);

    run.abort();
    await run.done;
  });

  it('backs off while the stream cannot be opened (doubling, capped), re-checks once when it is back, and resets the delay', async () => {
    let failing = 5;
    const feed = new Feed<number>();
    const run = start(
      (s) => {
        if (failing-- > 0) throw new Error('connection refused');
        return feed.stream(s);
      },
      { backoff: { baseMs: 100, maxMs: 800 } },
    );
    await until(() => run.resumed === 1, 2000, 'back');
    assert.deepEqual(run.sleeps, [100, 200, 400, 800, 800]);
    feed.break();
    await until(() => run.resumed === 2, 2000, 'back again');
    assert.deepEqual(run.sleeps.slice(5), [100], 'a stream that was back starts the backoff again');
    run.abort();
    await run.done;
  });

  it('a stream that fails again before it settles is not back: no re-check yet', async () => {
    const feed = new Feed<number>();
    const run = start((s) => feed.stream(s), { settleMs: 200 });
    await until(() => feed.open === 1, 1000, 'open');
    feed.break();
    await until(() => feed.opened === 2 && feed.open === 1, 1000, 'reopened');
    feed.break();
    await until(() => feed.opened === 3 && feed.open === 1, 1000, 'reopened again');
    assert.equal(run.resumed, 0);
    await until(() => run.resumed === 1, 1000, 'back');
    run.abort();
    await run.done;
    assert.equal(run.resumed, 1);
  });

  it('ends when aborted, without a warning', async () => {
    const feed = new Feed<number>();
    const run = start((s) => feed.stream(s));
    await until(() => feed.open === 1, 1000, 'open');
    run.abort();
    await run.done;
    assert.equal(feed.open, 0);
    assert.deepEqual(run.warnings, []);
  });
});
