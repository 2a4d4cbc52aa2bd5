import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { secretSourceFor } from '../../src/cli/context.js';
import { BerthError } from '../../src/errors.js';
import { parseSavedPlan, serializePlan } from '../../src/plan/saved.js';
import type { Plan } from '../../src/plan/types.js';
import { containerFields, renderEnvironment } from '../../src/render/render.js';
import { DIGEST_KEY_FILE, envSecretSource, loadDigestKey, SecretValue, type SecretSource } from '../../src/render/secrets.js';
import { appYaml, memoryRevision, REPO_YAML, ROOT } from '../support/repo.js';

// Hardening (#11 item 18): the secret digest in the berth.spec label and in saved plans is an HMAC
// with a per-installation key from the state dir, so a guessed password cannot be confirmed offline
// from `docker inspect`.

const VALUE = 'hunter2';
const KEY_A = Buffer.alloc(32, 0xa1);
const KEY_B = Buffer.alloc(32, 0xb2);
const keyed = (digestKey?: Uint8Array): SecretSource => ({ ...envSecretSource({ BERTH_SECRET_DB_PASSWORD: VALUE }), ...(digestKey && { digestKey }) });
const REVISION = memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/api.yaml': appYaml('api', '  env: { DB_PASSWORD: { secretRef: db-password } }\n') });

/** The env entry of the app's berth.spec label, as containers carry it. */
function labelOf(secrets: SecretSource): string {
  const result = renderEnvironment(REVISION, 'production', { secrets });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  const api = result.state.apps[0]!;
  return (containerFields(api.name, api.labels, api.spec).env as Record<string, string>).DB_PASSWORD!;
}

const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'berth-digest-'));

describe('secret digest: keyed', () => {
  it('the label digest differs under two keys, is stable under one, and is not a plain sha256 of the value', () => {
    const a = labelOf(keyed(KEY_A));
    const b = labelOf(keyed(KEY_B));
    assert.match(a, /^secret:db-password:hmac:[0-9a-f]{16}$/);
    assert.notEqual(a, b);
    assert.equal(labelOf(keyed(KEY_A)), a, 'one key, one digest (plan and apply agree)');
    const digest = a.split(':').at(-1)!;
    for (const unkeyed of [createHash('sha256').update(VALUE).digest('hex'), createHash('sha256').update(`berth-secret:db-password:${VALUE}`).digest('hex')]) {
      assert.ok(!unkeyed.startsWith(digest), 'an unkeyed sha256 of the value does not confirm it');
    }
  });

  it('without a key: a random key of the process, never an unkeyed digest', () => {
    const label = labelOf(keyed());
    assert.match(label, /^secret:db-password:hmac:[0-9a-f]{16}$/);
    assert.notEqual(label, labelOf(keyed(KEY_A)));
    assert.equal(label, labelOf(keyed()), 'one process, one key');
  });

  it('a saved plan carries the keyed digest, and is stale under another key or from before the keyed digest', () => {
    const plan = { version: 1, env: 'production', apps: [{ app: 'api', desired: { template: { env: { DB_PASSWORD: new SecretValue('db-password', VALUE, KEY_A) } } } }], live: {} } as unknown as Plan;
    const text = serializePlan(plan);
    assert.ok(!text.includes(VALUE));
    const saved = JSON.parse(text) as { apps: { desired: { template: { env: Record<string, unknown> } } }[] };
    assert.deepEqual(Object.keys(saved.apps[0]!.desired.template.env.DB_PASSWORD as object), ['secretRef', 'hmac']);
    const back = parseSavedPlan(text, keyed(KEY_A), 'plan.json');
    assert.equal((back.apps[0]!.desired!.template.env as Record<string, SecretValue>).DB_PASSWORD!.reveal(), VALUE);
    const stale = (source: SecretSource, body = text) => assert.throws(() => parseSavedPlan(body, source, 'plan.json'), (err: unknown) => err instanceof BerthError && err.code === 'E_PLAN_STALE');
    stale(keyed(KEY_B));
    stale(keyed(KEY_A), text.replace('"hmac"', '"sha256"'));
  });
});

describe('secret digest key: in the state dir', () => {
  it('is created on first use (32 bytes, mode 0600) and reused', () => {
    const dir = path.join(tmp(), 'state');
    assert.equal(loadDigestKey(dir, false), undefined, 'without create, nothing is made');
    assert.ok(!existsSync(path.join(dir, DIGEST_KEY_FILE)));
    const key = loadDigestKey(dir, true)!;
    const file = path.join(dir, DIGEST_KEY_FILE);
    assert.equal(key.length, 32);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(loadDigestKey(dir, true), key);
    assert.deepEqual(loadDigestKey(dir, false), key);
    assert.deepEqual(readFileSync(file), Buffer.from(key));
    rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  it('refuses a key file of the wrong size, naming it', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, DIGEST_KEY_FILE), 'short');
    assert.throws(() => loadDigestKey(dir, true), (err: unknown) => err instanceof BerthError && err.code === 'E_USAGE' && err.message.includes(DIGEST_KEY_FILE));
    rmSync(dir, { recursive: true, force: true });
  });

  it('processes starting at once end up with one key', async () => {
    const dir = tmp();
    const script = `import { loadDigestKey } from ${JSON.stringify(path.join(ROOT, 'src/render/secrets.ts'))}; process.stdout.write(Buffer.from(loadDigestKey(${JSON.stringify(dir)}, true)).toString('hex'));`;
    const run = promisify(execFile);
    const keys = await Promise.all(Array.from({ length: 4 }, () => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT }).then((r) => r.stdout)));
    assert.equal(new Set(keys).size, 1, keys.join(' '));
    assert.equal(keys[0], readFileSync(path.join(dir, DIGEST_KEY_FILE)).toString('hex'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('plan, apply and run key with the state dir key; render only reads it; validate uses none', () => {
    const stateDir = path.join(tmp(), 'state');
    assert.equal(secretSourceFor({ stateDir }, 'existing').digestKey, undefined, 'render makes no key');
    assert.equal(secretSourceFor({ stateDir }, 'none').digestKey, undefined);
    assert.ok(!existsSync(stateDir));
    const planKey = secretSourceFor({ stateDir }).digestKey;
    assert.equal(planKey?.length, 32);
    assert.deepEqual(secretSourceFor({ stateDir }).digestKey, planKey, 'apply after plan: the same key');
    assert.deepEqual(secretSourceFor({ stateDir }, 'existing').digestKey, planKey);
    rmSync(path.dirname(stateDir), { recursive: true, force: true });
  });
});
