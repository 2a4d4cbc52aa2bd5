import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { HistoryStore } from '../../src/report/history.js';
import { worstHealth } from '../../src/status/vocabulary.js';

const record = (result: 'Succeeded' | 'Failed') => ({ env: 'prod', revision: `main@sha1:${'a'.repeat(40)}`, trigger: 'poll' as const, startedAt: 'x', finishedAt: 'y', durationMs: 1, result, apps: [] });

describe('history store', () => {
  it('appends, lists newest first, survives a torn write, keeps ids increasing', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-hist-'));
    const store = new HistoryStore(dir, 'prod');
    await store.append(record('Succeeded'));
    await store.append(record('Failed'));
    appendFileSync(store.file, '\n{"id": 3, "env": "pr'); // a kill mid-write
    const reopened = new HistoryStore(dir, 'prod');
    const third = await reopened.append(record('Succeeded'));
    const list = await reopened.list();
    assert.deepEqual(list.map((r) => r.id), [3, 2, 1]);
    assert.equal(third.id, 3);
    assert.equal(list[1]!.result, 'Failed');
  });

  it('status is written atomically and read back', async () => {
    const store = new HistoryStore(mkdtempSync(path.join(os.tmpdir(), 'berth-hist-')), 'prod');
    assert.equal(await store.readStatus(), undefined);
    await store.writeStatus({ env: 'prod', syncStatus: 'Synced', health: 'Healthy', apps: [], updatedAt: 'now' });
    assert.equal((await store.readStatus())?.syncStatus, 'Synced');
  });

  it('environment health is the worst of its apps', () => {
    assert.equal(worstHealth([]), 'Healthy');
    assert.equal(worstHealth(['Healthy', 'Progressing', 'Suspended']), 'Progressing');
    assert.equal(worstHealth(['Missing', 'Degraded', 'Healthy']), 'Degraded');
  });
});
