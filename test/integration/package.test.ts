// Release hygiene (#14): what `npm pack` makes is what users get. The tarball ships the CLI, the compiled
// code and the JSON Schemas (and nothing of the sources, tests or local state), installs in an empty folder
// from the registry, and runs there: `berth --help`, `--version`, and `validate`, which needs the schemas.
// Needs npm and the npm registry (for the dependencies); no Docker, no nginx.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, EXAMPLE_REPO, BROKEN } from '../support/repo.js';

const NPM = 'npm';
const NPX = 'npx';
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };

/** Every command of `berth --help` (src/cli/main.ts). */
const COMMANDS = ['validate', 'render', 'plan', 'drift', 'apply', 'run', 'status', 'history', 'rollback', 'promote'];

/**
 * The environment for npm and berth: without the variables an outer `npm test` sets for its script
 * (npm_config_local_prefix, npm_config_prefix, npm_package_*, …, which point at this project) and without
 * BERTH_* settings, so the clean folder is really clean. npm's cache, registry, CA and proxy settings stay.
 */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const keep = /^npm_config_(cache|registry|cafile|userconfig|globalconfig|(https_|no)?proxy|noproxy|strict_ssl)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|BERTH_)/i.test(k) && !keep.test(k)) continue;
    if (k === 'INIT_CWD' || k === 'NODE_OPTIONS') continue; // NODE_OPTIONS may carry the tsx loader
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one step (no shell) and returns its exit code and output. A step that cannot start, times out or is
 * killed throws, naming the step with its stderr; `expect` (default 0) is the exit code the step must have.
 */
function step(name: string, cmd: string, args: string[], opts: { cwd: string; timeout: number; env?: NodeJS.ProcessEnv; expect?: number }): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeout, env: opts.env ?? cleanEnv(), maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const expect = opts.expect ?? 0;
      if (code !== expect) {
        const why = err?.killed ? `was killed after ${opts.timeout} ms (timeout)` : typeof err?.code === 'string' ? `could not start (${err.code})` : `exited ${code}, expected ${expect}`;
        reject(new Error(`step "${name}" failed: \`${cmd} ${args.join(' ')}\` in ${opts.cwd} ${why}\n--- stderr ---\n${stderr.trimEnd()}\n--- stdout ---\n${stdout.trimEnd().slice(-4000)}`));
        return;
      }
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm package: pack, install in a clean folder, run', { timeout: 15 * 60_000 }, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-package-'));
  const packDir = path.join(tmp, 'pack');
  const appDir = path.join(tmp, 'app');
  const stateDir = path.join(tmp, 'state');
  let tarball: string | undefined;
  let files: string[] = [];
  let installed: string | undefined;

  /** The environment berth runs in from the clean folder. */
  const berthEnv = () => cleanEnv({ BERTH_STATE_DIR: stateDir, BERTH_LOG_LEVEL: 'warn' });

  before(async () => {
    mkdirSync(packDir);
    // `prepare` builds dist/ with tsc first, so this takes a while.
    const packed = await step('npm pack', NPM, ['pack', '--json', '--pack-destination', packDir], { cwd: ROOT, timeout: 5 * 60_000 });
    const tgz = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
    assert.equal(tgz.length, 1, `step "npm pack": expected one tarball in ${packDir}, found ${tgz.join(', ') || 'none'}`);
    tarball = path.join(packDir, tgz[0]!);
    let report: Array<{ files: Array<{ path: string }>; size: number; entryCount: number }>;
    try {
      report = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
    } catch (err) {
      throw new Error(`step "npm pack": its --json output does not parse (${(err as Error).message})\n--- stdout ---\n${packed.stdout}\n--- stderr ---\n${packed.stderr}`);
    }
    files = report[0]!.files.map((f) => f.path.replaceAll('\\', '/')).sort();
  });

  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball holds the CLI, the compiled code, the schemas and the docs', () => {
    assert.ok(tarball, 'npm pack made no tarball (see the before hook)');
    const has = (f: string) => assert.ok(files.includes(f), `the tarball lacks ${f}`);
    has('package.json');
    for (const bin of Object.values(pkg.bin)) has(bin.replace(/^\.\//, ''));
    // Whatever bin/berth.js imports from dist/ must be in the tarball too.
    const binSource = readFileSync(path.join(ROOT, 'bin/berth.js'), 'utf8');
    const imports = [...binSource.matchAll(/from\s+['"]\.\.\/(dist\/[^'"]+)['"]/g)].map((m) => m[1]!);
    assert.ok(imports.includes('dist/cli/main.js'), `bin/berth.js is expected to import ../dist/cli/main.js; it imports: ${imports.join(', ') || 'nothing from dist/'}`);
    for (const f of imports) has(f);
    for (const schema of readdirSync(path.join(ROOT, 'schemas')).filter((f) => f.endsWith('.json'))) has(`schemas/${schema}`);
    has('README.md');
    has('CHANGELOG.md');
    for (const license of ['LICENSE', 'LICENSE.md', 'LICENSE.txt']) if (existsSync(path.join(ROOT, license))) has(license);
  });

  it('the tarball holds nothing else: no sources, tests, local state or dependencies', () => {
    assert.ok(tarball, 'npm pack made no tarball (see the before hook)');
    const topLevel = new Set(['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE', 'LICENSE.md', 'LICENSE.txt']);
    const unexpected = files.filter((f) => !topLevel.has(f) && !/^(bin|dist|schemas)\//.test(f));
    assert.deepEqual(unexpected, [], 'files outside bin/, dist/, schemas/ and the top-level docs');
    const forbidden = files.filter((f) => /(^|\/)(node_modules|test|src|\.tmp|\.git|\.ci|example-repo|bench)\//.test(f) || /\.(ts|mts|cts)$/.test(f) || /(^|\/)\.env/.test(f));
    assert.deepEqual(forbidden, [], 'sources, tests, local state or dependencies in the tarball');
    // dist/ is not cleaned by tsc: a module whose source was moved or deleted would ship as dead code.
    const stale = files.filter((f) => /^dist\/.*\.js$/.test(f) && !existsSync(path.join(ROOT, 'src', f.slice('dist/'.length).replace(/\.js$/, '.ts'))));
    assert.deepEqual(stale, [], 'dist/ files with no source in src/ (left over from an earlier build; `prepare` must start from an empty dist/)');
  });

  it('installs from the tarball in an empty folder', async () => {
    assert.ok(tarball, 'npm pack made no tarball (see the before hook)');
    rmSync(appDir, { recursive: true, force: true });
    mkdirSync(appDir, { recursive: true });
    await step('npm init -y', NPM, ['init', '-y'], { cwd: appDir, timeout: 60_000 });
    await step('npm install <tarball>', NPM, ['install', '--no-audit', '--no-fund', tarball], { cwd: appDir, timeout: 10 * 60_000 });
    const manifest = path.join(appDir, 'node_modules', pkg.name, 'package.json');
    assert.ok(existsSync(manifest), `step "npm install": ${manifest} is missing`);
    assert.equal(JSON.parse(readFileSync(manifest, 'utf8')).version, pkg.version, 'the installed package is this version');
    installed = path.join(appDir, 'node_modules', pkg.name);
  });

  it('`npx berth --help` lists every command', async () => {
    assert.ok(installed, 'not installed (see the install test)');
    const r = await step('npx berth --help', NPX, ['--no-install', 'berth', '--help'], { cwd: appDir, timeout: 60_000, env: berthEnv() });
    for (const cmd of COMMANDS) assert.match(r.stdout, new RegExp(`^\\s+${cmd}\\b`, 'm'), `berth --help does not list "${cmd}"\n${r.stdout}`);
  });

  it('`npx berth --version` prints the package version', async () => {
    assert.ok(installed, 'not installed (see the install test)');
    const r = await step('npx berth --version', NPX, ['--no-install', 'berth', '--version'], { cwd: appDir, timeout: 60_000, env: berthEnv() });
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('`berth validate` from the installed package reads the shipped schemas', async () => {
    assert.ok(installed, 'not installed (see the install test)');
    const env = berthEnv();
    const ok = await step('npx berth validate (example-repo)', NPX, ['--no-install', 'berth', 'validate', '--repo', EXAMPLE_REPO, '--env', 'staging'], { cwd: appDir, timeout: 60_000, env });
    assert.match(ok.stderr, /is valid: 1 environment \(staging\)/, `validate's summary\n${ok.stderr}`);
    // A problem only the schema knows about: the schemas are really loaded, not just found.
    const bad = await step('npx berth validate (broken/unknown-field)', NPX, ['--no-install', 'berth', 'validate', '--repo', path.join(BROKEN, 'unknown-field')], { cwd: appDir, timeout: 60_000, env, expect: 1 });
    assert.match(bad.stdout, /^apps\/web\.yaml:\d+:\d+\s+unknown field "replcas" in spec; did you mean "replicas"\?/m, `validate's problems\n${bad.stdout}\n${bad.stderr}`);
  });
});
