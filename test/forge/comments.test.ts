import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { partHeader, syncComments, upsertWith, type CommentApi, type ForgeComment } from '../../src/forge/comments.js';
import { ForgeError } from '../../src/forge/errors.js';

/** The token's user in these tests: berth's comments are the ones it wrote. */
const BOT = 'berth-bot';

/** An in-memory pull request's comments (by BOT unless they name another author), recording the writes. */
function fakeApi(initial: (Omit<ForgeComment, 'author'> & { author?: string })[] = [], maxChars = 1000): CommentApi & { comments: ForgeComment[]; writes: string[] } {
  let next = 100;
  const comments = initial.map((c) => ({ author: BOT, ...c }));
  const writes: string[] = [];
  return {
    forge: 'github',
    maxChars,
    comments,
    writes,
    self: async () => BOT,
    list: async () => comments.map((c) => ({ ...c })),
    create: async (body) => void (writes.push('create'), comments.push({ id: next++, body, author: BOT })),
    update: async (id, body) => void (writes.push(`update ${id}`), (comments.find((c) => c.id === id)!.body = body)),
    remove: async (id) => void (writes.push(`remove ${id}`), comments.splice(comments.findIndex((c) => c.id === id), 1)),
  };
}

const M = 'berth-plan:production';

describe('syncComments', () => {
  it('starts each part with its hidden header (1-based)', async () => {
    const api = fakeApi();
    await syncComments(api, M, ['a', 'b']);
    assert.deepEqual(api.comments.map((c) => c.body), [`<!-- ${M} part 1 -->\na`, `<!-- ${M} part 2 -->\nb`]);
    assert.equal(partHeader(M, 2), `<!-- ${M} part 2 -->\n`);
  });

  it('reads a body the forge gave back with CRLF line ends or without the trailing newline as unchanged', async () => {
    const api = fakeApi([{ id: 1, body: `<!-- ${M} part 1 -->\r\nline one\r\nline two` }]);
    assert.deepEqual(await syncComments(api, M, ['line one\nline two\n']), { created: 0, updated: 0, deleted: 0, unchanged: 1 });
    assert.deepEqual(api.writes, []);
  });

  it('deletes duplicates of a part (two berths raced) and parts beyond the new count; leaves people and other markers alone', async () => {
    const api = fakeApi([
      { id: 1, body: 'LGTM' },
      { id: 2, body: `<!-- ${M} part 1 -->\nold` },
      { id: 3, body: `<!-- ${M} part 1 -->\nold too` },
      { id: 4, body: `<!-- ${M} part 2 -->\nsecond` },
      { id: 5, body: '<!-- berth-plan:staging part 1 -->\nstaging' },
      { id: 6, body: `quoted: <!-- ${M} part 1 -->\n` },
    ]);
    assert.deepEqual(await syncComments(api, M, ['new']), { created: 0, updated: 1, deleted: 2, unchanged: 0 });
    assert.deepEqual(api.writes, ['update 2', 'remove 3', 'remove 4']);
    assert.deepEqual(api.comments.map((c) => c.id), [1, 2, 5, 6]);
  });

  it('never edits or deletes a comment someone else wrote with the marker, and writes its own', async () => {
    // Anyone may post a comment that starts like berth's: it is not berth's part, nor a duplicate of one.
    const api = fakeApi([
      { id: 1, body: `<!-- ${M} part 1 -->\nspoofed`, author: 'mallory' },
      { id: 2, body: `<!-- ${M} part 2 -->\nspoofed too`, author: 'mallory' },
    ]);
    assert.deepEqual(await syncComments(api, M, ['real']), { created: 1, updated: 0, deleted: 0, unchanged: 0 });
    assert.deepEqual(api.writes, ['create']);
    assert.deepEqual(api.comments.map((c) => [c.id, c.author]), [[1, 'mallory'], [2, 'mallory'], [100, BOT]]);
  });

  it('no parts removes every part of the marker', async () => {
    const api = fakeApi([{ id: 2, body: `<!-- ${M} part 1 -->\nx` }]);
    assert.deepEqual(await syncComments(api, M, []), { created: 0, updated: 0, deleted: 1, unchanged: 0 });
  });

  it('refuses a part over the limit (header included) and a marker that would break the header, before any call', async () => {
    const api = fakeApi([], 50);
    const header = partHeader(M, 1).length;
    await syncComments(api, M, ['x'.repeat(50 - header)]);
    await assert.rejects(syncComments(api, M, ['x'.repeat(51 - header)]), (err: unknown) => err instanceof ForgeError && String(err.code) === 'E_FORGE' && !err.transient && /part 1 has 51 characters; the forge takes at most 50/.test(err.message));
    await assert.rejects(syncComments(api, 'a --> b', ['x']), ForgeError);
    assert.deepEqual(api.writes, ['create']);
  });
});

describe('upsertWith', () => {
  it('syncs pull request `number` through the client\'s calls, asking for the token\'s user once (again after a failed ask)', async () => {
    const api = fakeApi();
    const calls: string[] = [];
    let asks = 0;
    const upsert = upsertWith('gitea', 1000, {
      self: async () => {
        if (++asks === 1) throw new Error('forge down');
        return BOT;
      },
      list: async (number) => (calls.push(`list ${number}`), api.list()),
      create: async (number, body) => (calls.push(`create ${number}`), api.create(body)),
      update: async (number, id, body) => (calls.push(`update ${number} ${id}`), api.update(id, body)),
      remove: async (number, id) => (calls.push(`remove ${number} ${id}`), api.remove(id)),
    });
    await assert.rejects(upsert(7, M, ['a']), /forge down/);
    assert.deepEqual(await upsert(7, M, ['a']), { created: 1, updated: 0, deleted: 0, unchanged: 0 });
    assert.deepEqual(await upsert(7, M, ['b']), { created: 0, updated: 1, deleted: 0, unchanged: 0 });
    assert.deepEqual(calls, ['list 7', 'create 7', 'list 7', 'update 7 100']);
    assert.equal(asks, 2);
  });
});
