import type { Clock } from '../../src/util/clock.js';
import type { ContainerCreateSpec, ContainerState, ExecResult, LiveContainer, RuntimeDriver } from '../../src/runtime/types.js';
import type { DesiredApp } from '../../src/render/types.js';
import { canonicalJson } from '../../src/util/canonical.js';
import { containerFields } from '../../src/render/render.js';

/** A live container as the Docker driver would report it, for planner units. */
export function liveOf(app: DesiredApp, replica: number, over: Partial<LiveContainer> = {}): LiveContainer {
  return {
    id: `${app.name}-${replica}-${over.specHash ?? app.specHash}`,
    name: `env-${app.name}-${replica}`,
    env: 'env',
    app: app.name,
    revision: 'abc',
    specHash: app.specHash,
    replica,
    spec: canonicalJson(containerFields(app.name, app.labels, app.spec)),
    image: app.spec.image,
    state: 'running',
    status: 'Up',
    ports: app.spec.ports.map((p, i) => ({ containerPort: p.containerPort, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 30000 + replica * 10 + i })),
    created: 1,
    host: 'local',
    ...over,
  };
}

/** A clock that advances only when slept on: health-gate units run instantly and deterministically. */
export function fakeClock(): Clock & { t: number } {
  const c = { t: 0, now: () => c.t, sleep: async (ms: number) => void (c.t += ms) };
  return c;
}

/** RuntimeDriver for units: scripted exec results and container states. Not a stand-in for Docker in integration tests. */
export function scriptedRuntime(script: { exec?: (n: number) => ExecResult; state?: (n: number) => { state: ContainerState; restartCount: number } }): RuntimeDriver {
  let execs = 0;
  let states = 0;
  const unused = () => Promise.reject(new Error('not used in this unit'));
  return {
    name: 'scripted',
    list: unused,
    inspect: unused,
    hasImage: unused,
    pull: unused,
    run: (_: ContainerCreateSpec) => unused(),
    stop: unused,
    start: unused,
    remove: unused,
    exec: async () => script.exec?.(execs++) ?? { exitCode: 0, output: '' },
    runtimeState: async () => ({ exitCode: 0, error: '', ...(script.state?.(states++) ?? { state: 'running', restartCount: 0 }) }),
  };
}
