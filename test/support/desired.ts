import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import type { DesiredState } from '../../src/render/types.js';
import type { LiveState, ProxyRoute } from '../../src/runtime/types.js';
import { liveOf } from './fakes.js';
import { appYaml, memoryRevision, REPO_YAML } from './repo.js';

/** The `production` desired state of apps given as extra YAML under `spec:` (planner units). */
export function desiredOf(apps: Record<string, string>, secret = 'pw'): DesiredState {
  const files: Record<string, string> = { 'berth.yaml': REPO_YAML };
  for (const [name, extra] of Object.entries(apps)) files[`apps/${name}.yaml`] = appYaml(name, extra);
  const r = renderEnvironment(memoryRevision(files), 'production', { secrets: envSecretSource({ BERTH_SECRET_DB_PASSWORD: secret }) });
  if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
  return r.state;
}

/** Live state exactly as `state` wants it: every replica running, every route's upstream listing them. */
export function syncedLive(state: DesiredState): LiveState {
  const containers = state.apps.flatMap((a) => Array.from({ length: a.spec.replicas }, (_, i) => liveOf(a, i)));
  const routes: ProxyRoute[] = state.apps
    .filter((a) => a.spec.route)
    .map((a) => ({ app: a.name, host: a.spec.route!.host, path: a.spec.route!.path, stripPrefix: false, proxyOptions: {}, servers: containers.filter((c) => c.app === a.name).map((c) => ({ address: `127.0.0.1:${c.ports[0]!.hostPort}`, containerId: c.id })) }));
  return { env: 'production', containers, proxy: { env: 'production', routes } };
}
