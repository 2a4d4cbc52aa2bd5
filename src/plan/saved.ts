import { BerthError, UsageError } from '../errors.js';
import { SecretValue, secretEnvName, type SecretSource } from '../render/secrets.js';
import type { Plan } from './types.js';

/**
 * How a secret appears in a saved plan: its name and its keyed digest (SecretValue.digest(), with
 * the state dir's key), never its value. Plans of berth before the keyed digest held `sha256`.
 */
interface SavedSecret {
  secretRef: string;
  hmac: string;
}

const DIGEST_CHARS = 16;

/** A plan as JSON (`berth plan --output json`, `--out FILE`): secrets as references with a digest. */
export function serializePlan(plan: Plan): string {
  return JSON.stringify(
    plan,
    function (this: Record<string, unknown>, key, value: unknown) {
      const original = this[key];
      if (original instanceof SecretValue) return { secretRef: original.ref, hmac: original.digest().slice(0, DIGEST_CHARS) } satisfies SavedSecret;
      return value;
    },
    2,
  );
}

/** A secret reference of a saved plan: this berth's form (`hmac`) or the unkeyed one before it (`sha256`). */
function isSavedSecret(v: unknown): v is SavedSecret | { secretRef: string; sha256: string } {
  if (typeof v !== 'object' || v === null || typeof (v as SavedSecret).secretRef !== 'string') return false;
  return typeof (v as SavedSecret).hmac === 'string' || typeof (v as { sha256?: unknown }).sha256 === 'string';
}

/**
 * Reads a saved plan back. Secret references are resolved from `secrets` and must still have the
 * value the plan was made with: a rotated secret makes the plan stale.
 */
export function parseSavedPlan(text: string, secrets: SecretSource, file: string): Plan {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not a saved plan: ${(err as Error).message}; make one with berth plan --env ENV --output json > ${file}`, { file });
  }
  const plan = raw as Plan;
  if (typeof raw !== 'object' || raw === null || plan.version !== 1 || !Array.isArray(plan.apps) || typeof plan.env !== 'string' || !plan.live) {
    throw new UsageError(`${file} is not a saved plan of this berth version (expected "version": 1 with env, apps and live); make one with berth plan --env ENV --output json`, { file });
  }
  // Every secret the plan holds (env values, a health check's password…) comes back as a SecretValue,
  // once its current value is known and matches the digest the plan was made with.
  for (const app of plan.apps) {
    const restore = (value: unknown, where: string): unknown => {
      if (isSavedSecret(value)) {
        if (!('hmac' in value)) {
          throw new BerthError('E_PLAN_STALE', `saved plan is stale: it was made by an older berth (unkeyed secret digest, secret "${value.secretRef}" of app ${app.app}); make a new plan`, { file, app: app.app });
        }
        const secret = new SecretValue(value.secretRef, secrets.get(value.secretRef), secrets.digestKey);
        if (!secret.resolved) throw new UsageError(`saved plan needs secret "${value.secretRef}" (app ${app.app}, ${where}); set ${secretEnvName(value.secretRef)} or pass --secrets-file`, { file, app: app.app });
        if (secret.digest().slice(0, DIGEST_CHARS) !== value.hmac) {
          throw new BerthError('E_PLAN_STALE', `saved plan is stale: secret "${value.secretRef}" (app ${app.app}) has changed since the plan was made (or the plan was made with another --state-dir, whose secret digest key differs); make a new plan`, { file, app: app.app });
        }
        return secret;
      }
      if (value && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) (value as Record<string, unknown>)[k] = restore(v, where ? `${where}.${k}` : k);
      }
      return value;
    };
    if (app.desired) restore(app.desired, '');
  }
  return plan;
}
