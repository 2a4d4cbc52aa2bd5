import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRepoUrl, selectForge, type SelectForgeOptions } from '../../src/forge/select.js';
import type { NotesStore } from '../../src/forge/local/git-notes.js';
import { startForgeServer } from '../support/forge-server.js';

const localGit: NotesStore & { remote: boolean } = { remote: false, readNote: async () => undefined, writeNote: async () => {} };
const clonedGit = { ...localGit, remote: true };
const TOKENS = { GITHUB_TOKEN: 'ghp_envtoken', GITEA_TOKEN: 'gitea_envtoken', GITLAB_TOKEN: 'glpat-envtoken' };

describe('parseRepoUrl', () => {
  const cases: [string, { host: string; path: string } | undefined][] = [
    ['https://github.com/acme/config.git', { host: 'github.com', path: '/acme/config.git' }],
    ['https://x-access-token:secret@GitHub.com/acme/config', { host: 'github.com', path: '/acme/config' }],
    ['ssh://git@gitlab.com:2222/acme/platform/config.git', { host: 'gitlab.com', path: '/acme/platform/config.git' }],
    ['git@codeberg.org:acme/config.git', { host: 'codeberg.org', path: '/acme/config.git' }],
    ['/srv/config', undefined],
    ['./config', undefined],
    ['C:\\repos\\config', undefined],
  ];
  for (const [input, expected] of cases) it(input, () => assert.deepEqual(parseRepoUrl(input), expected));
});

describe('selectForge', () => {
  // [name, options, env, expected forge name or undefined, note pattern]
  const cases: [string, SelectForgeOptions, Record<string, string>, string | undefined, RegExp][] = [
    ['github.com URL + GITHUB_TOKEN', { repo: 'https://github.com/acme/config.git' }, TOKENS, 'github', /on GitHub: acme\/config via https:\/\/api\.github\.com \(token from GITHUB_TOKEN\)/],
    ['scp-like github URL', { repo: 'git@github.com:acme/config.git' }, TOKENS, 'github', /acme\/config via https:\/\/api\.github\.com/],
    ['gitlab.com, nested groups', { repo: 'https://gitlab.com/acme/platform/config.git' }, TOKENS, 'gitlab', /on GitLab: acme\/platform\/config via https:\/\/gitlab\.com \(token from GITLAB_TOKEN\)/],
    ['codeberg.org is gitea', { repo: 'https://codeberg.org/acme/config' }, TOKENS, 'gitea', /on Gitea: acme\/config via https:\/\/codeberg\.org\/api\/v1/],
    ['a host named gitea', { repo: 'https://gitea.internal.example/ops/config.git' }, TOKENS, 'gitea', /ops\/config via https:\/\/gitea\.internal\.example\/api\/v1/],
    ['--forge-token wins over the environment', { repo: 'https://github.com/acme/config', forgeToken: 'ghp_flag' }, TOKENS, 'github', /token from --forge-token/],
    ['remote forge without a token: off, and how to turn it on', { repo: 'https://github.com/acme/config' }, {}, undefined, /commit statuses off: no GitHub token; set --forge-token \(or BERTH_FORGE_TOKEN\) or GITHUB_TOKEN/],
    ['unknown host: off, pass --forge', { repo: 'https://git.example.com/acme/config.git', git: clonedGit }, TOKENS, undefined, /git\.example\.com is not a forge berth recognises; pass --forge github\|gitea\|gitlab/],
    ['a local Git repository: git notes', { repo: '/srv/config', git: localGit }, TOKENS, 'local', /git notes in refs\/notes\/berth/],
    ['a plain directory: off', { repo: '/srv/config' }, TOKENS, undefined, /\/srv\/config is not a Git repository/],
    ['--forge gitea on an unknown host, with --forge-url', { repo: 'https://git.example.com/acme/config.git', forge: 'gitea', forgeUrl: 'https://git.example.com/api/v1' }, TOKENS, 'gitea', /acme\/config via https:\/\/git\.example\.com\/api\/v1/],
    ['--forge github on another host is Enterprise', { repo: 'https://ghe.example.com/acme/config.git', forge: 'github' }, TOKENS, 'github', /via https:\/\/ghe\.example\.com\/api\/v3/],
    ['--forge github for a local repo needs --forge-repo', { repo: '/srv/config', git: localGit, forge: 'github' }, TOKENS, undefined, /cannot tell which GitHub repository this is; pass --forge-repo owner\/name/],
    ['--forge-repo for a local repo', { repo: '/srv/config', git: localGit, forge: 'github', forgeRepo: 'acme/config' }, TOKENS, 'github', /acme\/config via https:\/\/api\.github\.com/],
    ['--forge-repo must be owner/name on GitHub', { repo: '/srv/config', forge: 'github', forgeRepo: 'acme/platform/config' }, TOKENS, undefined, /"acme\/platform\/config" is not owner\/name/],
    ['--forge gitea without a host or --forge-url', { repo: '/srv/config', forge: 'gitea', forgeRepo: 'acme/config' }, TOKENS, undefined, /pass --forge-url/],
    ['--forge local for a clone is off', { repo: 'https://github.com/acme/config', git: clonedGit, forge: 'local' }, TOKENS, undefined, /--forge local writes git notes into a local Git repository/],
    ['--forge local for a local repo', { repo: '/srv/config', git: localGit, forge: 'local' }, TOKENS, 'local', /git notes/],
  ];
  for (const [name, options, env, forge, note] of cases) {
    it(name, () => {
      const s = selectForge(options, env);
      assert.equal(s.forge?.name, forge);
      assert.match(s.note, note);
      for (const secret of [...Object.values(TOKENS), 'ghp_flag', 'secret']) assert.ok(!s.note.includes(secret), s.note);
    });
  }

  it('the forge it picks talks to --forge-url with the token it found', async () => {
    const server = await startForgeServer('gitea');
    try {
      const { forge } = selectForge({ repo: 'https://gitea.example.com/x/y.git', forgeUrl: server.url, forgeRepo: server.repo }, { GITEA_TOKEN: server.token });
      await forge!.setStatus({ sha: 'e'.repeat(40), context: 'berth/staging', state: 'success', description: 'in sync' });
      assert.deepEqual(server.statuses('e'.repeat(40)).map((s) => s.state), ['success']);
    } finally {
      await server.stop();
    }
  });
});
