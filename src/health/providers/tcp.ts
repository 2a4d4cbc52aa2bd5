import net from 'node:net';
import { resultSince, type HealthCheckProvider, type HealthCheckResult, type HealthCheckTarget } from './types.js';

/** A TCP connect to the published port: accepted is healthy. */
export const tcpProvider: HealthCheckProvider = {
  protocol: 'tcp',
  describe: 'TCP connect to a container port; an accepted connection is healthy',
  check({ host, port, timeoutMs }: HealthCheckTarget, signal: AbortSignal): Promise<HealthCheckResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      const socket = net.connect({ host, port: port! });
      const done = (ok: boolean, message: string) => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve(resultSince(started, ok, message));
      };
      const onAbort = () => done(false, `tcp ${host}:${port}: timed out after ${timeoutMs} ms`);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      socket.setTimeout(timeoutMs, () => done(false, `tcp ${host}:${port}: timed out after ${timeoutMs} ms`));
      socket.on('connect', () => done(true, `tcp ${host}:${port} open`));
      socket.on('error', (err) => done(false, `tcp ${host}:${port}: ${err.message}`));
    });
  },
};
