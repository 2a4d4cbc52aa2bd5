import assert from 'node:assert/strict';
import { Command } from 'commander';
import { describe, it } from 'node:test';
import { addForgeOptions, statusContext, type ForgeCliOptions } from '../../src/cli/forge-options.js';

function parse(args: string[], env: Record<string, string> = {}): ForgeCliOptions {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const cmd = addForgeOptions(new Command('x').exitOverride().configureOutput({ writeErr: () => {} }));
    cmd.parse(args, { from: 'user' });
    return cmd.opts<ForgeCliOptions>();
  } finally {
    for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
  }
}

describe('forge options', () => {
  it('defaults: the context template only', () => {
    assert.deepEqual(parse([]), { statusContext: 'berth/{env}' });
  });

  it('reads flags and BERTH_ variables', () => {
    assert.deepEqual(parse(['--forge', 'gitlab', '--forge-url', 'https://gitlab.example.com/', '--forge-repo', 'acme/platform/config', '--status-context', 'deploy/{env}', '--external-url', 'https://berth.example.com']), {
      forge: 'gitlab',
      forgeUrl: 'https://gitlab.example.com',
      forgeRepo: 'acme/platform/config',
      statusContext: 'deploy/{env}',
      externalUrl: 'https://berth.example.com',
    });
    assert.deepEqual(parse([], { BERTH_FORGE: 'gitea', BERTH_FORGE_TOKEN: 't0k', BERTH_FORGE_URL: 'http://127.0.0.1:3000/api/v1' }), { forge: 'gitea', forgeToken: 't0k', forgeUrl: 'http://127.0.0.1:3000/api/v1', statusContext: 'berth/{env}' });
  });

  it('refuses what cannot work', () => {
    assert.throws(() => parse(['--forge', 'bitbucket']), /Allowed choices are github, gitea, gitlab, local/);
    assert.throws(() => parse(['--forge-url', 'ftp://x']), /--forge-url: expected an http\(s\) URL/);
    assert.throws(() => parse(['--forge-url', 'not a url']), /--forge-url: expected an http\(s\) URL/);
    assert.throws(() => parse(['--external-url', 'file:///x']), /--external-url/);
    assert.throws(() => parse(['--forge-repo', 'justaname']), /--forge-repo: expected owner\/name/);
    assert.throws(() => parse(['--status-context', 'x'.repeat(256)]), /longer than 255/);
  });

  it('statusContext substitutes {env} and keeps to 255 characters', () => {
    assert.equal(statusContext('berth/{env}', 'production'), 'berth/production');
    assert.equal(statusContext('{env}', 'staging'), 'staging');
    assert.equal(statusContext('x'.repeat(245) + '/{env}', 'prod'), 'x'.repeat(245) + '/prod');
    assert.throws(() => statusContext('x'.repeat(250) + '/{env}', 'production'), (err: unknown) => (err as { code?: string }).code === 'E_USAGE' && /261 characters; forges take at most 255/.test((err as Error).message));
  });
});
