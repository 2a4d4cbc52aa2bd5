import type { EventBus } from '../events/bus.js';
import type { EnvStatus } from './types.js';

/** The environment's current status: one owner, and every change announced on the bus (status file, API, SSE). */
export class StatusBoard {
  #status: EnvStatus;

  constructor(
    private readonly bus: EventBus,
    initial: EnvStatus,
  ) {
    this.#status = initial;
  }

  get current(): EnvStatus {
    return this.#status;
  }

  /** Replaces fields, stamps the time and announces the new status. */
  update(patch: Partial<EnvStatus>, now: Date): EnvStatus {
    this.#status = { ...this.#status, ...patch, updatedAt: now.toISOString() };
    this.bus.emit('status.changed', { env: this.#status.env, status: this.#status });
    return this.#status;
  }
}

/** The status of an environment berth knows nothing about yet. */
export function initialStatus(env: string, now: Date): EnvStatus {
  return { env, syncStatus: 'Unknown', health: 'Unknown', apps: [], updatedAt: now.toISOString() };
}
