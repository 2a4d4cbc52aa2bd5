import type { ContainerTemplate } from '../plan/types.js';
import { LABELS } from '../runtime/labels.js';
import type { ContainerCreateSpec } from '../runtime/types.js';

/** `<env>-<app>-<n>-<short hash>`: Docker's unique names make a resumed apply unable to duplicate a replica. */
export function replicaName(template: ContainerTemplate, replica: number): string {
  return `${template.namePrefix}-${replica}-${template.nameSuffix}`;
}

/** Everything the runtime needs to run replica `replica`. Secrets are revealed here and only here. */
export function toCreateSpec(template: ContainerTemplate, replica: number): ContainerCreateSpec {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(template.env)) env[k] = typeof v === 'string' ? v : v.reveal();
  const { namePrefix: _prefix, nameSuffix: _suffix, labels, ...fields } = template;
  return { ...fields, name: replicaName(template, replica), labels: { ...labels, [LABELS.replica]: String(replica) }, env };
}
