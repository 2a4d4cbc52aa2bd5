/**
 * A real Prometheus Pushgateway for tests (Debian's prometheus-pushgateway), on a free 127.0.0.1
 * port, keeping metrics in memory only. Never the packaged service on :9091: this one is ours alone.
 *
 *   let gateway: TestPushgateway | undefined;
 *   before(async () => (gateway = await startPushgateway()));
 *   after(() => gateway?.stop());
 *   it('…', async (t) => {
 *     if (!requirePushgateway(t, gateway)) return;   // skipped locally without the binary, fails in CI
 *     … gateway.url … await gateway.metrics() …
 *   });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { findBinary, requireBinary } from './services.js';
import { freePort } from './nginx.js';

export interface TestPushgateway {
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** The Pushgateway's own `GET /metrics`: its metrics and every pushed group's. */
  metrics(): Promise<string>;
  /** What it printed (logfmt), for failure messages. */
  logs(): string;
  /** Ends it (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
}

const CANDIDATES = ['/usr/bin/prometheus-pushgateway', '/usr/local/bin/prometheus-pushgateway', 'prometheus-pushgateway', 'pushgateway'];

function pushgatewayBinary(): string | undefined {
  return findBinary(CANDIDATES);
}

/**
 * Whether the test may go on with `gateway`: without one (the binary is not installed) the test is
 * skipped locally and fails in CI, where the pushgateway plugin must be tested against the real server.
 */
export function requirePushgateway(t: TestContext, gateway: TestPushgateway | undefined): gateway is TestPushgateway {
  return requireBinary(t, gateway && 'prometheus-pushgateway', { name: 'the Pushgateway', apt: 'prometheus-pushgateway', purpose: 'the pushgateway plugin test' });
}

/** Resolves once GET /-/ready answers 200; rejects when the process exits first or after 10 s. */
async function ready(child: ChildProcess, url: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`prometheus-pushgateway exited (${child.exitCode ?? child.signalCode}):\n${output()}`);
    const ok = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`prometheus-pushgateway did not get ready within 10 s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts a private Pushgateway; undefined when it is not installed (see requirePushgateway). */
export async function startPushgateway(): Promise<TestPushgateway | undefined> {
  const bin = pushgatewayBinary();
  if (!bin) return undefined;
  let lastError: Error | undefined;
  // freePort closes the port before the Pushgateway binds it: another process may take it in between.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // An empty persistence file: metrics in memory only, nothing written under /var/lib.
    const child = spawn(bin, [`--web.listen-address=127.0.0.1:${port}`, '--persistence.file=', '--log.level=info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await ready(child, url, () => output);
    } catch (err) {
      lastError = err as Error;
      await kill(child);
      continue;
    }
    return {
      port,
      url,
      metrics: async () => {
        const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`Pushgateway GET /metrics: HTTP ${res.status}`);
        return res.text();
      },
      logs: () => output,
      stop: () => kill(child),
    };
  }
  throw lastError ?? new Error('prometheus-pushgateway did not start');
}

/** One sample of the Prometheus text format: `name{label="value",…} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of `name` in Prometheus text `text` whose labels include `match` (any label order). */
export function samples(text: string, name: string, match: Record<string, string> = {}): Sample[] {
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(LABEL)) labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) found.push({ name, labels, value: Number(m[3]) });
  }
  return found;
}
