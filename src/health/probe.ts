import http from 'node:http';
import net from 'node:net';
import type { HealthCheckSpec } from '../render/types.js';
import { publishedAddress } from '../runtime/address.js';
import type { LiveContainer, RuntimeDriver } from '../runtime/types.js';

export interface ProbeResult {
  ok: boolean;
  message: string;
}

function httpProbe(host: string, port: number, path: string, timeoutMs: number, expect?: number[]): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let req: http.ClientRequest;
    try {
      req = http.get({ host, port, path, timeout: timeoutMs, agent: false, headers: { 'user-agent': 'berth-health' } }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        const ok = expect?.length ? expect.includes(code) : code >= 200 && code < 400;
        resolve({ ok, message: `GET ${path} → ${code}` });
      });
    } catch (err) {
      // An unsendable path (a space, CR/LF): the check fails, saying why, rather than the rollout crashing.
      resolve({ ok: false, message: `health check GET ${JSON.stringify(path)} cannot be sent: ${(err as Error).message}` });
      return;
    }
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, message: `GET ${path} on ${host}:${port}: ${err.message}` }));
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (r: ProbeResult) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, message: `tcp ${host}:${port}: timed out after ${timeoutMs} ms` }));
    socket.on('connect', () => done({ ok: true, message: `tcp ${host}:${port} open` }));
    socket.on('error', (err) => done({ ok: false, message: `tcp ${host}:${port}: ${err.message}` }));
  });
}

/** One probe of one replica. */
export async function probeOnce(hc: HealthCheckSpec, container: Pick<LiveContainer, 'id' | 'name' | 'ports'>, runtime: RuntimeDriver): Promise<ProbeResult> {
  const timeoutMs = hc.timeoutSeconds * 1000;
  if (hc.exec) {
    try {
      const r = await runtime.exec(container.id, hc.exec.command, timeoutMs);
      return { ok: r.exitCode === 0, message: `exec ${hc.exec.command.join(' ')} → exit ${r.exitCode}${r.output ? `: ${r.output.slice(0, 200)}` : ''}` };
    } catch (err) {
      return { ok: false, message: `exec ${hc.exec.command.join(' ')}: ${(err as Error).message}` };
    }
  }
  const probe = hc.http ?? hc.tcp!;
  const addr = publishedAddress(container, probe.port);
  if (!addr) return { ok: false, message: `port ${probe.port} is not published by ${container.name}` };
  return hc.http ? httpProbe(addr.host, addr.port, hc.http.path, timeoutMs, hc.http.expectStatus) : tcpProbe(addr.host, addr.port, timeoutMs);
}

