// Render benchmark: 1,000 apps × 2 environments with overlays.
//   npm run bench -- render
// Cold: a fresh process parses, validates and renders both environments (what `berth validate` does);
//       time excludes module loading; peak RSS is the whole process.
// Warm: a one-file commit re-rendered with the blob-id cache (what the controller does per push).
import { spawnSync } from 'node:child_process';
import { resourceUsage } from 'node:process';
import { fileURLToPath } from 'node:url';
import { DocCache } from '../src/render/doc-cache.js';
import { renderEnvironment, validateRepository } from '../src/render/render.js';
import { envSecretSource } from '../src/render/secrets.js';
import { generateRepo, stats, toRevision } from './generate.js';

const APPS = Number(process.env.BENCH_APPS ?? 1000);
const secrets = envSecretSource({ BERTH_SECRET_DB_PASSWORD: 'x' });
const files = generateRepo(APPS);

if (process.argv[2] === '--cold-child') {
  const revision = toRevision(files);
  const t0 = performance.now();
  const { problems } = validateRepository(revision, { secrets });
  const ms = performance.now() - t0;
  if (problems.length) throw new Error(`generated repo is invalid: ${problems[0]!.message}`);
  console.log(JSON.stringify({ ms, maxRssMb: resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

const cold: number[] = [];
const rss: number[] = [];
for (let i = 0; i < 5; i++) {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--cold-child'], { encoding: 'utf8', env: process.env });
  if (child.status !== 0) throw new Error(child.stderr);
  const r = JSON.parse(child.stdout) as { ms: number; maxRssMb: number };
  cold.push(r.ms);
  rss.push(r.maxRssMb);
}

const cache = new DocCache();
renderEnvironment(toRevision(files), 'production', { secrets, cache });
const warm: number[] = [];
for (let i = 0; i < 20; i++) {
  const changed = new Map(files);
  changed.set('apps/app-0500.yaml', files.get('apps/app-0500.yaml')!.replace('INDEX: "500"', `INDEX: "500-${i}"`));
  const rev = toRevision(changed);
  const t0 = performance.now();
  const r = renderEnvironment(rev, 'production', { secrets, cache });
  warm.push(performance.now() - t0);
  if (!r.ok) throw new Error(r.problems[0]!.message);
  cache.prune();
}

const fmt = (s: ReturnType<typeof stats>, unit = 'ms') => `median ${s.median.toFixed(0)} ${unit} (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})`;
console.log(`repo: ${files.size} files (${APPS} apps, overlays for 2 environments)`);
console.log(`cold validate of both environments, fresh process: ${fmt(stats(cold))}   [aim < 1000 ms]`);
console.log(`peak RSS of that process: ${fmt(stats(rss), 'MB')}   [aim < 150 MB]`);
console.log(`warm render after a one-file commit (blob-id cache): ${fmt(stats(warm))}`);
