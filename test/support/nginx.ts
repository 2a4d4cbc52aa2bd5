import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { findBinary, requireBinary } from './services.js';

export interface TestNginx {
  prefix: string;
  confDir: string;
  port: number;
  listen: string;
  testCmd: string[];
  reloadCmd: string[];
  stop(): void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function nginxBinary(): string | undefined {
  return findBinary(['/usr/sbin/nginx', '/usr/local/sbin/nginx'], '-v');
}

/** The environment variables that point the berth CLI at this nginx (conf dir, listen, test and reload commands). */
export function nginxCliEnv(nginx: TestNginx): NodeJS.ProcessEnv {
  return {
    BERTH_NGINX_CONF_DIR: nginx.confDir,
    BERTH_NGINX_LISTEN: nginx.listen,
    BERTH_NGINX_TEST_CMD: nginx.testCmd.join(' '),
    BERTH_NGINX_RELOAD_CMD: nginx.reloadCmd.join(' '),
  };
}

/** A real nginx with its own prefix, listening on a free 127.0.0.1 port, including `confDir/*.conf`. Skips (locally) or fails (CI) without nginx. */
export async function startNginx(t: TestContext): Promise<TestNginx | undefined> {
  if (!requireBinary(t, nginxBinary(), { name: 'nginx', apt: 'nginx-light', purpose: 'the integration tests' })) return undefined;
  return launchNginx();
}

/** Starts the private nginx; throws when nginx is not installed (benchmarks). */
export async function launchNginx(): Promise<TestNginx> {
  const bin = nginxBinary();
  if (!bin) throw new Error('nginx is not installed (apt-get install nginx-light)');
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'berth-nginx-'));
  const confDir = path.join(prefix, 'conf.d');
  mkdirSync(confDir);
  mkdirSync(path.join(prefix, 'logs'));
  mkdirSync(path.join(prefix, 'tmp'));
  const port = await freePort();
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server { listen 127.0.0.1:${port} default_server; return 404; }
  include ${confDir}/*.conf;
}
`,
  );
  const base = [bin, '-p', prefix, '-c', conf];
  execFileSync(base[0]!, base.slice(1));
  const stop = (): void => {
    try {
      process.kill(Number(readFileSync(path.join(prefix, 'nginx.pid'), 'utf8')), 'SIGQUIT');
    } catch {}
    setTimeout(() => rmSync(prefix, { recursive: true, force: true }), 500).unref();
  };
  return { prefix, confDir, port, listen: `127.0.0.1:${port}`, testCmd: [...base, '-t', '-q'], reloadCmd: [...base, '-s', 'reload'], stop };
}

/** GET through nginx with a Host header; resolves status, response headers and body (status 0 and no headers on a socket error). */
export function request(port: number, host: string, urlPath = '/'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host }, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', () => resolve({ status: 0, headers: {}, body: '' }));
    req.on('timeout', () => req.destroy());
  });
}

/** What nginx serves for a Host: `request` without the headers, so tests can deepEqual it with `{ status, body }`. */
export async function get(port: number, host: string, urlPath = '/'): Promise<{ status: number; body: string }> {
  const { status, body } = await request(port, host, urlPath);
  return { status, body };
}
