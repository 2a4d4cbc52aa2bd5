import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { parse } from 'yaml';
import { UsageError } from '../errors.js';
import { createExclusive } from '../util/exclusive.js';

export const MASK = '********';

/**
 * A resolved secret. It prints, serialises and logs as a mask by construction;
 * only `reveal()` (used where a container is created) gives the value.
 */
export class SecretValue {
  readonly #value: string | undefined;
  readonly #digestKey: Uint8Array;
  readonly ref: string;

  /**
   * `value` undefined: declared but not set (render previews only; reveal() refuses).
   * `digestKey`: the installation's key (loadDigestKey); without one, a random key of this process.
   */
  constructor(ref: string, value: string | undefined, digestKey: Uint8Array = processDigestKey()) {
    this.ref = ref;
    this.#value = value;
    this.#digestKey = digestKey;
  }

  get resolved(): boolean {
    return this.#value !== undefined;
  }

  reveal(): string {
    if (this.#value === undefined) throw new UsageError(`secret "${this.ref}" has no value; set ${secretEnvName(this.ref)} or pass --secrets-file`);
    return this.#value;
  }

  /**
   * Digest for spec hashes, labels and saved plans: a rotated secret changes it without exposing
   * the value. Keyed (HMAC-SHA256), so a guessed value cannot be checked against a `docker inspect`
   * without the key.
   */
  digest(): string {
    return createHmac('sha256', this.#digestKey).update(`berth-secret:${this.ref}:`).update(this.#value ?? '\0unresolved').digest('hex');
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
  /**
   * Key of the secrets' digests (loadDigestKey). plan, apply and run must share one, or each
   * sees the others' containers as changed; without one, a random key of this process.
   */
  readonly digestKey?: Uint8Array;
}

/** The installation's digest key, in the state dir: 32 random bytes, readable by its owner only. */
export const DIGEST_KEY_FILE = 'secret-digest.key';
const DIGEST_KEY_BYTES = 32;

let processKey: Uint8Array | undefined;

/** The key of a process without a state dir's key (tests, validate): random, so its digests reveal nothing. */
function processDigestKey(): Uint8Array {
  return (processKey ??= randomBytes(DIGEST_KEY_BYTES));
}

/** A short name for a key, for cache keys: two keys, two names; the name tells nothing of the key. */
export function digestKeyId(key: Uint8Array = processDigestKey()): string {
  return createHmac('sha256', key).update('berth-digest-key-id').digest('hex').slice(0, 16);
}

/**
 * The secret digest key kept in `stateDir` (DIGEST_KEY_FILE). With `create`, made on first use:
 * written in full to a temporary file, then linked into place, so two processes starting at once
 * both end up with the one that was linked first. Without `create`, undefined when there is none.
 */
export function loadDigestKey(stateDir: string, create: boolean): Uint8Array | undefined {
  const file = path.join(stateDir, DIGEST_KEY_FILE);
  const existing = readDigestKey(file);
  if (existing || !create) return existing;
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const key = randomBytes(DIGEST_KEY_BYTES);
    try {
      createExclusive(file, key, 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EEXIST: another process was first; its key is the key. A file system without hard links:
      // created exclusively in place instead (a racing reader may then see it half-written once).
      if (code !== 'EEXIST') {
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
        try {
          writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
        } catch (again) {
          if ((again as NodeJS.ErrnoException).code !== 'EEXIST') throw again;
        }
      }
    }
  } catch (err) {
    throw new UsageError(`cannot create the secret digest key ${file}: ${(err as Error).message}; pass a writable --state-dir (BERTH_STATE_DIR)`, { file });
  }
  return readDigestKey(file)!;
}

function readDigestKey(file: string): Uint8Array | undefined {
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read the secret digest key ${file}: ${(err as Error).message}`, { file });
  }
  if (key.length !== DIGEST_KEY_BYTES) {
    throw new UsageError(`the secret digest key ${file} holds ${key.length} bytes, expected ${DIGEST_KEY_BYTES}; remove it to have a new one made (every app with secrets is then rolled once)`, { file });
  }
  return key;
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
