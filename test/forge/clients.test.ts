import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ForgeError } from '../../src/forge/errors.js';
import { GiteaForge } from '../../src/forge/gitea/client.js';
import { GitHubForge } from '../../src/forge/github/client.js';
import { GitLabForge } from '../../src/forge/gitlab/client.js';
import type { Forge, ForgeClientOptions, RemoteForgeName } from '../../src/forge/types.js';
import { VERSION } from '../../src/version.js';
import { startForgeServer, type ForgeServer } from '../support/forge-server.js';

const CLIENTS: Record<RemoteForgeName, (o: ForgeClientOptions) => Forge> = { github: (o) => new GitHubForge(o), gitea: (o) => new GiteaForge(o), gitlab: (o) => new GitLabForge(o) };
const SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const STATES: Record<RemoteForgeName, Record<string, string>> = {
  github: { pending: 'pending', success: 'success', failure: 'failure', error: 'error' },
  gitea: { pending: 'pending', success: 'success', failure: 'failure', error: 'error' },
  gitlab: { pending: 'running', success: 'success', failure: 'failed', error: 'failed' },
};
const STATUS_PATH: Record<RemoteForgeName, string> = {
  github: `/api/v3/repos/acme/config/statuses/${SHA}`,
  gitea: `/api/v1/repos/acme/config/statuses/${SHA}`,
  gitlab: `/api/v4/projects/acme%2Fplatform%2Fconfig/statuses/${SHA}`,
};

async function rejects(p: Promise<unknown>): Promise<ForgeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ForgeError, `not a ForgeError: ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

for (const kind of ['github', 'gitea', 'gitlab'] as const) {
  describe(`${kind} client against a fake ${kind}`, () => {
    let server: ForgeServer;
    let forge: Forge;
    const make = (over: Partial<ForgeClientOptions> = {}): Forge => CLIENTS[kind]({ baseUrl: server.url, repo: server.repo, token: server.token, ...over });
    before(async () => {
      // Two items a page, so three of anything takes two pages.
      server = await startForgeServer(kind, { maxPerPage: 2 });
      forge = make();
    });
    after(() => server.stop());

    it('setStatus posts to the documented path with the documented fields and states', async () => {
      const from = server.requests.length;
      for (const state of ['pending', 'success', 'failure', 'error'] as const) {
        await forge.setStatus({ sha: SHA, context: 'berth/production', state, description: `state ${state}`, targetUrl: 'https://berth.example.com/api/v1/status' });
      }
      const sent = server.requests.slice(from);
      assert.deepEqual(sent.map((r) => `${r.method} ${r.path}`), Array(4).fill(`POST ${STATUS_PATH[kind]}`));
      const nameField = kind === 'gitlab' ? 'name' : 'context';
      assert.deepEqual(sent[1]!.body, { state: STATES[kind].success, [nameField]: 'berth/production', description: 'state success', target_url: 'https://berth.example.com/api/v1/status' });
      assert.deepEqual(server.statuses(SHA).map((s) => s.state), ['pending', 'success', 'failure', 'error'].map((s) => STATES[kind][s]));
      assert.equal(server.statuses(SHA)[0]!.context, 'berth/production');
    });

    it('setStatus leaves target_url out when there is none', async () => {
      const from = server.requests.length;
      await forge.setStatus({ sha: SHA, context: 'berth/staging', state: 'success', description: 'in sync' });
      assert.equal(Object.hasOwn(server.requests[from]!.body as object, 'target_url'), false);
    });

    it('pullRequestsFor lists the open pull requests of a branch in this repository (all pages, no forks)', async () => {
      server.addPullRequest({ number: 11, headBranch: 'feature/x', headSha: 'b'.repeat(40), baseBranch: 'main' });
      server.addPullRequest({ number: 12, headBranch: 'other', headSha: 'c'.repeat(40), baseBranch: 'main' });
      server.addPullRequest({ number: 13, headBranch: 'feature/x', headSha: 'd'.repeat(40), baseBranch: 'main', fork: true });
      server.addPullRequest({ number: 14, headBranch: 'feature/x', headSha: 'e'.repeat(40), baseBranch: 'staging' });
      const prs = await forge.pullRequestsFor('feature/x');
      assert.deepEqual(
        prs.map(({ url, ...rest }) => (assert.ok(url), rest)),
        [
          { number: 11, headBranch: 'feature/x', headSha: 'b'.repeat(40), baseBranch: 'main' },
          { number: 14, headBranch: 'feature/x', headSha: 'e'.repeat(40), baseBranch: 'staging' },
        ],
      );
      assert.deepEqual(await forge.pullRequestsFor('nope'), []);
    });

    it('upsertComment twice leaves one comment, updated in place, untouched when unchanged', async () => {
      server.addPullRequest({ number: 21, headBranch: 'c1', headSha: 'f'.repeat(40), baseBranch: 'main' });
      assert.deepEqual(await forge.upsertComment(21, 'berth-plan:production', ['plan v1']), { created: 1, updated: 0, deleted: 0, unchanged: 0 });
      const [first] = server.comments(21);
      assert.equal(first!.body, '<!-- berth-plan:production part 1 -->\nplan v1');
      const before = server.requests.length;
      assert.deepEqual(await forge.upsertComment(21, 'berth-plan:production', ['plan v1']), { created: 0, updated: 0, deleted: 0, unchanged: 1 });
      assert.ok(server.requests.slice(before).every((r) => r.method === 'GET'), 'an unchanged comment is not written');
      assert.deepEqual(await forge.upsertComment(21, 'berth-plan:production', ['plan v2']), { created: 0, updated: 1, deleted: 0, unchanged: 0 });
      assert.deepEqual(server.comments(21), [{ id: first!.id, body: '<!-- berth-plan:production part 1 -->\nplan v2', author: server.login }]);
    });

    it('a plan in 3 parts, then 2, deletes the third; other markers are left alone', async () => {
      server.addPullRequest({ number: 22, headBranch: 'c2', headSha: '1'.repeat(40), baseBranch: 'main' });
      await forge.upsertComment(22, 'berth-plan:staging', ['staging plan']);
      assert.deepEqual(await forge.upsertComment(22, 'berth-plan:production', ['one', 'two', 'three']), { created: 3, updated: 0, deleted: 0, unchanged: 0 });
      assert.equal(server.comments(22).length, 4);
      assert.deepEqual(await forge.upsertComment(22, 'berth-plan:production', ['one', 'two!']), { created: 0, updated: 1, deleted: 1, unchanged: 1 });
      assert.deepEqual(server.comments(22).map((c) => c.body), ['<!-- berth-plan:staging part 1 -->\nstaging plan', '<!-- berth-plan:production part 1 -->\none', '<!-- berth-plan:production part 2 -->\ntwo!']);
    });

    it('a comment someone else wrote with the marker is neither updated nor deleted; berth writes its own', async () => {
      server.addPullRequest({ number: 23, headBranch: 'c3', headSha: '2'.repeat(40), baseBranch: 'main' });
      const first = server.addComment(23, '<!-- berth-plan:production part 1 -->\nspoofed before berth', 'mallory');
      const from = server.requests.length;
      assert.deepEqual(await forge.upsertComment(23, 'berth-plan:production', ['plan v1']), { created: 1, updated: 0, deleted: 0, unchanged: 0 });
      const later = server.addComment(23, '<!-- berth-plan:production part 1 -->\nspoofed after berth', 'mallory');
      assert.deepEqual(await forge.upsertComment(23, 'berth-plan:production', ['plan v2']), { created: 0, updated: 1, deleted: 0, unchanged: 0 });
      assert.deepEqual(server.comments(23).map((c) => [c.author, c.body]), [
        ['mallory', '<!-- berth-plan:production part 1 -->\nspoofed before berth'],
        [server.login, '<!-- berth-plan:production part 1 -->\nplan v2'],
        ['mallory', '<!-- berth-plan:production part 1 -->\nspoofed after berth'],
      ]);
      const writes = server.requests.slice(from).filter((r) => r.method !== 'GET');
      assert.ok(writes.every((r) => !r.path.endsWith(`/${first.id}`) && !r.path.endsWith(`/${later.id}`)), writes.map((r) => `${r.method} ${r.path}`).join('\n'));
      // The client asked who its token is once, for all the syncs above.
      assert.equal(server.requests.filter((r) => r.path === `${new URL(server.url).pathname}/user`).length, 1);
    });

    it('refuses a part longer than the forge takes, before sending anything', async () => {
      const before = server.requests.length;
      const err = await rejects(forge.upsertComment(21, 'berth-plan:production', ['x'.repeat(forge.maxCommentChars)]));
      assert.equal(err.transient, false);
      assert.equal(server.requests.length, before);
    });

    it('5xx, 429 and 408 are transient, once each (no retries of its own); the error never carries the token', async () => {
      for (const status of [500, 502, 503, 429, 408]) {
        const before = server.requests.length;
        server.failNext(1, status, { message: `proxy echo: Authorization: token ${server.token}; PRIVATE-TOKEN: ${server.token}` });
        const err = await rejects(forge.setStatus({ sha: SHA, context: 'berth/x', state: 'success', description: 'd' }));
        assert.equal(err.code, 'E_FORGE');
        assert.equal(err.transient, true, `HTTP ${status}`);
        assert.deepEqual({ forge: err.context.forge, operation: err.context.operation, status: err.context.status }, { forge: kind, operation: 'set status', status });
        assert.equal(server.requests.length, before + 1, `HTTP ${status} was retried by the client library`);
        const everything = `${err.message}\n${inspect(err, { depth: 10 })}\n${JSON.stringify(err.context)}`;
        assert.ok(!everything.includes(server.token), everything);
        assert.match(everything, /\[REDACTED\]/);
      }
    });

    it('a 403 for an exhausted rate limit is transient; another 403 is not', async () => {
      server.failNext(1, 403, { message: 'API rate limit exceeded for installation ID 4242.', documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api' });
      assert.equal((await rejects(forge.pullRequestsFor('main'))).transient, true);
      server.failNext(1, 403, { message: 'Resource not accessible by integration' });
      const denied = await rejects(forge.pullRequestsFor('main'));
      assert.equal(denied.transient, false);
      assert.match(denied.message, /needs write access/);
    });

    it('a wrong token (401) and an unknown repository (404) are permanent', async () => {
      const badToken = make({ token: 'wrong-token-value' });
      const e401 = await rejects(badToken.setStatus({ sha: SHA, context: 'berth/x', state: 'success', description: 'd' }));
      assert.deepEqual([e401.transient, e401.context.status], [false, 401]);
      assert.ok(!inspect(e401, { depth: 10 }).includes('wrong-token-value'));
      const elsewhere = make({ repo: 'acme/nope' });
      const e404 = await rejects(elsewhere.pullRequestsFor('main'));
      assert.deepEqual([e404.transient, e404.context.status, e404.context.operation], [false, 404, 'list pull requests']);
    });

    it('no answer (connection refused, timeout) is transient', async () => {
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((r) => closed.close(r));
      const refused = await rejects(make({ baseUrl: `http://127.0.0.1:${port}/api` }).setStatus({ sha: SHA, context: 'c', state: 'pending', description: 'd' }));
      assert.equal(refused.transient, true, refused.message);
      assert.equal(refused.context.status, undefined);

      const silent = http.createServer(() => {});
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      try {
        const slow = make({ baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api`, timeoutMs: 200 });
        const t0 = Date.now();
        const timedOut = await rejects(slow.setStatus({ sha: SHA, context: 'c', state: 'pending', description: 'd' }));
        assert.equal(timedOut.transient, true, timedOut.message);
        assert.ok(Date.now() - t0 < 3000);
      } finally {
        silent.closeAllConnections();
        await new Promise((r) => silent.close(r));
      }
    });

    // Last: it looks at every request the tests above made.
    it('sent the token in the Authorization header only, and named itself berth with its version', async () => {
      assert.equal(VERSION, (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version, 'src/version.ts and package.json disagree');
      assert.ok(server.requests.some((r) => r.method === 'PATCH' || r.method === 'PUT') && server.requests.some((r) => r.method === 'DELETE'));
      for (const r of server.requests) {
        // One request above used a wrong token on purpose: every request carries one, in this header.
        assert.match(r.headers.authorization ?? '', kind === 'gitlab' ? /^Bearer \S+$/ : /^token \S+$/, `${r.method} ${r.path}`);
        const elsewhere = JSON.stringify({ path: r.path, query: r.query, body: r.body, headers: { ...r.headers, authorization: '' } });
        assert.ok(!elsewhere.includes(server.token), `token outside Authorization in ${r.method} ${r.path}`);
        assert.ok((r.headers['user-agent'] ?? '').startsWith(`berth/${VERSION}`), r.headers['user-agent']);
      }
    });
  });
}

describe('github: an installation token (Actions, a GitHub App)', () => {
  it('learns its bot login from GraphQL when /user is refused, and keeps to its own comments', async () => {
    const server = await startForgeServer('github', { appToken: true });
    try {
      const forge = new GitHubForge({ baseUrl: server.url, repo: server.repo, token: server.token });
      server.addPullRequest({ number: 5, headBranch: 'f', headSha: '3'.repeat(40), baseBranch: 'main' });
      server.addComment(5, '<!-- berth-plan:production part 1 -->\nspoofed', 'mallory');
      assert.deepEqual(await forge.upsertComment(5, 'berth-plan:production', ['plan']), { created: 1, updated: 0, deleted: 0, unchanged: 0 });
      assert.deepEqual(await forge.upsertComment(5, 'berth-plan:production', ['plan']), { created: 0, updated: 0, deleted: 0, unchanged: 1 });
      assert.deepEqual(server.comments(5).map((c) => c.author), ['mallory', 'berth-app[bot]']);
      assert.deepEqual(server.requests.filter((r) => /\/user$|graphql$/.test(r.path)).map((r) => `${r.method} ${r.path}`), ['GET /api/v3/user', 'POST /api/graphql']);
    } finally {
      await server.stop();
    }
  });
});

describe('gitlab: status transitions', () => {
  it('setting the state a status already has is done, not an error (GitLab answers 400)', async () => {
    const server = await startForgeServer('gitlab');
    try {
      const forge = new GitLabForge({ baseUrl: server.url, repo: server.repo, token: server.token });
      const status = { sha: SHA, context: 'berth/production', state: 'pending', description: 'applying 2 apps' } as const;
      await forge.setStatus(status);
      await forge.setStatus(status);
      const answers = server.requests.filter((r) => r.method === 'POST');
      assert.equal(answers.length, 2);
      assert.deepEqual(server.statuses(SHA).map((s) => s.state), ['running']);
      await forge.setStatus({ ...status, state: 'success', description: 'applied 2 apps' });
      assert.deepEqual(server.statuses(SHA).map((s) => s.state), ['running', 'success']);
    } finally {
      await server.stop();
    }
  });

  it('accepts the host or the API base as its URL, and encodes a nested project path', async () => {
    const server = await startForgeServer('gitlab', { repo: 'a/b/c/d' });
    try {
      for (const baseUrl of [server.url, server.url.replace(/\/api\/v4$/, '')]) {
        await new GitLabForge({ baseUrl, repo: 'a/b/c/d', token: server.token }).setStatus({ sha: SHA, context: 'x', state: 'success', description: 'd' });
      }
      assert.deepEqual(server.requests.map((r) => r.path), Array(2).fill(`/api/v4/projects/a%2Fb%2Fc%2Fd/statuses/${SHA}`));
    } finally {
      await server.stop();
    }
  });
});
