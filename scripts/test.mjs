// The test command (`npm test`): unit tests, then integration tests against a real dockerd and nginx.
//   npm test            everything
//   npm run test:unit   unit tests only (no Docker, no nginx)
// Integration tests fail (never skip) when CI is set and Docker or nginx is missing.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ensureDocker } from './dockerd.mjs';

const root = path.resolve(import.meta.dirname, '..');
const unitOnly = process.argv.includes('--unit');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (name === 'node_modules' || name === 'fixtures') continue;
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.ts')) out.push(path.relative(root, p));
  }
  return out;
}

// Type errors fail the run first: tsx runs the tests without type-checking them.
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('type check failed');
  process.exit(1);
}

let files = [...find(path.join(root, 'src')), ...find(path.join(root, 'test'))].sort();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
const integration = files.filter((f) => f.startsWith('test/integration/'));
const unit = files.filter((f) => !integration.includes(f));

function runNode(list, env, extra = []) {
  if (!list.length) return 0;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...extra, ...list], { cwd: root, stdio: 'inherit', env });
  return r.status ?? 1;
}

let docker;
if (!unitOnly && integration.length) {
  try {
    docker = await ensureDocker();
  } catch (err) {
    console.error(`integration tests need Docker: ${err.message}`);
    if (process.env.CI) process.exit(1);
  }
}
const env = { ...process.env, ...(docker && { DOCKER_HOST: docker.host }) };
// One run, so the closing summary counts every test. Files run one at a time: the integration
// tests share one dockerd and nginx, and the unit tests are fast enough either way.
const status = runNode(unitOnly ? unit : [...unit, ...integration], env, ['--test-concurrency=1']);
await docker?.stop();
process.exit(status);
