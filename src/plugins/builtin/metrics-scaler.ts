/**
 * The `metrics-scaler` built-in: scales apps on what they use. Each time berth's scaling loop asks
 * about an app (every `intervalSeconds`), it takes one reading through PluginContext.appStats (CPU
 * and memory from Docker's stats; requests/s from HAProxy's counters) into the app's window, and
 * decides on the window's averages:
 *
 * - out, by up to `maxStep`, when ANY `scaleOut` threshold is exceeded;
 * - in, by up to `maxStep`, when ALL `scaleIn` thresholds that have readings are undercut, and the
 *   fewer replicas would not exceed a `scaleOut` threshold at once (CPU and requests spread over them);
 * - never within `cooldownSeconds` of the app's last change, nor before the window is full.
 *
 * A change of the app's count (this scaler's, or a commit's) empties its window: readings taken at
 * another count say nothing about this one. A metric no source measures (requests/s behind nginx,
 * p95 behind either built-in proxy) never scales out and does not hold back a scale-in; it is
 * logged once per app and shown in the plugin's health.
 */
import { BerthError } from '../../errors.js';
import { VERSION } from '../../version.js';
import type { AppStats, PluginContext, PluginFactory, PluginInstance, PluginManifest, Scaler, ScalerInput } from '../types.js';
import { configError } from './deliver.js';

export const METRICS = ['cpuPercent', 'memoryPercent', 'requestsPerSecondPerReplica', 'p95Ms'] as const;
export type Metric = (typeof METRICS)[number];
export type Thresholds = Partial<Record<Metric, number>>;

export const DEFAULTS = { windowSeconds: 60, cooldownSeconds: 300, maxStep: 1, intervalSeconds: 15 } as const;
/** The scaling loop asks at least this often whatever a scaler says (ScalingLoop.start). */
const MAX_INTERVAL_SECONDS = 30;

/** Metrics whose per-replica value falls as replicas are added (load shared out): the scale-in projection uses these. */
const SHARED: readonly Metric[] = ['cpuPercent', 'requestsPerSecondPerReplica'];

const LABEL: Record<Metric, (v: number) => string> = {
  cpuPercent: (v) => `cpu ${num(v)}%`,
  memoryPercent: (v) => `memory ${num(v)}%`,
  requestsPerSecondPerReplica: (v) => `requests/s per replica ${num(v)}`,
  p95Ms: (v) => `p95 ${num(v)} ms`,
};
const UNIT: Record<Metric, string> = { cpuPercent: '%', memoryPercent: '%', requestsPerSecondPerReplica: '', p95Ms: ' ms' };
const NAME: Record<Metric, string> = { cpuPercent: 'cpu', memoryPercent: 'memory', requestsPerSecondPerReplica: 'requests/s per replica', p95Ms: 'p95' };

function num(v: number): string {
  return String(Number(v.toFixed(Math.abs(v) < 10 ? 1 : 0)));
}

function thresholdsSchema(direction: 'out' | 'in'): Record<string, unknown> {
  const when = direction === 'out' ? 'Scale out when the window average is above' : 'Scale in only when the window average is below';
  return {
    description: direction === 'out' ? 'Scale out when ANY of these is exceeded (window averages).' : 'Scale in when ALL of these that are measured are undercut (window averages); each below its scaleOut value.',
    type: 'object',
    minProperties: 1,
    additionalProperties: false,
    properties: {
      cpuPercent: { description: `${when} this CPU use per replica, % of one CPU (as docker stats: 150 = 1.5 CPUs).`, type: 'number', exclusiveMinimum: 0, maximum: 25600, examples: [direction === 'out' ? 70 : 30] },
      memoryPercent: { description: `${when} this memory use per replica, % of its memory limit (of the host's memory when it has none).`, type: 'number', exclusiveMinimum: 0, maximum: 100, examples: [direction === 'out' ? 80 : 40] },
      requestsPerSecondPerReplica: { description: `${when} this many requests/s per replica (needs --proxy haproxy: nginx keeps no per-upstream counters).`, type: 'number', exclusiveMinimum: 0, examples: [direction === 'out' ? 50 : 10] },
      p95Ms: { description: `${when} this 95th-percentile response time, ms. Neither built-in proxy measures percentiles: ignored (with a warning) until a proxy does.`, type: 'number', exclusiveMinimum: 0, examples: [direction === 'out' ? 300 : 100] },
    },
  };
}

export const manifest: PluginManifest = {
  name: 'metrics-scaler',
  version: VERSION,
  description: 'Scales apps on CPU, memory and requests/s (averages over a window), within each app\'s scaling bounds, with a cooldown and a maximum step.',
  provides: ['scaler'],
  configSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'metrics-scaler plugin config',
    type: 'object',
    required: ['apps', 'scaleOut', 'scaleIn'],
    additionalProperties: false,
    properties: {
      apps: {
        description: 'App names, or "*" for every app with scaling bounds. This scaler answers for these apps (holding their count when nothing is to change), so a lower-priority scaler does not.',
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', pattern: '^(\\*|[a-z][a-z0-9-]{0,39})$', examples: ['web', '*'] },
      },
      scaleOut: thresholdsSchema('out'),
      scaleIn: thresholdsSchema('in'),
      windowSeconds: { description: `Readings averaged, in seconds; no decision before the window is full. Default ${DEFAULTS.windowSeconds}.`, type: 'number', minimum: 1, maximum: 3600, default: DEFAULTS.windowSeconds },
      cooldownSeconds: { description: `No change within this many seconds of the app's last change, either way. Default ${DEFAULTS.cooldownSeconds}.`, type: 'number', minimum: 0, maximum: 86400, default: DEFAULTS.cooldownSeconds },
      maxStep: { description: `Most replicas added or removed by one decision. Default ${DEFAULTS.maxStep}.`, type: 'integer', minimum: 1, maximum: 100, default: DEFAULTS.maxStep },
      intervalSeconds: { description: `How often each app is read (the scaling loop asks at least every ${MAX_INTERVAL_SECONDS} s). Default ${DEFAULTS.intervalSeconds}.`, type: 'number', minimum: 1, maximum: MAX_INTERVAL_SECONDS, default: DEFAULTS.intervalSeconds },
    },
  },
};

export interface MetricsScalerConfig {
  /** Undefined: every app ("*"). */
  apps: ReadonlySet<string> | undefined;
  scaleOut: Thresholds;
  scaleIn: Thresholds;
  windowSeconds: number;
  cooldownSeconds: number;
  maxStep: number;
  intervalSeconds: number;
}

/** One reading of an app, per replica. */
export interface Sample {
  at: number;
  values: Thresholds;
}

/** Window averages by metric (a metric no reading had is absent). */
export function windowAverages(samples: readonly Sample[]): Thresholds {
  const sums: Thresholds = {};
  const counts: Thresholds = {};
  for (const s of samples) {
    for (const m of METRICS) {
      const v = s.values[m];
      if (v === undefined) continue;
      sums[m] = (sums[m] ?? 0) + v;
      counts[m] = (counts[m] ?? 0) + 1;
    }
  }
  const out: Thresholds = {};
  for (const m of METRICS) if (counts[m]) out[m] = sums[m]! / counts[m]!;
  return out;
}

/** The per-replica values of one reading (requests/s divided by the replicas measured). */
export function sampleValues(stats: AppStats): Thresholds {
  const values: Thresholds = {};
  if (stats.cpuPercent !== undefined) values.cpuPercent = stats.cpuPercent;
  if (stats.memoryPercent !== undefined) values.memoryPercent = stats.memoryPercent;
  if (stats.requestsPerSecond !== undefined && stats.replicas > 0) values.requestsPerSecondPerReplica = stats.requestsPerSecond / stats.replicas;
  if (stats.p95Ms !== undefined) values.p95Ms = stats.p95Ms;
  return values;
}

export type Decision = { replicas: number; reason: string; change: boolean };

/**
 * The policy on one app's window averages: out by up to maxStep when any scale-out threshold is
 * exceeded (as many as the largest overshoot asks for, CPU at 140% of its threshold on 2 replicas
 * asking for 3); else in by up to maxStep when every measured scale-in threshold is undercut and the
 * CPU and requests/s the removed replicas carried, spread over the rest, stay at or under scaleOut.
 */
export function decide(config: Pick<MetricsScalerConfig, 'scaleOut' | 'scaleIn' | 'maxStep' | 'windowSeconds'>, avg: Thresholds, input: Pick<ScalerInput, 'current' | 'min' | 'max'>): Decision {
  const { current, min, max } = input;
  const over = `over ${num(config.windowSeconds)} s`;
  const hold = (reason: string): Decision => ({ replicas: current, reason, change: false });

  const exceeded = METRICS.filter((m) => config.scaleOut[m] !== undefined && avg[m] !== undefined && avg[m]! > config.scaleOut[m]!);
  if (exceeded.length) {
    const why = `${exceeded.map((m) => `${LABEL[m](avg[m]!)} > ${num(config.scaleOut[m]!)}${UNIT[m]}`).join(', ')} ${over}`;
    if (current >= max) return hold(`${why}, but at max ${max}`);
    // The replicas that would bring the worst proportional metric back to its threshold (p95 does not scale so: one more).
    let needed = current + 1;
    for (const m of exceeded) if (m !== 'p95Ms') needed = Math.max(needed, Math.ceil((Math.max(1, current) * avg[m]!) / config.scaleOut[m]!));
    return { replicas: Math.min(max, current + config.maxStep, needed), reason: why, change: true };
  }

  const configured = METRICS.filter((m) => config.scaleIn[m] !== undefined);
  const measured = configured.filter((m) => avg[m] !== undefined);
  const unmeasured = configured.filter((m) => avg[m] === undefined);
  const noData = unmeasured.length ? ` (no data: ${unmeasured.map((m) => NAME[m]).join(', ')})` : '';
  if (!measured.length) return hold(`no scale-in metric measured${noData}`);
  const notBelow = measured.filter((m) => !(avg[m]! < config.scaleIn[m]!));
  if (notBelow.length) return hold(`within thresholds (${notBelow.map((m) => `${LABEL[m](avg[m]!)} ≥ ${num(config.scaleIn[m]!)}${UNIT[m]}`).join(', ')})`);
  const why = `${measured.map((m) => `${LABEL[m](avg[m]!)} < ${num(config.scaleIn[m]!)}${UNIT[m]}`).join(', ')} ${over}${noData}`;
  if (current <= min) return hold(`${why}, but at min ${min}`);
  for (let step = Math.min(config.maxStep, current - min); step >= 1; step--) {
    const to = current - step;
    const tooHigh = SHARED.filter((m) => config.scaleOut[m] !== undefined && avg[m] !== undefined && (avg[m]! * current) / to > config.scaleOut[m]!);
    if (!tooHigh.length) return { replicas: to, reason: why, change: true };
    if (step === 1) {
      return hold(`${why}, but on ${to} replica${to === 1 ? '' : 's'} ${tooHigh.map((m) => `${LABEL[m]((avg[m]! * current) / to)} > ${num(config.scaleOut[m]!)}${UNIT[m]}`).join(', ')}`);
    }
  }
  return hold(why);
}

function readThresholds(ctx: PluginContext, field: 'scaleOut' | 'scaleIn'): Thresholds {
  const raw = ctx.config[field];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw configError(ctx.name, field, `must set at least one of ${METRICS.join(', ')}`);
  const out: Thresholds = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!(METRICS as readonly string[]).includes(key)) throw configError(ctx.name, `${field}.${key}`, `is not a metric; use ${METRICS.join(', ')}`);
    if (typeof value !== 'number' || !(value > 0)) throw configError(ctx.name, `${field}.${key}`, `must be a number above 0, got ${JSON.stringify(value)}`);
    out[key as Metric] = value;
  }
  if (!Object.keys(out).length) throw configError(ctx.name, field, `must set at least one of ${METRICS.join(', ')}`);
  return out;
}

function readNumber(ctx: PluginContext, field: keyof typeof DEFAULTS, min: number, integer = false): number {
  const value = ctx.config[field] ?? DEFAULTS[field];
  if (typeof value !== 'number' || value < min || (integer && !Number.isInteger(value))) throw configError(ctx.name, field, `must be ${integer ? 'a whole number' : 'a number'} ≥ ${min}, got ${JSON.stringify(value)}`);
  return value;
}

/** The config, checked beyond the schema: each scale-in threshold below its scale-out one, the window at least one interval. */
export function readConfig(ctx: PluginContext): MetricsScalerConfig {
  const apps = ctx.config.apps;
  if (!Array.isArray(apps) || !apps.length || apps.some((a) => typeof a !== 'string')) throw configError(ctx.name, 'apps', 'must list app names or "*"');
  const scaleOut = readThresholds(ctx, 'scaleOut');
  const scaleIn = readThresholds(ctx, 'scaleIn');
  for (const m of METRICS) {
    if (scaleIn[m] !== undefined && scaleOut[m] !== undefined && !(scaleIn[m]! < scaleOut[m]!)) {
      throw configError(ctx.name, `scaleIn.${m}`, `(${scaleIn[m]}) must be below scaleOut.${m} (${scaleOut[m]}), or the app would scale in and out by turns`);
    }
  }
  const config: MetricsScalerConfig = {
    apps: apps.includes('*') ? undefined : new Set(apps as string[]),
    scaleOut,
    scaleIn,
    windowSeconds: readNumber(ctx, 'windowSeconds', 1),
    cooldownSeconds: readNumber(ctx, 'cooldownSeconds', 0),
    maxStep: readNumber(ctx, 'maxStep', 1, true),
    intervalSeconds: Math.min(MAX_INTERVAL_SECONDS, readNumber(ctx, 'intervalSeconds', 1)),
  };
  if (config.windowSeconds < config.intervalSeconds) throw configError(ctx.name, 'windowSeconds', `(${config.windowSeconds}) must be at least intervalSeconds (${config.intervalSeconds}): a window holds one reading per interval`);
  return config;
}

/** What the scaler remembers of one app. */
interface AppState {
  samples: Sample[];
  /**
   * ctx.now() of the first reading since the window was last emptied: the window is full once it has
   * watched the app for its length (less one interval), however many readings a slow loop got into it.
   */
  since?: number;
  /** ctx.now() of the app's last change seen or made; undefined until one (no cooldown at start: the window must fill first). */
  changedAt?: number;
  /** The count this scaler last saw or set: another one in the next input is a change. */
  count?: number;
  /** The last reading's failure, until a reading succeeds. */
  error?: string;
  /** Configured metrics already warned about as unmeasured. */
  warned: Set<Metric>;
  last?: { replicas: number; reason: string; at: number; averages: Thresholds; samples: number };
}

/** The metrics-scaler's factory: checks its config, and that berth offers app stats (not relayed to worker threads). */
export const create: PluginFactory = (ctx: PluginContext): PluginInstance => {
  const config = readConfig(ctx);
  const appStats = ctx.appStats;
  if (!appStats) {
    throw new BerthError('E_PLUGIN', `plugin ${ctx.name}: metrics-scaler needs app stats (ctx.appStats), which berth run offers to inline plugins only; use isolation: inline`, { plugin: ctx.name, field: 'isolation' });
  }
  const windowMs = config.windowSeconds * 1000;
  const intervalMs = config.intervalSeconds * 1000;
  const states = new Map<string, AppState>();
  const stateOf = (app: string): AppState => {
    let s = states.get(app);
    if (!s) states.set(app, (s = { samples: [], warned: new Set() }));
    return s;
  };

  const read = async (app: string, state: AppState, at: number): Promise<void> => {
    let stats: AppStats;
    try {
      stats = await appStats(app);
    } catch (err) {
      const message = (err as Error).message;
      if (state.error !== message) ctx.log.warn('app stats could not be read', { app, err: message });
      state.error = message;
      return;
    }
    state.error = undefined;
    const values = sampleValues(stats);
    if (!Object.keys(values).length) return;
    state.samples.push({ at, values });
    state.since ??= at;
  };

  const scaler: Scaler = {
    intervalSeconds: config.intervalSeconds,
    async propose(input: ScalerInput) {
      if (config.apps && !config.apps.has(input.app)) return undefined;
      const state = stateOf(input.app);
      const now = ctx.now();
      // Another count than the one last seen: readings of the old count are no guide to the new one.
      if (state.count !== undefined && state.count !== input.current) {
        state.samples = [];
        state.since = undefined;
        state.changedAt = now;
      }
      state.count = input.current;
      await read(input.app, state, now);
      state.samples = state.samples.filter((s) => s.at > now - windowMs);
      const avg = windowAverages(state.samples);
      const remember = (d: { replicas: number; reason: string }): { replicas: number; reason: string } => {
        state.last = { ...d, at: now, averages: avg, samples: state.samples.length };
        return d;
      };

      if (!state.samples.length) {
        state.since = undefined;
        return remember({ replicas: input.current, reason: state.error ? `no readings: ${state.error}` : 'no readings yet' });
      }
      // Full once it has watched the window's length less one interval (the first reading opens it).
      const watched = now - state.since!;
      if (watched < windowMs - intervalMs) return remember({ replicas: input.current, reason: `filling the window (${num(watched / 1000)} of ${num(config.windowSeconds)} s)` });
      for (const m of METRICS) {
        if ((config.scaleOut[m] !== undefined || config.scaleIn[m] !== undefined) && avg[m] === undefined && !state.warned.has(m)) {
          state.warned.add(m);
          ctx.log.warn('a configured metric has no readings: it is ignored', { app: input.app, metric: m, hint: m === 'p95Ms' ? 'no built-in proxy measures percentiles' : m === 'requestsPerSecondPerReplica' ? 'requests/s come from --proxy haproxy only' : 'the runtime gives no stats' });
        }
      }
      const cooldownLeft = state.changedAt === undefined ? 0 : state.changedAt + config.cooldownSeconds * 1000 - now;
      if (cooldownLeft > 0) return remember({ replicas: input.current, reason: `cooldown: ${Math.ceil(cooldownLeft / 1000)} s left` });

      const decision = decide(config, avg, input);
      if (decision.change && decision.replicas !== input.current) {
        state.samples = [];
        state.since = undefined;
        state.changedAt = now;
        state.count = decision.replicas;
      }
      return remember({ replicas: decision.replicas, reason: decision.reason });
    },
  };

  return {
    scaler,
    health: () => {
      const apps = [...states.entries()].map(([app, s]) => {
        const avg = s.last ? METRICS.filter((m) => s.last!.averages[m] !== undefined).map((m) => LABEL[m](s.last!.averages[m]!)) : [];
        const unmeasured = [...s.warned].map((m) => NAME[m]);
        return `${app}: ${s.last ? `${s.last.replicas} (${s.last.reason})` : 'not asked yet'}${avg.length ? `; ${avg.join(', ')} over ${s.last!.samples} readings` : ''}${unmeasured.length ? `; no data: ${unmeasured.join(', ')}` : ''}${s.error ? `; last reading failed: ${s.error}` : ''}`;
      });
      const failing = [...states.values()].some((s) => s.error !== undefined);
      return { ok: !failing, message: apps.length ? apps.join(' | ') : 'no app asked about yet' };
    },
  };
};
