import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { parse } from 'yaml';
import { UsageError } from '../errors.js';

export const MASK = '********';

/**
 * A resolved secret. It prints, serialises and logs as a mask by construction;
 * only `reveal()` (used where a container is created) gives the value.
 */
export class SecretValue {
  readonly #value: string | undefined;
  readonly ref: string;

  /** `value` undefined: declared but not set (render previews only; reveal() refuses). */
  constructor(ref: string, value: string | undefined) {
    this.ref = ref;
    this.#value = value;
  }

  get resolved(): boolean {
    return this.#value !== undefined;
  }

  reveal(): string {
    if (this.#value === undefined) throw new UsageError(`secret "${this.ref}" has no value; set ${secretEnvName(this.ref)} or pass --secrets-file`);
    return this.#value;
  }

  /** Digest for spec hashes: a rotated secret changes the hash without the hash exposing it. */
  digest(): string {
    return createHash('sha256').update(`berth-secret:${this.ref}:`).update(this.#value ?? '\0unresolved').digest('hex');
  }

  toJSON(): string {
    return MASK;
  }

  toString(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return `SecretValue(${this.ref})`;
  }
}

/** Where secretRef names are resolved. Never the config repo itself. */
export interface SecretSource {
  get(name: string): string | undefined;
  describe(): string;
}

/** Environment variable for a secret name: `db-password` → `BERTH_SECRET_DB_PASSWORD`. */
export function secretEnvName(name: string): string {
  return 'BERTH_SECRET_' + name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** Secrets from `BERTH_SECRET_*` environment variables. */
export function envSecretSource(env: NodeJS.ProcessEnv = process.env): SecretSource {
  return {
    get: (name) => env[secretEnvName(name)],
    describe: () => 'environment variables BERTH_SECRET_<NAME>',
  };
}

/** Secrets from a YAML or JSON file of `name: value` pairs (kept outside the config repo). */
export function fileSecretSource(file: string): SecretSource {
  let data: unknown;
  try {
    data = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read secrets file ${file}: ${(err as Error).message}`, { file });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UsageError(`secrets file ${file} must be a mapping of name: value`, { file });
  }
  const map = new Map(Object.entries(data as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  return { get: (name) => map.get(name), describe: () => `secrets file ${file}` };
}

/** First source that knows the name wins. */
export function chainSecretSources(...sources: SecretSource[]): SecretSource {
  return {
    get: (name) => {
      for (const s of sources) {
        const v = s.get(name);
        if (v !== undefined) return v;
      }
      return undefined;
    },
    describe: () => sources.map((s) => s.describe()).join(', or '),
  };
}
