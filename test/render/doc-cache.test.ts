import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DocCache } from '../../src/render/doc-cache.js';
import type { RepoFile } from '../../src/source/types.js';
import { appYaml } from '../support/repo.js';

// The Git source gives a file it left unread (over a limit) the same id as the read file: the
// cache must never answer one with the other's result.
describe('DocCache and unread files', () => {
  it('reports an unread file as a problem even after the same content was read, and the other way round', () => {
    const cache = new DocCache();
    const read: RepoFile = { path: 'apps/web.yaml', id: 'abc', content: appYaml('web') };
    const unread: RepoFile = { path: 'apps/web.yaml', id: 'abc', content: '', unread: { limit: 'repo', bytes: 100, total: 9 * 1024 * 1024 } };
    assert.ok(cache.check(read, 'App').doc);
    const refused = cache.check(unread, 'App');
    assert.equal(refused.doc, undefined);
    assert.equal(refused.problems[0]?.code, 'too-large');
    assert.ok(cache.check(read, 'App').doc, 'read again: parsed, not the stale problem');
  });
});
