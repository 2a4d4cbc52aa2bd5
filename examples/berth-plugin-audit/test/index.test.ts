// The plugin on its own: a fake context stands in for berth (no berth code is needed to test a
// plugin). berth's own CI loads the built package into a real `berth run`
// (test/integration/plugins.test.ts in berth's repository).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { ApplyHookContext, BerthEvent, EventType, PluginContext, PluginInstance } from '../src/berth.js';
import { AuditConfigError, create, DEFAULT_EVENTS } from '../src/index.js';

interface Fake {
  ctx: PluginContext;
  logs: { level: string; msg: string; fields?: Record<string, unknown> }[];
  abort: AbortController;
  /** What ctx.now() answers. */
  clock: { now: number };
}

function fakeContext(config: Record<string, unknown>, now = Date.parse('2026-12-01T12:00:00Z')): Fake {
  const logs: Fake['logs'] = [];
  const abort = new AbortController();
  const clock = { now };
  const record = (level: string) => (msg: string, fields?: Record<string, unknown>) => void logs.push({ level, msg, ...(fields && { fields }) });
  return {
    ctx: { name: 'audit', env: 'production', config, log: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') }, signal: abort.signal, now: () => clock.now },
    logs,
    abort,
    clock,
  };
}

let seq = 0;
function event(type: EventType, extra: Record<string, unknown> = {}): BerthEvent {
  return { type, seq: ++seq, time: new Date().toISOString(), env: 'production', ...extra };
}

const HOOK: ApplyHookContext = { env: 'production', revision: 'main@sha1:' + 'a'.repeat(40), trigger: 'webhook', changes: [{ app: 'web', actions: ['replace'] }] };

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-audit-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function lines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function started(config: Record<string, unknown>, now?: number): Promise<{ plugin: PluginInstance; fake: Fake }> {
  const fake = fakeContext(config, now);
  const plugin = create(fake.ctx);
  await plugin.start?.();
  return { plugin, fake };
}

describe('audit plugin: event handler', () => {
  it('appends each selected event as one JSON line, as berth sent it', async () => {
    const file = path.join(tempDir(), 'logs/audit.jsonl');
    const { plugin } = await started({ file });
    assert.deepEqual(plugin.eventHandler?.events, DEFAULT_EVENTS, 'berth filters by the default selection');
    const finished = event('reconcile.finished', { revision: 'main@sha1:1', result: 'Succeeded' });
    await plugin.eventHandler!.handle(event('reconcile.started', { revision: 'main@sha1:1' }));
    await plugin.eventHandler!.handle(event('app.progress', { app: 'web', phase: 'start' }));
    await plugin.eventHandler!.handle(finished);
    await plugin.stop?.();
    const written = lines(file);
    assert.deepEqual(written.map((l) => l.type), ['reconcile.started', 'reconcile.finished'], 'app.progress is not selected by default');
    assert.deepEqual(written[1], { ...finished });
  });

  const selections: { events: string[]; sent: EventType[]; kept: EventType[] }[] = [
    { events: ['drift.detected'], sent: ['drift.detected', 'drift.healed', 'reconcile.started'], kept: ['drift.detected'] },
    { events: ['drift.*'], sent: ['drift.detected', 'drift.healed', 'reconcile.started'], kept: ['drift.detected', 'drift.healed'] },
    { events: ['*'], sent: ['app.progress', 'status.changed'], kept: ['app.progress', 'status.changed'] },
  ];
  for (const { events, sent, kept } of selections) {
    it(`events: ${JSON.stringify(events)} keeps ${kept.join(', ')}`, async () => {
      const file = path.join(tempDir(), 'audit.jsonl');
      const { plugin } = await started({ file, events });
      for (const type of sent) await plugin.eventHandler!.handle(event(type));
      assert.deepEqual(lines(file).map((l) => l.type), kept);
    });
  }

  it('rotates at maxBytes: file.1 is the newest old file, `keep` are kept', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    const { plugin } = await started({ file, events: ['*'], maxBytes: 300, keep: 2 });
    for (let i = 0; i < 12; i++) await plugin.eventHandler!.handle(event('status.changed', { n: i, pad: 'x'.repeat(40) }));
    const files = readdirSync(path.dirname(file)).sort();
    assert.deepEqual(files, ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2']);
    for (const f of files) assert.ok(readFileSync(path.join(path.dirname(file), f)).length <= 300, `${f} is at most maxBytes`);
    const newest = lines(file).map((l) => l.n as number);
    const previous = lines(`${file}.1`).map((l) => l.n as number);
    assert.equal(newest.at(-1), 11);
    assert.equal(previous.at(-1), newest[0]! - 1, 'file.1 ends where the current file starts');
  });

  it('keep: 0 caps the file: lines past maxBytes are dropped, health says so, writing resumes once the file is moved away', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    const { plugin, fake } = await started({ file, events: ['*'], maxBytes: 200, keep: 0 });
    for (let i = 0; i < 6; i++) await plugin.eventHandler!.handle(event('status.changed', { n: i, pad: 'x'.repeat(40) }));
    assert.ok(readFileSync(file).length <= 200);
    const full = await plugin.health!();
    assert.equal(full.ok, false);
    assert.match(full.message ?? '', /is full \(maxBytes 200, keep 0\): \d+ lines dropped/);
    assert.equal(fake.logs.filter((l) => l.msg.startsWith('audit file full')).length, 1, 'warned once');

    rmSync(file);
    await plugin.eventHandler!.handle(event('status.changed', { n: 99 }));
    assert.deepEqual(lines(file).map((l) => l.n), [99]);
    assert.equal((await plugin.health!()).ok, true);
  });

  it('continues an existing file: its size counts toward maxBytes', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    writeFileSync(file, `${JSON.stringify({ type: 'old', pad: 'y'.repeat(200) })}\n`);
    const { plugin } = await started({ file, events: ['*'], maxBytes: 250, keep: 1 });
    await plugin.eventHandler!.handle(event('status.changed', { pad: 'x'.repeat(40) }));
    assert.deepEqual(lines(`${file}.1`).map((l) => l.type), ['old']);
    assert.deepEqual(lines(file).map((l) => l.type), ['status.changed']);
  });

  it('a line it cannot write fails the call (berth counts it) and turns health not ok', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'audit.jsonl');
    const { plugin } = await started({ file });
    // Its folder replaced by a plain file: ENOTDIR even for root.
    rmSync(dir, { recursive: true });
    writeFileSync(dir, 'not a folder');
    await assert.rejects(async () => plugin.eventHandler!.handle(event('reconcile.started')), /cannot write .*audit\.jsonl: ENOTDIR/);
    const health = await plugin.health!();
    assert.equal(health.ok, false);
    assert.match(health.message ?? '', /cannot write .*audit\.jsonl: ENOTDIR/);
  });
});

describe('audit plugin: health', () => {
  it('ok while the file (or, before the first line, its folder) is writable', async () => {
    const file = path.join(tempDir(), 'audit.jsonl');
    const { plugin } = await started({ file });
    assert.deepEqual(await plugin.health!(), { ok: true, message: `${file} is writable (0 bytes)` });
  });

  it('not ok when the file cannot be written, naming the file and the error', async () => {
    const parent = path.join(tempDir(), 'plain-file');
    writeFileSync(parent, '');
    const plugin = create(fakeContext({ file: path.join(parent, 'audit.jsonl') }).ctx);
    const health = await plugin.health!();
    assert.equal(health.ok, false);
    assert.match(health.message ?? '', /plain-file\/audit\.jsonl is not writable: ENOTDIR/);
  });

  it('start fails when the folder cannot be made (berth shows the error as the plugin\'s lastError)', async () => {
    const parent = path.join(tempDir(), 'plain-file');
    writeFileSync(parent, '');
    const plugin = create(fakeContext({ file: path.join(parent, 'sub/audit.jsonl') }).ctx);
    await assert.rejects(Promise.resolve(plugin.start?.()), { code: 'ENOTDIR' });
  });
});

describe('audit plugin: freeze windows (preApply)', () => {
  const freeze = [{ from: '2026-12-24T00:00:00Z', until: '2026-12-27T00:00:00Z', reason: 'holiday freeze' }];
  const cases: { at: string; veto: boolean }[] = [
    { at: '2026-12-23T23:59:59Z', veto: false },
    { at: '2026-12-24T00:00:00Z', veto: true },
    { at: '2026-12-26T23:59:59Z', veto: true },
    { at: '2026-12-27T00:00:00Z', veto: false },
  ];
  for (const { at, veto } of cases) {
    it(`${veto ? 'vetoes' : 'allows'} an apply at ${at}`, async () => {
      const file = path.join(tempDir(), 'audit.jsonl');
      const { plugin } = await started({ file, freeze }, Date.parse(at));
      const verdict = await plugin.hooks!.preApply!(HOOK);
      if (!veto) return assert.equal(verdict, undefined);
      assert.deepEqual(verdict, { veto: 'frozen until 2026-12-27T00:00:00Z: holiday freeze' });
      const [line] = lines(file);
      assert.deepEqual(line, { type: 'audit.veto', time: new Date(Date.parse(at)).toISOString(), env: 'production', revision: HOOK.revision, trigger: 'webhook', changes: HOOK.changes, veto: verdict!.veto });
    });
  }

  it('still vetoes when the veto cannot be recorded', async () => {
    const dir = tempDir();
    const { plugin, fake } = await started({ file: path.join(dir, 'audit.jsonl'), freeze }, Date.parse('2026-12-25T00:00:00Z'));
    rmSync(dir, { recursive: true });
    writeFileSync(dir, '');
    assert.deepEqual(await plugin.hooks!.preApply!(HOOK), { veto: 'frozen until 2026-12-27T00:00:00Z: holiday freeze' });
    assert.equal(fake.logs.filter((l) => l.level === 'warn' && l.msg === 'cannot record a veto').length, 1);
  });
});

describe('audit plugin: config the schema cannot check', () => {
  const bad: { name: string; config: Record<string, unknown>; field: string }[] = [
    { name: 'a window that ends before it starts', config: { file: '/tmp/a.jsonl', freeze: [{ from: '2026-12-27T00:00:00Z', until: '2026-12-24T00:00:00Z', reason: 'x' }] }, field: 'freeze[0].until' },
    { name: 'a window that is not a date', config: { file: '/tmp/a.jsonl', freeze: [{ from: 'christmas', until: '2026-12-24T00:00:00Z', reason: 'x' }] }, field: 'freeze[0].from' },
    { name: 'a relative file', config: { file: 'audit.jsonl' }, field: 'file' },
    { name: 'an unknown event type', config: { file: '/tmp/a.jsonl', events: ['reconcile.done'] }, field: 'events[0]' },
  ];
  for (const { name, config, field } of bad) {
    it(`refuses ${name} (create throws, naming config.${field})`, () => {
      assert.throws(
        () => create(fakeContext(config).ctx),
        (err: unknown) => err instanceof AuditConfigError && err.code === 'E_AUDIT_CONFIG' && err.message.startsWith(`plugin audit: config.${field} `),
      );
    });
  }
});
