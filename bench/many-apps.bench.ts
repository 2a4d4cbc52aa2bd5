// Many apps: N routed apps (default 100, one replica each) from an empty host to all serving
// through nginx, with the real CLI (`berth apply`), dockerd and nginx. Beside it, the floor: the
// same containers started with `docker run`, 4 at a time, then probed until each answers.
//   npm run bench -- many-apps                 (BENCH_APPS=250 for the large case; BERTH_PARALLELISM to vary)
import { APPS, dockerRunFloor, manyEnv } from './many-env.js';

const e = await manyEnv(APPS);
try {
  const floorMs = await dockerRunFloor(e.docker, APPS, 4);
  const t0 = performance.now();
  const { summary } = await e.apply();
  await e.allServing();
  const berthMs = performance.now() - t0;
  console.log(`many-apps: ${APPS} routed apps, 1 replica each, empty host → every app answering through nginx:`);
  console.log(`  berth apply: ${(berthMs / 1000).toFixed(1)} s   (${summary.replace(/^✔ /, '')})`);
  console.log(`  floor (docker run ×4 + probe): ${(floorMs / 1000).toFixed(1)} s   → berth/floor ${(berthMs / floorMs).toFixed(2)}×   [aim ≤ 15 s for 100 apps and ≤ 2× floor]`);
} finally {
  await e.teardown();
}
