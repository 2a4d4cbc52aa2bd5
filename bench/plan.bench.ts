// Plan benchmark: plan for 1,000 apps against a synthetic live state (pure function, no Docker).
//   npm run bench -- plan
import { canonicalJson } from '../src/util/canonical.js';
import { plan } from '../src/plan/plan.js';
import { containerFields, renderEnvironment } from '../src/render/render.js';
import { envSecretSource } from '../src/render/secrets.js';
import type { LiveContainer, LiveState } from '../src/runtime/types.js';
import { generateRepo, stats, toRevision } from './generate.js';

const APPS = Number(process.env.BENCH_APPS ?? 1000);
const r = renderEnvironment(toRevision(generateRepo(APPS)), 'production', { secrets: envSecretSource({ BERTH_SECRET_DB_PASSWORD: 'x' }) });
if (!r.ok) throw new Error(r.problems[0]!.message);
const desired = r.state;

function liveFor(changedEvery: number): LiveState {
  const containers: LiveContainer[] = [];
  for (const [i, app] of desired.apps.entries()) {
    const spec = canonicalJson(containerFields(app.name, app.labels, app.spec));
    for (let n = 0; n < app.spec.replicas; n++) {
      const stale = changedEvery > 0 && i % changedEvery === 0;
      containers.push({ id: `${app.name}-${n}`, name: `production-${app.name}-${n}`, env: 'production', app: app.name, revision: 'x', specHash: stale ? 'old' : app.specHash, replica: n, spec: stale ? spec.replace('"image":"', '"image":"old-') : spec, image: app.spec.image, state: 'running', status: 'Up', ports: [{ containerPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 20000 + containers.length }], created: 1, host: 'local' });
    }
  }
  const routes = desired.apps.map((a) => ({ app: a.name, host: a.spec.route!.host, path: a.spec.route!.path, stripPrefix: false, proxyOptions: {}, servers: containers.filter((c) => c.app === a.name).map((c) => ({ address: `127.0.0.1:${c.ports[0]!.hostPort}`, containerId: c.id })) }));
  return { env: 'production', containers, proxy: { env: 'production', routes } };
}

for (const [label, live] of [['synced (no-op)', liveFor(0)], ['10% of apps changed', liveFor(10)]] as const) {
  const times: number[] = [];
  let result;
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    result = plan(desired, live);
    times.push(performance.now() - t0);
  }
  const s = stats(times);
  console.log(`plan ${APPS} apps / ${live.containers.length} containers, ${label}: median ${s.median.toFixed(1)} ms (min ${s.min.toFixed(1)}, p90 ${s.p90.toFixed(1)})   [aim < 100 ms]; ${result!.apps.filter((a) => a.actions.length).length} apps with actions`);
}
