import { createApi, serve } from '../../api/server.js';
import { EventLog } from '../../api/sse.js';
import { Controller } from '../../controller/controller.js';
import { PreviewPlanner } from '../../controller/preview.js';
import { scheduleResync, startPolling, validateCron, watchRefs, type Stop } from '../../controller/triggers.js';
import { UsageError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { acquireLock } from '../../reconcile/lock.js';
import { HistoryStore, type EnvStatus, type ReconcileRecord } from '../../report/history.js';
import { Metrics } from '../../report/metrics.js';
import { systemClock } from '../../util/clock.js';
import { parseDuration } from '../../util/units.js';
import { cliWriter, openCliSource, requireEnv, secretSourceFor, type GlobalOptions } from '../context.js';
import { PROXY_KINDS, type DriverOptions } from '../drivers.js';
import { paint, type Out } from '../output.js';
import { statusOptionsFor } from '../forge.js';
import type { ForgeCliOptions } from '../forge-options.js';
import { buildPipeline } from '../pipeline.js';
import { manifestsOf, pluginCatalog } from '../plugins.js';
import { ScalingLoop } from '../../controller/scaling.js';
import { healthProviders, type RegisteredProvider } from '../../health/providers/index.js';
import { appStatsSource } from '../../plugins/app-stats.js';
import { PluginHost } from '../../plugins/host.js';

export interface RunOptions extends GlobalOptions, DriverOptions, Partial<ForgeCliOptions> {
  listen: string;
  interval: string;
  webhookSecret?: string;
  apiToken?: string;
  resyncCron?: string;
  resyncTimezone?: string;
}

/** `berth run`: the controller. Runs until SIGTERM/SIGINT; then finishes the current reconcile and exits 0. */
export async function runCommand(opts: RunOptions, out: Out): Promise<number> {
  const env = requireEnv(opts);
  const intervalMs = usage('--interval', () => parseDuration(opts.interval));
  if (opts.resyncCron) usage('--resync-cron', () => validateCron(opts.resyncCron!));
  const log = createLogger(opts.logLevel);
  const lock = await acquireLock(opts.stateDir, env, { force: opts.force === true });
  const stops: Stop[] = [];
  try {
    const source = await openCliSource(opts);
    const metrics = new Metrics();
    const status = statusOptionsFor(opts, env, source);
    const p = buildPipeline(env, opts, log, metrics, status);
    stops.push(() => p.close());
    const secrets = secretSourceFor(opts);
    const catalog = await pluginCatalog(opts, (message) => log.warn({ detail: message }, 'plugin discovery'));
    // The controls plugins get (message-queue bridges, cron-driven scalers); bound once the controller and the scaling loop exist.
    let controller: Controller | undefined;
    let scaling: ScalingLoop | undefined;
    const host = new PluginHost({
      env,
      catalog,
      bus: p.bus,
      log,
      metrics,
      healthProviders,
      appStats: appStatsSource({ env, runtime: p.runtime, proxy: p.proxy, onWarning: (msg, fields) => log.warn(fields, msg) }),
      controls: {
        sync: (reason) => void (log.info({ env, reason }, 'sync asked for by a plugin'), controller?.trigger('plugin')),
        rescale: (reason) => void scaling?.tick().catch((err: unknown) => log.warn({ env, reason, err: (err as Error).message }, 'scaling round failed')),
        suspend: (reason) => controller?.suspend(reason),
        resume: () => controller?.resume(),
        status: () => controller?.status,
      },
    });
    controller = new Controller({ env, source, runtime: p.runtime, proxy: p.proxy, history: p.history, metrics, log, clock: systemClock, secrets, bus: p.bus, health: p.health, plugins: { manifests: manifestsOf(catalog), host }, ...(opts.prune !== undefined && { prune: opts.prune }), ...(opts.parallelism !== undefined && { parallelism: opts.parallelism }) });
    await controller.init();
    // Plugins stop after the controller (its last events still reach them), in reverse start order.
    stops.push(() => host.close());
    const c = controller;
    scaling = new ScalingLoop({ env, scalers: () => host.scalers(), desired: () => c.lastDesired, memory: () => c.memory, trigger: (t) => c.trigger(t), bus: p.bus, metrics, clock: systemClock, log });
    // Statuses still queued go out before berth stops (a forge that is down gets a few seconds).
    stops.push(async () => void (await p.closeStatuses(5000)));
    const preview = p.statuses && status.forge && source.kind === 'git' ? previewPlanner(opts, env, controller, p.statuses, status, secrets) : undefined;
    if (preview) stops.push(() => preview.stop());
    const events = new EventLog(p.bus);
    stops.push(() => events.close());
    const api = createApi(controller, {
      events,
      ...(opts.apiToken && { apiToken: opts.apiToken }),
      ...(opts.webhookSecret && { webhookSecret: opts.webhookSecret }),
      branch: () => controller.branch(),
      ...(preview && { preview: (e) => preview.request(e) }),
      ...(p.statuses && { statuses: p.statuses }),
      plugins: {
        list: () => host.list(),
        health: (name) => host.health(name),
        reload: (name) => host.reload(name),
        maintenance: (name, on) => host.maintenance(name, on),
        extensionPoints: () => extensionPoints(host, healthProviders.list(), opts),
      },
    });
    const server = await serve(api, opts.listen).catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`--listen ${opts.listen}: ${err.code === 'EADDRINUSE' ? 'the address is already in use (another berth run?); choose another with --listen' : err.message}`);
    });
    // Open event streams never end by themselves: end them first, then drop idle keep-alive sockets.
    stops.push(() => {
      events.close();
      return new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    });
    log.info({ env, repo: source.location, listen: opts.listen, intervalMs, forge: status.forge?.name ?? 'none', statuses: status.note }, 'berth controller started');
    out.info(paint(out, 'green', `berth run: environment ${env} from ${source.location}; API on http://${opts.listen}`));

    controller.trigger('startup');
    controller.watch();
    stops.push(startPolling(controller, intervalMs));
    if (source.git && !source.git.remote) stops.push(await watchRefs(controller, source.git.gitdir));
    if (opts.resyncCron) stops.push(scheduleResync(controller, opts.resyncCron, opts.resyncTimezone));
    stops.push(scaling.start());

    await new Promise<void>((resolve) => {
      const bye = (signal: string) => {
        log.info({ signal }, 'stopping: finishing the current reconcile');
        resolve();
      };
      process.once('SIGTERM', () => bye('SIGTERM'));
      process.once('SIGINT', () => bye('SIGINT'));
    });
    await controller.stop();
    return 0;
  } finally {
    for (const stop of stops.reverse()) await stop();
    await lock.release();
  }
}

/** Plans pull requests and pushes to `previewBranches` against this environment, posting to the forge. */
function previewPlanner(opts: RunOptions, env: string, controller: Controller, statuses: NonNullable<ReturnType<typeof buildPipeline>['statuses']>, status: ReturnType<typeof statusOptionsFor>, secrets: ReturnType<typeof secretSourceFor>): PreviewPlanner {
  const writer = cliWriter(opts, env);
  const { runtime, proxy, log } = controller.deps;
  return new PreviewPlanner({
    env,
    forge: status.forge!,
    statuses,
    context: status.context,
    ...(status.externalUrl && { externalUrl: status.externalUrl }),
    log,
    runtime,
    proxy,
    secrets,
    ...(opts.prune !== undefined && { prune: opts.prune }),
    settings: () => {
      const s = controller.lastDesired?.settings;
      return s && { branch: s.branch, previewBranches: s.previewBranches ?? [] };
    },
    preview: (into, branch) => writer.previewMerge(into, branch),
  });
}

/** Runs a check of an option's value; its error becomes a usage error naming the option. */
function usage<T>(flag: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

export async function fromServer<T>(server: string, path: string): Promise<T | undefined> {
  try {
    const res = await fetch(new URL(path, server), { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** `berth status`: from the controller's API, else the state dir (env given). */
export async function statusCommand(opts: GlobalOptions & { server: string }, out: Out): Promise<number> {
  let status = await fromServer<EnvStatus>(opts.server, '/api/v1/status');
  if (!status) {
    const env = requireEnv(opts);
    status = await new HistoryStore(opts.stateDir, env).readStatus();
    if (!status) throw new UsageError(`no controller answers at ${opts.server} and ${opts.stateDir} has no status for environment "${env}"`);
  }
  if (opts.output === 'json') {
    out.print(JSON.stringify(status, null, 2));
    return 0;
  }
  out.print(`${paint(out, 'bold', status.env)}  sync ${status.syncStatus}  health ${status.health}`);
  out.print(`  last applied:   ${status.lastAppliedRevision ?? '-'}\n  last attempted: ${status.lastAttemptedRevision ?? '-'}`);
  if (status.lastReconcile) out.print(`  last reconcile: ${status.lastReconcile.result} at ${status.lastReconcile.finishedAt}${status.lastReconcile.error ? ` (${status.lastReconcile.error})` : ''}`);
  for (const a of status.apps) out.print(`  ${a.app.padEnd(20)} ${a.syncStatus.padEnd(10)} ${a.health.padEnd(12)} ${a.healthMessage ?? ''}${a.message ? `  (${a.message})` : ''}`);
  return 0;
}

/** `berth history`: recorded reconciles, newest first. */
export async function historyCommand(opts: GlobalOptions & { server: string; limit: string }, out: Out): Promise<number> {
  const limit = Math.max(1, Number(opts.limit) || 20);
  let records = await fromServer<ReconcileRecord[]>(opts.server, `/api/v1/history?limit=${limit}`);
  if (!records) records = await new HistoryStore(opts.stateDir, requireEnv(opts)).list(limit);
  if (opts.output === 'json') {
    out.print(JSON.stringify(records, null, 2));
    return 0;
  }
  for (const r of records) {
    const apps = r.apps.map((a) => `${a.app}:${a.result}`).join(' ');
    out.print(`#${r.id} ${r.finishedAt} ${r.result.padEnd(10)} ${r.revision}${r.reason ? ` [${r.reason}]` : ''} (${r.trigger}, ${(r.durationMs / 1000).toFixed(1)}s) ${apps}${r.error ? `\n     ${r.error}` : ''}`);
  }
  if (!records.length) out.info('no reconciles recorded yet');
  return 0;
}


/** GET /api/v1/extension-points: the host's plugins per point, plus what berth has built in. */
function extensionPoints(host: PluginHost, healthChecks: RegisteredProvider[], opts: RunOptions): unknown {
  return host.extensionPoints().map((p) => {
    if (p.point === 'health-check') return { ...p, providers: healthChecks };
    if (p.point === 'load-balancer') return { ...p, builtin: [...PROXY_KINDS], active: opts.proxy };
    if (p.point === 'metrics-exporter') return { ...p, builtin: ['prometheus (GET /metrics)'] };
    return p;
  });
}
