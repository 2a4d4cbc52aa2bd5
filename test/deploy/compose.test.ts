import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import type { Out } from '../../src/cli/output.js';
import { ROOT } from '../support/repo.js';

const COMPOSE = path.join(ROOT, 'deploy/compose.yaml');
const EXAMPLE_ENV = path.join(ROOT, 'deploy/example.env');
const exec = promisify(execFile);

interface ComposeFile {
  services: Record<string, { image?: string; container_name?: string; environment?: Record<string, string>; volumes?: string[]; network_mode?: string; secrets?: string[] }>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file: string }>;
}

/** Every BERTH_ variable the CLI reads, from the options of `berth run` (commander's envVar). */
function runVariables(): Set<string> {
  const silent: Out = { print: () => {}, info: () => {}, color: false };
  const program = buildProgram(silent, { code: 0 });
  const run = program.commands.find((c) => c.name() === 'run');
  assert.ok(run, 'berth has a run command');
  return new Set(run.options.map((o) => o.envVar).filter((v): v is string => typeof v === 'string'));
}

/** ${NAME}, ${NAME:-default} and ${NAME:?message} in a compose file. */
function substitutions(text: string): Set<string> {
  return new Set([...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}/g)].map((m) => m[1]!));
}

function exampleKeys(): Set<string> {
  const keys = readFileSync(EXAMPLE_ENV, 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.slice(0, l.indexOf('=')));
  return new Set(keys);
}

describe('deploy/compose.yaml', () => {
  const text = readFileSync(COMPOSE, 'utf8');
  const compose = parse(text) as ComposeFile;
  const berth = compose.services.berth!;
  const nginx = compose.services.nginx!;

  it('sets only variables that `berth run` reads', () => {
    const known = runVariables();
    const unknown = Object.keys(berth.environment ?? {}).filter((k) => !known.has(k));
    assert.deepEqual(unknown, [], `variables berth run does not read: ${unknown.join(', ')}`);
  });

  it('points berth at the nginx container by the name compose gives it, sharing its conf.d volume', () => {
    assert.equal(berth.environment?.BERTH_NGINX_CONTAINER, nginx.container_name);
    const confDir = berth.environment?.BERTH_NGINX_CONF_DIR;
    const shared = (berth.volumes ?? []).find((v) => v.endsWith(`:${confDir}`));
    assert.ok(shared, `berth mounts a volume at ${confDir}`);
    const volume = shared.split(':')[0]!;
    assert.ok(compose.volumes && volume in compose.volumes, `${volume} is a named volume`);
    assert.ok((nginx.volumes ?? []).some((v) => v.startsWith(`${volume}:/etc/nginx/conf.d`)), 'nginx includes the same volume as /etc/nginx/conf.d');
    assert.ok((berth.volumes ?? []).some((v) => v.endsWith(':/var/run/docker.sock')), 'the Docker socket is mounted');
    assert.ok((berth.volumes ?? []).some((v) => v.endsWith(':/var/lib/berth')), 'the state dir is on a volume');
    assert.equal(berth.network_mode, 'host');
    assert.equal(nginx.network_mode, 'host');
    assert.equal(berth.environment?.BERTH_SECRETS_FILE, `/run/secrets/${berth.secrets?.[0]}`);
  });

  it('documents in example.env every variable it substitutes, and nothing else', () => {
    const used = substitutions(text);
    const documented = exampleKeys();
    documented.delete('COMPOSE_PROJECT_NAME');
    assert.deepEqual([...used].filter((v) => !documented.has(v)).sort(), [], 'substituted but not in example.env');
    assert.deepEqual([...documented].filter((v) => !used.has(v)).sort(), [], 'in example.env but never used');
  });

  it('is a valid compose file (docker-compose config), and names what is missing', async (t: TestContext) => {
    const bin = await exec('docker-compose', ['version', '--short']).then(() => 'docker-compose', () => undefined);
    if (!bin) {
      if (process.env.CI) throw new Error('docker-compose is not installed (apt-get install docker-compose); CI checks the compose file with it');
      return t.skip('docker-compose not installed');
    }
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
    const ok = await exec(bin, ['-f', COMPOSE, 'config', '-q'], { env: { ...env, BERTH_REPO: 'https://git.example.com/ops/deploy.git', BERTH_ENV: 'production' } });
    assert.equal(ok.stderr.trim(), '');
    const missing = await exec(bin, ['-f', COMPOSE, 'config', '-q'], { env: { ...env, BERTH_ENV: 'production' } }).then(() => undefined, (err: { stderr: string }) => err.stderr);
    assert.match(missing ?? 'exit 0', /set BERTH_REPO to the config repo/);
  });
});
