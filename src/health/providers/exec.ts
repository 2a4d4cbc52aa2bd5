import { resultSince, type HealthCheckProvider, type HealthCheckResult, type HealthCheckTarget } from './types.js';

/** `healthCheck.exec` as rendered. */
export interface ExecCheckConfig {
  command: string[];
}

/** How much of the command's output a message quotes. */
const OUTPUT_CHARS = 200;

/** Runs a command inside the replica: exit 0 is healthy. */
export const execProvider: HealthCheckProvider = {
  protocol: 'exec',
  describe: 'a command run inside the container; exit 0 is healthy',
  async check(target: HealthCheckTarget): Promise<HealthCheckResult> {
    // The probe hands a built-in its own field of the spec, already validated by the schema.
    const { command } = target.config as unknown as ExecCheckConfig;
    const started = performance.now();
    try {
      const r = await target.exec(command);
      return resultSince(started, r.exitCode === 0, `exec ${command.join(' ')} → exit ${r.exitCode}${r.output ? `: ${r.output.slice(0, OUTPUT_CHARS)}` : ''}`);
    } catch (err) {
      return resultSince(started, false, `exec ${command.join(' ')}: ${(err as Error).message}`);
    }
  },
};
