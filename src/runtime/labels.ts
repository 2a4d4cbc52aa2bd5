/** Labels on every container berth manages: the live-state contract (DESIGN.md). */
export const LABELS = {
  managed: 'berth.managed',
  env: 'berth.env',
  app: 'berth.app',
  revision: 'berth.revision',
  specHash: 'berth.spec-hash',
  replica: 'berth.replica',
  /** Container-defining fields as canonical JSON (secrets by digest), so a plan can show a field diff. */
  spec: 'berth.spec',
} as const;
