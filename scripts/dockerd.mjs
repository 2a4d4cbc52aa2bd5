// Finds a Docker engine that answers, or starts a private one (own data-root, exec-root, socket).
// Used by the test runner and the benchmarks; CI starts its own first and this reuses it.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import http from 'node:http';

const PRIVATE_ROOT = process.env.BERTH_TEST_DOCKER_ROOT ?? '/tmp/berth-dockerd';

function socketOf(host) {
  if (!host) return undefined;
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  return undefined;
}

/** Resolves true when the engine at the unix socket answers /_ping within 2 s. */
export function ping(socketPath) {
  return new Promise((resolve) => {
    if (!socketPath || !existsSync(socketPath)) return resolve(false);
    const req = http.get({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/**
 * Returns { host, started, stop() }: DOCKER_HOST if it answers, else /var/run/docker.sock,
 * else a private dockerd started here (stop() ends it). Throws when none can be had.
 */
export async function ensureDocker({ log = console.error } = {}) {
  for (const candidate of [process.env.DOCKER_HOST, 'unix:///var/run/docker.sock', `unix://${PRIVATE_ROOT}/docker.sock`]) {
    if (candidate && (await ping(socketOf(candidate)))) return { host: candidate, started: false, stop: async () => {} };
  }
  let dockerd;
  try {
    dockerd = execFileSync('sh', ['-c', 'command -v dockerd'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('no Docker engine answers at DOCKER_HOST and dockerd is not installed (apt-get install docker.io)');
  }
  mkdirSync(PRIVATE_ROOT, { recursive: true });
  const sock = `${PRIVATE_ROOT}/docker.sock`;
  const logFd = openSync(`${PRIVATE_ROOT}/dockerd.log`, 'a');
  log(`starting a private dockerd (${PRIVATE_ROOT}, log ${PRIVATE_ROOT}/dockerd.log)`);
  const child = spawn(dockerd, ['--data-root', `${PRIVATE_ROOT}/data`, '--exec-root', `${PRIVATE_ROOT}/exec`, '-H', `unix://${sock}`, '--pidfile', `${PRIVATE_ROOT}/docker.pid`], {
    stdio: ['ignore', logFd, logFd],
    detached: true,
  });
  child.unref();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await ping(sock)) {
      return {
        host: `unix://${sock}`,
        started: true,
        stop: async () => {
          try {
            process.kill(child.pid, 'SIGTERM');
          } catch {}
        },
      };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`dockerd did not come up; see ${PRIVATE_ROOT}/dockerd.log`);
}
