import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** The first of `candidates` that runs (`bin versionFlag` exits 0), or undefined when none is installed. */
export function findBinary(candidates: readonly string[], versionFlag = '--version'): string | undefined {
  return candidates.find((bin) => spawnSync(bin, [versionFlag]).status === 0);
}

/**
 * A real service's binary, or: a skip locally, a failure in CI (CI must test against the real
 * service, so a missing package there is an error in .ci/run, never a silent pass).
 */
export function requireBinary(t: TestContext, bin: string | undefined, what: { name: string; apt: string; purpose: string }): bin is string {
  if (bin) return true;
  if (process.env.CI) throw new Error(`${what.name} is not installed (apt-get install ${what.apt}); CI must run ${what.purpose}`);
  t.skip(`${what.name} not installed (apt-get install ${what.apt})`);
  return false;
}
