/**
 * berth-plugin-audit: an audit trail of what berth does, and freeze windows.
 *
 * - event-handler: appends the events it selects to `config.file`, one JSON object per line, as
 *   berth emits them. At `maxBytes` the file is rotated (`file.1` is the newest old one, `keep` are
 *   kept); with `keep: 0` it is capped instead, and lines past the cap are dropped and counted.
 * - lifecycle-hook `preApply`: inside a `freeze` window it vetoes the apply and records the veto.
 *   berth lets the veto stop the apply only when the Plugin document says `required: true`.
 * - health(): whether the file can be written (and, capped, is not full).
 *
 * Only Node's built-ins are used, and berth's types are imported as types (./berth.ts): the built
 * package needs nothing of berth's at run time.
 */
import { constants } from 'node:fs';
import { access, appendFile, mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ApplyHookContext, BerthEvent, EventSelector, EventType, PluginContext, PluginHealth, PluginInstance } from './berth.js';

/** What a config without `events` selects: what changed and why, not every rollout step. */
export const DEFAULT_EVENTS: readonly EventSelector[] = ['reconcile.*', 'app.result', 'drift.*', 'plugin.stateChanged'];
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_KEEP = 3;

const EVENT_TYPES: readonly EventType[] = [
  'reconcile.started',
  'reconcile.finished',
  'reconcile.error',
  'app.progress',
  'app.result',
  'drift.detected',
  'drift.healed',
  'drift.resolved',
  'health.changed',
  'health.failed',
  'status.changed',
  'plugin.stateChanged',
  'scaling.decision',
];

/** A maintenance window: applies from `from` (inclusive) until `until` (exclusive) are vetoed. */
export interface FreezeWindow {
  from: number;
  until: number;
  reason: string;
  /** The window as the config wrote it, for messages. */
  written: { from: string; until: string };
}

export interface AuditConfig {
  file: string;
  events: EventSelector[];
  maxBytes: number;
  keep: number;
  freeze: FreezeWindow[];
}

/**
 * A config berth's schema check cannot catch (a window that ends before it starts) or a config that
 * reached the plugin unchecked (a unit test, another host). berth shows the message as the plugin's
 * lastError; the plugin does not start.
 */
export class AuditConfigError extends Error {
  readonly code = 'E_AUDIT_CONFIG';

  constructor(plugin: string, field: string, problem: string) {
    super(`plugin ${plugin}: config.${field} ${problem}`);
    this.name = 'AuditConfigError';
  }
}

function isSelector(s: unknown): s is EventSelector {
  return typeof s === 'string' && (s === '*' || (EVENT_TYPES as readonly string[]).includes(s) || /^[a-z]+\.\*$/.test(s));
}

/** The same matching berth does for `eventHandler.events`: exact types, `prefix.*`, `*`. */
export function selects(selectors: readonly EventSelector[], type: string): boolean {
  return selectors.some((s) => s === '*' || s === type || (s.endsWith('.*') && type.startsWith(s.slice(0, -1))));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Reads `spec.config` (berth filled the schema's defaults; they are filled here too for other callers). */
export function readConfig(plugin: string, raw: Record<string, unknown>): AuditConfig {
  const bad = (field: string, problem: string) => new AuditConfigError(plugin, field, problem);
  const { file, events = DEFAULT_EVENTS, maxBytes = DEFAULT_MAX_BYTES, keep = DEFAULT_KEEP, freeze = [] } = raw;
  if (typeof file !== 'string' || !path.isAbsolute(file)) throw bad('file', `must be an absolute path, got ${JSON.stringify(file)}`);
  if (!Array.isArray(events) || !events.length) throw bad('events', 'must list event types, prefix.* or *');
  const selectors: EventSelector[] = [];
  for (const [i, e] of events.entries()) {
    if (!isSelector(e)) throw bad(`events[${i}]`, `is no event type, prefix.* or * (got ${JSON.stringify(e)}; types: ${EVENT_TYPES.join(', ')})`);
    selectors.push(e);
  }
  if (typeof maxBytes !== 'number' || !Number.isInteger(maxBytes) || maxBytes < 1) throw bad('maxBytes', `must be a whole number of bytes, got ${JSON.stringify(maxBytes)}`);
  if (typeof keep !== 'number' || !Number.isInteger(keep) || keep < 0) throw bad('keep', `must be a whole number ≥ 0, got ${JSON.stringify(keep)}`);
  if (!Array.isArray(freeze)) throw bad('freeze', 'must be a list of { from, until, reason }');
  const windows: FreezeWindow[] = [];
  for (const [i, w] of freeze.entries()) {
    if (!isRecord(w)) throw bad(`freeze[${i}]`, 'must be { from, until, reason }');
    const { from, until, reason } = w;
    if (typeof reason !== 'string' || !reason) throw bad(`freeze[${i}].reason`, 'must say why (it is the veto\'s message)');
    const start = typeof from === 'string' ? Date.parse(from) : NaN;
    const end = typeof until === 'string' ? Date.parse(until) : NaN;
    if (Number.isNaN(start)) throw bad(`freeze[${i}].from`, `must be a date-time like 2026-12-24T00:00:00Z, got ${JSON.stringify(from)}`);
    if (Number.isNaN(end)) throw bad(`freeze[${i}].until`, `must be a date-time like 2026-12-27T00:00:00Z, got ${JSON.stringify(until)}`);
    if (end <= start) throw bad(`freeze[${i}].until`, `(${String(until)}) must be after from (${String(from)})`);
    windows.push({ from: start, until: end, reason, written: { from: String(from), until: String(until) } });
  }
  return { file, events: selectors, maxBytes, keep, freeze: windows };
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // Node's own messages start with the code already ("ENOTDIR: not a directory, open …").
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * The JSON-lines file: one write at a time (events and vetoes arrive on different paths), its size
 * kept in memory so a write costs one append, rotated or capped at `maxBytes`.
 */
export class AuditFile {
  readonly #config: Pick<AuditConfig, 'file' | 'maxBytes' | 'keep'>;
  #size = 0;
  #dropped = 0;
  /** The last line was dropped: the file is at its cap. */
  #full = false;
  #lastError: string | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(config: Pick<AuditConfig, 'file' | 'maxBytes' | 'keep'>) {
    this.#config = config;
  }

  /** Creates the folder and reads the size of what is there. */
  async open(): Promise<void> {
    await mkdir(path.dirname(this.#config.file), { recursive: true });
    this.#size = await this.#sizeOnDisk();
  }

  get size(): number {
    return this.#size;
  }

  /** Capped (keep: 0) and at its cap: the last line was dropped. */
  get full(): boolean {
    return this.#full;
  }

  /** Appends one record as a line; rejects when the line cannot be written (berth counts it as a failure). */
  append(record: object): Promise<void> {
    const line = `${JSON.stringify(record)}\n`;
    const run = this.#chain.then(() => this.#write(line));
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Waits for the writes queued so far. */
  flush(): Promise<void> {
    return this.#chain;
  }

  async health(): Promise<PluginHealth> {
    const { file, maxBytes } = this.#config;
    if (this.#lastError) return { ok: false, message: `cannot write ${file}: ${this.#lastError}` };
    if (this.#full) return { ok: false, message: `${file} is full (maxBytes ${maxBytes}, keep 0): ${this.#dropped} lines dropped so far` };
    try {
      await access(file, constants.W_OK).catch(async (err: unknown) => {
        // No file yet: it is writable when its folder is.
        if (errnoOf(err) !== 'ENOENT') throw err;
        await access(path.dirname(file), constants.W_OK);
      });
    } catch (err) {
      return { ok: false, message: `${file} is not writable: ${describeError(err)}` };
    }
    return { ok: true, message: `${file} is writable (${this.#size} bytes)` };
  }

  async #write(line: string): Promise<void> {
    const { file, maxBytes, keep } = this.#config;
    const bytes = Buffer.byteLength(line);
    try {
      // A line longer than maxBytes still goes into a file of its own.
      if (this.#size > 0 && this.#size + bytes > maxBytes) {
        if (keep === 0) {
          // Someone may have moved the file away meanwhile (logrotate): look again before dropping.
          this.#size = await this.#sizeOnDisk();
          if (this.#size > 0 && this.#size + bytes > maxBytes) {
            this.#dropped++;
            this.#full = true;
            return;
          }
        } else await this.#rotate();
      }
      await appendFile(file, line);
      this.#size += bytes;
      this.#lastError = undefined;
      this.#full = false;
    } catch (err) {
      this.#lastError = describeError(err);
      throw new Error(`cannot write ${file}: ${this.#lastError}`, { cause: err });
    }
  }

  async #sizeOnDisk(): Promise<number> {
    return stat(this.#config.file).then(
      (s) => s.size,
      (err: unknown) => {
        if (errnoOf(err) === 'ENOENT') return 0;
        throw err;
      },
    );
  }

  /** file.(keep-1) → file.keep, …, file → file.1 (the oldest is overwritten). */
  async #rotate(): Promise<void> {
    const { file, keep } = this.#config;
    for (let i = keep; i >= 1; i--) {
      const from = i === 1 ? file : `${file}.${i - 1}`;
      await rename(from, `${file}.${i}`).catch((err: unknown) => {
        if (errnoOf(err) !== 'ENOENT') throw err;
      });
    }
    this.#size = 0;
  }
}

/** The window `now` falls in, if any. */
export function activeWindow(windows: readonly FreezeWindow[], now: number): FreezeWindow | undefined {
  return windows.find((w) => w.from <= now && now < w.until);
}

/** berth calls this once per start, with the Plugin document's validated config. */
export function create(ctx: PluginContext): PluginInstance {
  const config = readConfig(ctx.name, ctx.config);
  const audit = new AuditFile(config);

  const preApply = async (hook: ApplyHookContext): Promise<{ veto: string } | undefined> => {
    const now = ctx.now();
    const window = activeWindow(config.freeze, now);
    if (!window) return undefined;
    const veto = `frozen until ${window.written.until}: ${window.reason}`;
    ctx.log.info('apply vetoed: freeze window', { revision: hook.revision, from: window.written.from, until: window.written.until });
    // The veto holds even when it cannot be recorded: the window matters more than the line.
    await audit
      .append({ type: 'audit.veto', time: new Date(now).toISOString(), env: hook.env, revision: hook.revision, trigger: hook.trigger, changes: hook.changes, veto })
      .catch((err: unknown) => ctx.log.warn('cannot record a veto', { err: describeError(err) }));
    return { veto };
  };

  return {
    async start() {
      await audit.open();
      ctx.log.info('audit file open', { file: config.file, bytes: audit.size, events: config.events, freezeWindows: config.freeze.length });
    },
    async stop() {
      await audit.flush();
    },
    health: () => audit.health(),
    eventHandler: {
      // berth filters by this list; the check in handle() keeps the plugin right under any caller.
      events: config.events,
      async handle(event: BerthEvent) {
        if (!selects(config.events, event.type)) return;
        const wasFull = audit.full;
        await audit.append(event);
        if (audit.full && !wasFull) ctx.log.warn('audit file full: dropping lines until it is moved away', { file: config.file, maxBytes: config.maxBytes });
      },
    },
    hooks: { preApply },
  };
}
