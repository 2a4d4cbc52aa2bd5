import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { EventBus } from '../events/bus.js';
import type { Trigger } from '../events/types.js';
import type { EnvStatus } from '../status/types.js';
import type { AppResult, ReasonCode, ReconcileResult } from '../status/vocabulary.js';

export type { EnvStatus, Trigger };

/** One reconcile, as recorded in the history. */
export interface ReconcileRecord {
  id: number;
  env: string;
  /** `branch@sha1:<40 hex>`. */
  revision: string;
  trigger: Trigger;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  result: ReconcileResult;
  reason?: ReasonCode;
  apps: { app: string; result: AppResult; reason?: ReasonCode; actions: string[]; error?: string }[];
  error?: string;
  /** nginx reloads the apply made. */
  reloads?: number;
}

/**
 * The embedded history: an append-only JSON-lines file (each record fsync'd; a torn last line from a
 * kill mid-write is skipped on read) and a status file replaced atomically (temp + fsync + rename).
 */
export class HistoryStore {
  readonly #dir: string;
  #nextId = 0;

  constructor(stateDir: string, env: string) {
    this.#dir = path.join(stateDir, 'history', env);
  }

  get file(): string {
    return path.join(this.#dir, 'reconciles.jsonl');
  }

  async #ensure(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    if (this.#nextId === 0) {
      const last = (await this.list(1))[0];
      this.#nextId = (last?.id ?? 0) + 1;
    }
  }

  async append(record: Omit<ReconcileRecord, 'id'>): Promise<ReconcileRecord> {
    await this.#ensure();
    const full: ReconcileRecord = { id: this.#nextId++, ...record };
    const handle = await open(this.file, 'a');
    try {
      // A leading newline terminates any torn line a killed writer left behind.
      await handle.write('\n' + JSON.stringify(full));
      await handle.sync();
    } finally {
      await handle.close();
    }
    return full;
  }

  /** Newest first. */
  async list(limit = 50): Promise<ReconcileRecord[]> {
    const text = await readFile(this.file, 'utf8').catch(() => '');
    const out: ReconcileRecord[] = [];
    const lines = text.split('\n');
    for (let i = lines.length - 1; i >= 0 && out.length < limit; i--) {
      const line = lines[i]!.trim();
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as ReconcileRecord);
      } catch {
        // torn write: skip
      }
    }
    return out;
  }

  /** Replaces `name` in the history folder atomically: temp file, fsync, rename. */
  async #writeJson(name: string, data: unknown): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const file = path.join(this.#dir, name);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(data, null, 2));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  }

  async #readJson<T>(name: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.#dir, name), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  writeStatus(status: EnvStatus): Promise<void> {
    return this.#writeJson('status.json', status);
  }

  readStatus(): Promise<EnvStatus | undefined> {
    return this.#readJson<EnvStatus>('status.json');
  }

  /** The reconciler's memory (what it applied, which versions rolled back): survives restarts. */
  writeMemory(memory: unknown): Promise<void> {
    return this.#writeJson('memory.json', memory);
  }

  readMemory<T>(): Promise<T | undefined> {
    return this.#readJson<T>('memory.json');
  }
}

/** History listens to the bus: every reconcile that did something (not the quiet polls) is appended. */
export function recordHistory(bus: EventBus, store: HistoryStore): () => void {
  return bus.on(
    'reconcile.finished',
    async (e) => {
      if (e.noop) return;
      await store.append({
        env: e.env,
        revision: e.revision,
        trigger: e.trigger,
        startedAt: e.startedAt,
        finishedAt: e.finishedAt,
        durationMs: e.durationMs,
        result: e.result,
        ...(e.reason && { reason: e.reason }),
        apps: e.apps.map((a) => ({ app: a.app, result: a.result, ...(a.reason && { reason: a.reason }), actions: a.actions, ...(a.error && { error: a.error }) })),
        ...(e.error && { error: e.error }),
        reloads: e.reloads,
      });
    },
    { name: 'history' },
  );
}

/** status.json follows the status board; a burst of changes writes only the newest. */
export function writeStatusFile(bus: EventBus, store: HistoryStore): () => void {
  return bus.on(
    'status.changed',
    async (e) => {
      await store.writeStatus(e.status);
    },
    { name: 'status-file', latestOnly: true },
  );
}
