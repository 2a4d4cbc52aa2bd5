/**
 * The `schedule` built-in: a scaler that proposes replica counts from a time-of-day table
 * (`{ "09:00": 5, "18:00": 2 }`) read on the wall clock of one time zone, for the apps each schedule
 * names. berth's scaling loop asks it, clamps the answer to the app's `scaling: { min, max }`, records
 * and applies it (see src/controller/scaling.ts).
 *
 * Timing: node-cron runs a task at each time of its tables (in its time zone), which asks berth for a
 * scaling round at once (`controls.rescale`). Between those, the loop still asks at `intervalSeconds`:
 * the seconds left until the next time in the tables (at most 30), so a missed tick (a worker thread
 * reads the interval once) is caught within seconds, and an injected clock (tests) needs no cron.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { VERSION } from '../../version.js';
import type { PluginContext, PluginFactory, PluginInstance, PluginManifest, Scaler, ScalerInput } from '../types.js';
import { configError } from './deliver.js';

const DEFAULT_TIMEZONE = 'UTC';
/** The scaling loop asks at least this often whatever a scaler says (ScalingLoop.start). */
const MAX_INTERVAL_SECONDS = 30;
const TIME_PATTERN = '^([01][0-9]|2[0-3]):[0-5][0-9]$';
const TIME = new RegExp(TIME_PATTERN);

export const manifest: PluginManifest = {
  name: 'schedule',
  version: VERSION,
  description: 'Scales apps by time of day: a table such as { "09:00": 5, "18:00": 2 } in a time zone, within each app\'s scaling bounds.',
  provides: ['scaler'],
  configSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'schedule plugin config',
    type: 'object',
    required: ['schedules'],
    additionalProperties: false,
    properties: {
      timezone: {
        description: `The IANA time zone the table times are read in (daylight saving time included). Default: ${DEFAULT_TIMEZONE}. A zone this berth does not know puts the plugin in error.`,
        type: 'string',
        minLength: 1,
        maxLength: 64,
        default: DEFAULT_TIMEZONE,
        examples: ['Europe/Berlin', 'America/New_York', 'UTC'],
      },
      schedules: {
        description: 'Tables and the apps they scale; an app takes the first schedule that names it (or "*").',
        type: 'array',
        minItems: 1,
        maxItems: 100,
        items: {
          type: 'object',
          required: ['apps', 'table'],
          additionalProperties: false,
          properties: {
            apps: {
              description: 'App names, or "*" for every app with scaling bounds.',
              type: 'array',
              minItems: 1,
              uniqueItems: true,
              items: { type: 'string', pattern: '^(\\*|[a-z][a-z0-9-]{0,39})$', examples: ['web', '*'] },
            },
            table: {
              description: 'Replicas from each time of day (HH:MM, 24-hour) until the next entry; before the first entry of a day the last one still holds.',
              type: 'object',
              minProperties: 1,
              maxProperties: 1440,
              propertyNames: { pattern: TIME_PATTERN, description: 'A time of day, HH:MM from 00:00 to 23:59.', examples: ['09:00', '18:30'] },
              additionalProperties: { type: 'integer', minimum: 0, maximum: 100 },
              examples: [{ '09:00': 5, '18:00': 2 }],
            },
          },
        },
      },
    },
  },
};

/** One entry of a table: from `time` (minute `minute` of the day) on, `replicas`. */
export interface TableEntry {
  time: string;
  minute: number;
  replicas: number;
}

/** A table's entries in time-of-day order. Throws on an empty table, a time that is not HH:MM or a count that is not a whole number ≥ 0. */
export function tableEntries(table: Readonly<Record<string, number>>): TableEntry[] {
  const entries = Object.entries(table).map(([time, replicas]): TableEntry => {
    if (!TIME.test(time)) throw new RangeError(`"${time}" is not a time of day (HH:MM, 00:00 to 23:59)`);
    if (!Number.isInteger(replicas) || replicas < 0) throw new RangeError(`the replicas at ${time} must be a whole number ≥ 0, got ${JSON.stringify(replicas)}`);
    return { time, minute: Number(time.slice(0, 2)) * 60 + Number(time.slice(3)), replicas };
  });
  if (!entries.length) throw new RangeError('a table needs at least one entry');
  return entries.sort((a, b) => a.minute - b.minute);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** A formatter for the wall clock of `timeZone`; throws a RangeError for a zone the runtime does not know. */
function wallClock(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Seconds since midnight on the wall clock of `timeZone` at `now` (fractions kept). */
export function timeOfDay(now: Date, timeZone: string): number {
  const parts = Object.fromEntries(wallClock(timeZone).formatToParts(now).map((p) => [p.type, p.value]));
  return (Number(parts.hour) * 60 + Number(parts.minute)) * 60 + Number(parts.second) + now.getUTCMilliseconds() / 1000;
}

/** The entry in force at `now`: the latest at or before its time of day, else (before the first) the day's last, from yesterday. */
function entryAt(entries: readonly TableEntry[], now: Date, timeZone: string): TableEntry {
  const minute = Math.floor(timeOfDay(now, timeZone) / 60);
  let active = entries.at(-1)!;
  for (const e of entries) if (e.minute <= minute) active = e;
  return active;
}

/**
 * The replicas `table` gives at `now` on the wall clock of `timeZone`: the latest entry at or before
 * that time of day; before the first entry, the last one (it has held since yesterday). The wall
 * clock rules on daylight-saving days: an entry in the hour that is skipped takes effect when the
 * clock jumps past it, and in the hour that repeats, the table is followed twice.
 */
export function scheduledReplicas(table: Readonly<Record<string, number>>, now: Date, timeZone: string): number {
  return entryAt(tableEntries(table), now, timeZone).replicas;
}

/** Seconds from `now` until the wall clock of `timeZone` next reaches a minute in `minutes` (sorted, non-empty). */
export function secondsUntilNext(minutes: readonly number[], now: Date, timeZone: string): number {
  const t = timeOfDay(now, timeZone);
  const next = minutes.find((m) => m * 60 > t) ?? minutes[0]! + 24 * 60;
  return next * 60 - t;
}

interface Schedule {
  /** Undefined: every app ("*"). */
  apps: ReadonlySet<string> | undefined;
  entries: TableEntry[];
}

function readTimezone(ctx: PluginContext): string {
  const timeZone = ctx.config.timezone ?? DEFAULT_TIMEZONE;
  if (typeof timeZone !== 'string') throw configError(ctx.name, 'timezone', `must be a string, got ${typeof timeZone}`);
  try {
    // Its canonical spelling (europe/berlin → Europe/Berlin), as decisions' reasons show it.
    return wallClock(timeZone).resolvedOptions().timeZone;
  } catch {
    throw configError(ctx.name, 'timezone', `"${timeZone}" is not a time zone berth knows; use an IANA name such as Europe/Berlin or America/New_York (or UTC)`);
  }
}

function readSchedules(ctx: PluginContext): Schedule[] {
  const list = ctx.config.schedules;
  if (!Array.isArray(list) || !list.length) throw configError(ctx.name, 'schedules', 'must list at least one { apps, table }');
  return list.map((raw: unknown, i): Schedule => {
    const s = (raw ?? {}) as { apps?: unknown; table?: unknown };
    if (!Array.isArray(s.apps) || !s.apps.length || s.apps.some((a) => typeof a !== 'string')) throw configError(ctx.name, `schedules[${i}].apps`, 'must list app names or "*"');
    if (!s.table || typeof s.table !== 'object' || Array.isArray(s.table)) throw configError(ctx.name, `schedules[${i}].table`, 'must map times of day to replicas, e.g. { "09:00": 5, "18:00": 2 }');
    let entries: TableEntry[];
    try {
      entries = tableEntries(s.table as Record<string, number>);
    } catch (err) {
      throw configError(ctx.name, `schedules[${i}].table`, (err as Error).message);
    }
    const apps = s.apps as string[];
    return { apps: apps.includes('*') ? undefined : new Set(apps), entries };
  });
}

/** The schedule plugin's factory: reads and checks its config (an unknown time zone is an error here). */
export const create: PluginFactory = (ctx: PluginContext): PluginInstance => {
  const timeZone = readTimezone(ctx);
  const schedules = readSchedules(ctx);
  const boundaries = [...new Set(schedules.flatMap((s) => s.entries.map((e) => e.minute)))].sort((a, b) => a - b);
  const scheduleOf = (app: string) => schedules.find((s) => !s.apps || s.apps.has(app));

  const scaler: Scaler = {
    // A getter: the host and the loop read it before each round (a worker thread reports it once, at start).
    get intervalSeconds(): number {
      const left = secondsUntilNext(boundaries, new Date(ctx.now()), timeZone);
      return Math.min(MAX_INTERVAL_SECONDS, Math.max(1, Math.ceil(left)));
    },
    propose(input: ScalerInput) {
      const schedule = scheduleOf(input.app);
      if (!schedule) return undefined;
      const entry = entryAt(schedule.entries, input.now, timeZone);
      return { replicas: entry.replicas, reason: `schedule ${entry.time} (${timeZone}): ${entry.replicas}` };
    },
  };

  const tasks: ScheduledTask[] = [];
  return {
    scaler,
    start: () => {
      for (const minute of boundaries) {
        const time = `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
        tasks.push(cron.schedule(`${minute % 60} ${Math.floor(minute / 60)} * * *`, () => ctx.controls.rescale(`schedule ${time} (${timeZone})`), { timezone: timeZone }));
      }
      ctx.log.info('schedule armed', { times: boundaries.length, timeZone });
    },
    stop: () => {
      for (const task of tasks.splice(0)) void task.destroy();
    },
    health: () => {
      const now = new Date(ctx.now());
      const left = secondsUntilNext(boundaries, now, timeZone);
      const inForce = schedules.map((s) => {
        const e = entryAt(s.entries, now, timeZone);
        return `${s.apps ? [...s.apps].join(', ') : '*'}: ${e.replicas} (since ${e.time})`;
      });
      return { ok: true, message: `${inForce.join('; ')}; next change in ${Math.ceil(left / 60)} min (${timeZone})` };
    },
  };
};
