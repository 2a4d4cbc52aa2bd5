import http from 'node:http';
import { resultSince, type HealthCheckProvider, type HealthCheckResult, type HealthCheckTarget } from './types.js';

/** `healthCheck.http` as rendered. */
export interface HttpCheckConfig {
  path: string;
  port: number;
  expectStatus?: number[];
}

/** GET `path` on the published port: 200–399 (or one of `expectStatus`) is healthy. */
export const httpProvider: HealthCheckProvider = {
  protocol: 'http',
  describe: 'HTTP GET on a container port; 2xx/3xx or expectStatus is healthy',
  check(target: HealthCheckTarget, signal: AbortSignal): Promise<HealthCheckResult> {
    // The probe hands a built-in its own field of the spec, already validated by the schema.
    const { path, expectStatus } = target.config as unknown as HttpCheckConfig;
    const { host, port, timeoutMs } = target;
    const started = performance.now();
    return new Promise((resolve) => {
      let req: http.ClientRequest;
      try {
        req = http.get({ host, port, path, timeout: timeoutMs, signal, agent: false, headers: { 'user-agent': 'berth-health' } }, (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          const ok = expectStatus?.length ? expectStatus.includes(code) : code >= 200 && code < 400;
          resolve(resultSince(started, ok, `GET ${path} → ${code}`));
        });
      } catch (err) {
        // An unsendable path (a space, CR/LF): the check fails, saying why, rather than the rollout crashing.
        resolve(resultSince(started, false, `health check GET ${JSON.stringify(path)} cannot be sent: ${(err as Error).message}`));
        return;
      }
      req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on('error', (err) => resolve(resultSince(started, false, `GET ${path} on ${host}:${port}: ${signal.aborted ? `timed out after ${timeoutMs} ms` : err.message}`)));
    });
  },
};
