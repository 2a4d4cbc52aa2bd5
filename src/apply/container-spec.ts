import { canonicalJson } from '../util/canonical.js';
import { cpuToNano, memoryToBytes } from '../util/units.js';
import { containerFields } from '../render/render.js';
import type { DesiredApp } from '../render/types.js';
import { LABELS } from '../runtime/labels.js';
import { type ContainerCreateSpec } from '../runtime/types.js';

/** `<env>-<app>-<n>-<short hash>`: Docker's unique names make a resumed apply unable to duplicate a replica. */
export function containerName(env: string, app: DesiredApp, replica: number): string {
  return `${env}-${app.name}-${replica}-${app.specHash.slice(0, 8)}`;
}

/** Everything Docker needs to run one replica. Secrets are revealed here and only here. */
export function toCreateSpec(env: string, revision: string, app: DesiredApp, replica: number): ContainerCreateSpec {
  const { spec } = app;
  const env_: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.env)) env_[k] = typeof v === 'string' ? v : v.reveal();
  const userLabels = Object.fromEntries(Object.entries(app.labels).filter(([k]) => !k.startsWith('berth.')));
  return {
    name: containerName(env, app, replica),
    image: spec.image,
    labels: {
      ...userLabels,
      [LABELS.managed]: 'true',
      [LABELS.env]: env,
      [LABELS.app]: app.name,
      [LABELS.revision]: revision,
      [LABELS.specHash]: app.specHash,
      [LABELS.replica]: String(replica),
      [LABELS.spec]: canonicalJson(containerFields(app.name, app.labels, spec)),
    },
    ...(spec.command && { command: spec.command }),
    ...(spec.args && { args: spec.args }),
    ...(spec.workingDir && { workingDir: spec.workingDir }),
    ...(spec.user && { user: spec.user }),
    env: env_,
    ports: spec.ports.map((p) => ({ containerPort: p.containerPort, protocol: p.protocol, ...(p.hostPort && { hostPort: p.hostPort }) })),
    ...(spec.resources?.cpu && { cpuNano: cpuToNano(spec.resources.cpu) }),
    ...(spec.resources?.memory && { memoryBytes: memoryToBytes(spec.resources.memory) }),
    volumes: spec.volumes,
    restartPolicy: spec.restartPolicy,
    stopGracePeriodSeconds: spec.stopGracePeriodSeconds,
    init: spec.init,
  };
}
