import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Controller, type ControllerDeps } from '../../src/controller/controller.js';
import { EventBus } from '../../src/events/bus.js';
import type { BerthEvent, EventType } from '../../src/events/types.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { HistoryStore, type ReconcileRecord } from '../../src/report/history.js';
import { Metrics } from '../../src/report/metrics.js';
import { wireReporting } from '../../src/report/wire.js';
import type { ConfigSource } from '../../src/source/open.js';
import type { Revision } from '../../src/source/types.js';
import type { AppStatus } from '../../src/status/types.js';
import { fakeClock } from '../support/fakes.js';
import { MemoryProxy, MemoryRuntime } from '../support/memory.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

// The controller driven end to end with fakes only: an in-memory config repo, runtime and proxy, a
// clock whose sleep returns at once, and the real reconcile, planner, apply, health monitor, event
// bus and history store. A version whose args contain "broken" fails its exec health check.

export const ENV = 'production';
export const CHECK = '{ exec: { command: [check] }, intervalSeconds: 1, failureThreshold: 2 }';

/** An app at `version` (its args), with an exec health check; `extra` adds spec lines. */
export function app(name: string, version: string, extra = ''): string {
  return appYaml(name, `  replicas: 2\n  args: [${version}]\n  healthCheck: ${CHECK}\n${extra}`);
}

/** The routed app most tests use. */
export const web = (version: string): string => app('web', version, '  route: { host: web.test }\n');

/** berth.yaml with production's settings replaced, e.g. `selfHeal: true`. */
export function repoYaml(production: string): string {
  return REPO_YAML.replace('production: { branch: main }', `production: { branch: main${production ? `, ${production}` : ''} }`);
}

/** A config repo: berth.yaml (REPO_YAML unless given) and apps/<name>.yaml. */
export function repo(apps: Record<string, string>, berth = REPO_YAML): Record<string, string> {
  const files: Record<string, string> = { 'berth.yaml': berth };
  for (const [name, yaml] of Object.entries(apps)) files[`apps/${name}.yaml`] = yaml;
  return files;
}

export interface Harness {
  controller: Controller;
  runtime: MemoryRuntime;
  proxy: MemoryProxy;
  /** The health monitor (not started: tests probe with `health.checkAll()`). */
  health: HealthMonitor;
  bus: EventBus;
  history: HistoryStore;
  metrics: Metrics;
  /** Every event, in order. */
  events: BerthEvent[];
  /** Warnings and errors the controller logged. */
  logs: Record<string, unknown>[];
  /** Calls of source.read so far. */
  reads: number;
  /** Swaps the repo the source serves. */
  serve(files: Record<string, string>): void;
  /** Makes every read throw `err` (undefined: reads work again). */
  failReads(err: Error | undefined): void;
  /** Makes reads wait until the returned function is called. */
  blockReads(): () => void;
  /** trigger + idle + flush. */
  sync(trigger?: Parameters<Controller['trigger']>[0], options?: { force?: boolean }): Promise<void>;
  /** Recorded reconciles, oldest first. */
  records(): Promise<ReconcileRecord[]>;
  ofType<K extends EventType>(type: K): BerthEvent<K>[];
  appStatus(name: string): AppStatus;
  /** A second controller on the same state dir and drivers, as after a restart. */
  restart(): Promise<Controller>;
  close(): Promise<void>;
}

export async function harness(files: Record<string, string>, options: Partial<Pick<ControllerDeps, 'backoff' | 'prune' | 'runtimeDebounceMs' | 'streamBackoff'>> = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-controller-'));
  const runtime = new MemoryRuntime((c) => !c.spec.includes('broken'));
  const proxy = new MemoryProxy();
  const clock = fakeClock();
  clock.t = Date.parse('2025-01-01T00:00:00Z');
  const subscriberErrors: string[] = [];
  const bus = new EventBus({
    now: clock.now,
    onError: (name, err) => {
      subscriberErrors.push(`${name}: ${(err as Error).message}`);
    },
  });
  const history = new HistoryStore(dir, ENV);
  const metrics = new Metrics();
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const offReporting = wireReporting(bus, { history, log, metrics, context: `berth/${ENV}` });
  const events: BerthEvent[] = [];
  bus.on('*', (e) => void events.push(e), { name: 'test' });
  const health = new HealthMonitor({ runtime, clock, log, onChange: (app, previous, next) => bus.emit('health.changed', { env: ENV, app, ...(previous && { previous }), health: next }) });

  let revision: Revision = memoryRevision(files);
  let failure: Error | undefined;
  let gate: Promise<void> | undefined;
  const h = { reads: 0 } as Harness;
  const source: ConfigSource = {
    location: 'memory',
    kind: 'directory',
    fetch: async () => {},
    read: async () => {
      h.reads++;
      if (gate) await gate;
      if (failure) throw failure;
      return revision;
    },
  };
  const deps: ControllerDeps = { env: ENV, source, runtime, proxy, history, metrics, log, clock, secrets: envSecretSource({}), bus, health, ...options };
  const controllers: Controller[] = [];
  const start = async (): Promise<Controller> => {
    const c = new Controller(deps);
    controllers.push(c);
    await c.init();
    return c;
  };
  const controller = await start();

  return Object.assign(h, {
    controller,
    runtime,
    proxy,
    health,
    bus,
    history,
    metrics,
    events,
    logs,
    serve: (next: Record<string, string>) => void (revision = memoryRevision(next)),
    failReads: (err: Error | undefined) => void (failure = err),
    blockReads: () => {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
    sync: async (trigger: Parameters<Controller['trigger']>[0] = 'poll', opts: { force?: boolean } = {}) => {
      controller.trigger(trigger, opts);
      await controller.idle();
      await bus.flush();
    },
    records: async () => (await history.list(1000)).reverse(),
    ofType: <K extends EventType>(type: K) => events.filter((e): e is BerthEvent<K> => e.type === type),
    appStatus: (name: string) => {
      const s = controller.status.apps.find((a) => a.app === name);
      assert.ok(s, `no status for app ${name}`);
      return s;
    },
    restart: start,
    close: async () => {
      for (const c of controllers) await c.stop();
      offReporting();
      await rm(dir, { recursive: true, force: true });
      assert.deepEqual(subscriberErrors, [], 'no event subscriber failed');
    },
  });
}

/** The spec versions (args) `app`'s running containers were created from, sorted. */
/** A controller that applied `first` at startup, then reconciled `next` on a poll (e.g. a version that rolls back). */
export async function rolledOut(first: Record<string, string>, next: Record<string, string>): Promise<Harness> {
  const h = await harness(first);
  await h.sync('startup');
  h.serve(next);
  await h.sync('poll');
  return h;
}

export function versions(runtime: MemoryRuntime, name: string): string[] {
  return runtime
    .running(name)
    .map((c) => (JSON.parse(c.spec) as { args: string[] }).args.join(' '))
    .sort();
}

/** Resolves once `check` holds (real time), or fails after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The value of berth_triggers_total for one trigger, from the registry /metrics serves. */
export async function triggerCount(metrics: Metrics, trigger: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const m = new RegExp(`^berth_triggers_total\\{env="${ENV}",trigger="${trigger}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

