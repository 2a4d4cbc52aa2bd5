import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { AppResult, ReconcileResult } from '../apply/types.js';
import type { Health } from '../runtime/types.js';

export type SyncStatus = 'Synced' | 'OutOfSync' | 'Unknown';
export type Trigger = 'startup' | 'poll' | 'watch' | 'webhook' | 'manual' | 'cron' | 'retry';

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
  apps: { app: string; result: AppResult; actions: string[]; error?: string }[];
  error?: string;
}

export interface AppStatus {
  app: string;
  syncStatus: SyncStatus;
  health: Health;
  revision: string;
  message?: string;
}

export interface EnvStatus {
  env: string;
  syncStatus: SyncStatus;
  health: Health;
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  lastReconcile?: { result: ReconcileResult; finishedAt: string; error?: string };
  apps: AppStatus[];
  updatedAt: string;
}

const HEALTH_ORDER: Health[] = ['Healthy', 'Suspended', 'Progressing', 'Missing', 'Degraded'];

/** An environment is as healthy as its least healthy app. */
export function worstHealth(values: Health[]): Health {
  return values.reduce<Health>((worst, h) => (HEALTH_ORDER.indexOf(h) > HEALTH_ORDER.indexOf(worst) ? h : worst), 'Healthy');
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

  async writeStatus(status: EnvStatus): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const file = path.join(this.#dir, 'status.json');
    const tmp = `${file}.${process.pid}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(status, null, 2));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  }

  async readStatus(): Promise<EnvStatus | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.#dir, 'status.json'), 'utf8')) as EnvStatus;
    } catch {
      return undefined;
    }
  }
}
