// Runs the benchmarks: `npm run bench` (all) or `npm run bench -- render` (names containing "render").
// Each bench is its own process, so peak memory (maxRSS) is its own.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureDocker } from './dockerd.mjs';

const root = path.resolve(import.meta.dirname, '..');
const filters = process.argv.slice(2);
const benches = readdirSync(path.join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !filters.length || filters.some((x) => f.includes(x)))
  .sort();
// Benchmarks measure the compiled JavaScript users run (no tsx loader in the numbers).
const out = path.join(root, '.tmp/bench-build');
rmSync(out, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.bench.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, 'package.json'), '{"type":"module"}\n');
// What the compiled code finds beside itself at run time: schemas, packages, the image builder, the example repo.
for (const dir of ['schemas', 'node_modules', 'scripts', 'example-repo']) symlinkSync(path.join(root, dir), path.join(out, dir));

let env = process.env;
let docker;
if (benches.some((b) => !b.startsWith('render') && !b.startsWith('plan'))) {
  docker = await ensureDocker();
  env = { ...process.env, DOCKER_HOST: docker.host };
}
let status = 0;
for (const bench of benches) {
  console.log(`\n▶ bench/${bench}`);
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(out, 'bench', bench.replace(/\.ts$/, '.js'))], { cwd: root, stdio: 'inherit', env });
  status ||= r.status ?? 1;
}
await docker?.stop();
process.exit(status);
