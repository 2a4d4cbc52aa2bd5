import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { reportOutcome, type ApplyOptions } from '../../src/cli/commands/apply.js';
import { EventBus } from '../../src/events/bus.js';
import type { BerthEvent } from '../../src/events/types.js';
import { StatusReporter } from '../../src/forge/statuses.js';
import type { CommitState } from '../../src/forge/types.js';
import { reconcile, type ReconcileDeps, type ReconcileOutcome } from '../../src/reconcile/reconcile.js';
import { DocCache } from '../../src/render/doc-cache.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { HistoryStore } from '../../src/report/history.js';
import { wireReporting } from '../../src/report/wire.js';
import type { Revision } from '../../src/source/types.js';
import { StatusBoard, initialStatus } from '../../src/status/board.js';
import { app, ENV, repo, triggerCount, until, versions, web, harness } from '../controller/harness.js';
import { fakeClock } from '../support/fakes.js';
import { MemoryProxy, MemoryRuntime } from '../support/memory.js';
import { memoryRevision } from '../support/repo.js';

// Item 4 of #11: an error no stage expects (a driver's TypeError, the planner throwing, the state
// dir unwritable) ends as a Failed reconcile like any other: history, commit status, status board,
// events, and the controller's retry with backoff. Before, reconcile() threw and the controller only
// logged "reconcile crashed" (an observe error was taken for an unreachable Docker): nothing recorded.

const SHA = 'c0ffee'.padEnd(40, '0');
const REVISION = `main@sha1:${SHA}`;

interface Setup {
  deps: ReconcileDeps;
  runtime: MemoryRuntime;
  history: HistoryStore;
  board: StatusBoard;
  events: BerthEvent[];
  statuses: { sha: string; state: CommitState; description: string }[];
  run(): Promise<ReconcileOutcome>;
  close(): Promise<void>;
}

/** One reconcile's deps with fakes, the real bus, history, status board and reporting, and a commit-status reporter that records. */
async function setup(files: Record<string, string>): Promise<Setup> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-crash-'));
  const runtime = new MemoryRuntime();
  const proxy = new MemoryProxy();
  const clock = fakeClock();
  const bus = new EventBus({ now: clock.now });
  const history = new HistoryStore(dir, ENV);
  const statuses: Setup['statuses'] = [];
  const reporter = new StatusReporter({ name: 'local' as const, setStatus: async ({ sha, state, description }) => void statuses.push({ sha, state, description }) });
  const off = wireReporting(bus, { history, log: pino({ level: 'silent' }), reporters: [reporter], context: `berth/${ENV}` });
  const events: BerthEvent[] = [];
  bus.on('*', (e) => void events.push(e), { name: 'test' });
  const board = new StatusBoard(bus, initialStatus(ENV, new Date(0)));
  const revision: Revision = { ...memoryRevision(files), ref: { branch: 'main', sha: SHA } };
  const deps: ReconcileDeps = {
    env: ENV,
    readRevision: async () => revision,
    secrets: envSecretSource({}),
    runtime,
    proxy,
    clock,
    bus,
    history,
    memory: { held: {} },
    board,
    health: { update: () => {}, checkAll: async () => {}, healthOf: () => ({ status: 'Healthy' }) },
  };
  return {
    deps,
    runtime,
    history,
    board,
    events,
    statuses,
    run: async () => {
      const outcome = await reconcile(deps, { trigger: 'poll' });
      await bus.flush();
      await reporter.flush();
      return outcome;
    },
    close: async () => {
      off();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const FILES = repo({ web: web('v1'), api: app('api', 'v1') });

const cases: { name: string; stage: string; error: RegExp; arrange(s: Setup): void }[] = [
  {
    name: 'the runtime driver throws a TypeError while listing containers',
    stage: 'observe',
    error: /^observe failed: TypeError: list is not a function$/,
    arrange: (s) => {
      s.runtime.list = async () => {
        throw new TypeError('list is not a function');
      };
    },
  },
  {
    name: 'render throws past its own problem checks (the issue\'s own scenario: a YAML crash)',
    stage: 'render',
    error: /^render failed: TypeError: Cannot read properties of undefined \(reading 'anchor'\)$/,
    arrange: (s) => {
      const cache = new DocCache();
      cache.check = () => {
        throw new TypeError("Cannot read properties of undefined (reading 'anchor')");
      };
      s.deps.cache = cache;
    },
  },
  {
    name: 'the planner throws on a container the driver reported without ports',
    stage: 'plan',
    error: /^plan failed: TypeError: .*find/,
    arrange: (s) => {
      const list = s.runtime.list.bind(s.runtime);
      s.runtime.list = async (env) => [...(await list(env)), { ...brokenContainer(), ports: undefined as never }];
    },
  },
  {
    name: "the reconciler's memory cannot be written",
    stage: 'record',
    error: /^record failed: Error: EROFS: read-only file system$/,
    arrange: (s) => {
      s.history.writeMemory = async () => {
        throw new Error('EROFS: read-only file system');
      };
    },
  },
];

/** A running replica of web as Docker would list it (its ports are then taken away). */
function brokenContainer(): Awaited<ReturnType<MemoryRuntime['list']>>[number] {
  return { id: 'stray', name: `${ENV}-web-9-deadbeef`, env: ENV, app: 'web', revision: SHA, specHash: 'other', replica: 9, spec: '{}', image: 'x', state: 'running', status: 'Up', ports: [], created: 1, host: 'local' };
}

describe('a crash of any stage is recorded like any failed reconcile', () => {
  for (const c of cases) {
    it(`${c.stage}: ${c.name}`, async () => {
      const s = await setup(FILES);
      try {
        c.arrange(s);
        const outcome = await s.run();

        assert.equal(outcome.kind, 'crashed');
        assert.equal(outcome.retry, true, 'retried like a failed apply');
        assert.ok(outcome.kind === 'crashed' && outcome.stage === c.stage);

        const records = await s.history.list();
        const last = records[0]!;
        assert.equal(last.result, 'Failed');
        assert.equal(last.reason, 'InternalError');
        assert.equal(last.revision, REVISION, 'the record names the revision that was read');
        assert.match(last.error ?? '', c.error);

        const finished = s.events.filter((e): e is BerthEvent<'reconcile.finished'> => e.type === 'reconcile.finished').at(-1)!;
        assert.deepEqual([finished.result, finished.reason, finished.noop, finished.revision], ['Failed', 'InternalError', false, REVISION]);

        const status = s.board.current;
        assert.equal(status.syncStatus, 'Unknown', 'not Synced on a previous commit');
        assert.match(status.message ?? '', c.error);
        assert.equal(status.lastAttemptedRevision, REVISION);
        assert.deepEqual([status.lastReconcile?.result, status.lastReconcile?.reason], ['Failed', 'InternalError']);

        const reported = s.statuses.at(-1)!;
        // berth failed, not the revision: the forge's `error`, not `failure`.
        assert.deepEqual([reported.sha, reported.state], [SHA, 'error']);
        assert.match(reported.description, new RegExp(`^berth failed: ${c.stage} failed: `));

        // `berth apply` prints it and exits 1, as for any failed reconcile (not 70, "a bug in berth").
        const lines: string[] = [];
        const code = reportOutcome(outcome, ENV, { output: 'text', logLevel: 'warn' } as ApplyOptions, { print: (t) => void lines.push(t), info: (t) => void lines.push(t), color: false });
        assert.equal(code, 1);
        assert.match(lines.join('\n'), new RegExp(`^✖ Failed: ${c.stage} failed: `));
      } finally {
        await s.close();
      }
    });
  }
});

describe('the controller after a crashed reconcile', () => {
  it('records it, shows it on the status board, retries with backoff and recovers', async () => {
    const h = await harness(repo({ web: web('v1') }), { backoff: { baseMs: 10, maxMs: 40 } });
    try {
      await h.sync('startup');
      assert.equal(h.controller.status.syncStatus, 'Synced');
      const list = h.runtime.list.bind(h.runtime);
      h.runtime.list = async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'Labels')");
      };
      h.serve(repo({ web: web('v2') }));
      await h.sync('poll');

      const failed = (await h.records()).at(-1)!;
      assert.deepEqual([failed.trigger, failed.result, failed.reason], ['poll', 'Failed', 'InternalError']);
      assert.match(failed.error ?? '', /^observe failed: TypeError: Cannot read properties of undefined/);
      assert.equal(h.controller.status.syncStatus, 'Unknown');
      assert.match(h.controller.status.message ?? '', /^observe failed: TypeError/);
      assert.equal(h.controller.status.lastReconcile?.result, 'Failed');
      assert.deepEqual(h.ofType('reconcile.error'), [], 'a crash is no unreachable runtime');
      assert.ok(h.logs.some((l) => l.msg === 'reconcile crashed' && l.stage === 'observe'), 'the stack goes to the log');

      await until(async () => (await triggerCount(h.metrics, 'retry')) >= 2, 5000, 'two retries');
      await h.controller.idle();
      const delays = h.logs.filter((l) => l.retryInMs !== undefined).map((l) => l.retryInMs);
      assert.deepEqual(delays.slice(0, 3), [10, 20, 40], 'backoff doubles per failure, capped');

      h.runtime.list = list;
      await until(() => h.controller.status.syncStatus === 'Synced', 5000, 'Synced again');
      await h.controller.idle();
      await h.bus.flush();
      assert.deepEqual(versions(h.runtime, 'web'), ['v2', 'v2']);
      assert.equal((await h.records()).at(-1)?.result, 'Succeeded');
    } finally {
      await h.close();
    }
  });
});
