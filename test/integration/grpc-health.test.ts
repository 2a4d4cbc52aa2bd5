import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import ts from 'typescript';
import { probeOnce } from '../../src/health/probe.js';
import { harness, infrastructure, removeEnv, type Harness, type Infrastructure } from '../support/env.js';
import { run } from '../support/images.js';
import { editFile, ROOT } from '../support/repo.js';

// Issue 10's acceptance test: an app with a `grpc` health check is gated by a real gRPC health server.
//
// The app is test/support/grpc-health.ts (the server the units use), transpiled, running on Node with
// @grpc/grpc-js inside a container; berth probes it through the container's published port on
// 127.0.0.1, as it probes every app. The image is FROM scratch and made without a registry, as the
// busybox demo images are: this machine's node binary, the shared libraries `ldd` names for it, the
// server and @grpc/grpc-js with its one dependency (proto-loader is loaded lazily and never here).
const GRPC_IMAGE = 'berth-test/grpc-health:1';
const GRPC_PORT = 50051;

/** `ldd` of the node binary: each library's path (the dynamic loader included). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await run('ldd', [binary]);
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** Builds GRPC_IMAGE unless the image holds these very inputs already (a label carries their digest). */
async function ensureGrpcImage(): Promise<void> {
  const serverTs = readFileSync(path.join(ROOT, 'test/support/grpc-health.ts'), 'utf8');
  const server = ts.transpileModule(serverTs, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const grpcVersion = (JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as { version: string }).version;
  const digest = createHash('sha256').update(`${process.version}\0${grpcVersion}\0${server}`).digest('hex').slice(0, 16);
  const current = await run('docker', ['image', 'inspect', '--format', '{{index .Config.Labels "berth.test.inputs"}}', GRPC_IMAGE]).catch(() => '');
  if (current.trim() === digest) return;

  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-grpc-image-'));
  try {
    const node = process.execPath;
    for (const lib of await sharedLibraries(node)) {
      mkdirSync(path.join(root, path.dirname(lib)), { recursive: true });
      cpSync(lib, path.join(root, lib), { dereference: true });
    }
    mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true });
    cpSync(node, path.join(root, 'usr/local/bin/node'), { dereference: true });
    mkdirSync(path.join(root, 'app'), { recursive: true });
    writeFileSync(path.join(root, 'app/grpc-health.mjs'), server);
    for (const pkg of ['@grpc/grpc-js', '@js-sdsl/ordered-map']) cpSync(path.join(ROOT, 'node_modules', pkg), path.join(root, 'app/node_modules', pkg), { recursive: true, dereference: true });
    mkdirSync(path.join(root, 'tmp'));
    chmodSync(path.join(root, 'tmp'), 0o1777);
    const changes = [
      `CMD ["/usr/local/bin/node", "/app/grpc-health.mjs"]`,
      // No ld.so.cache in the image: the loader finds the copied libraries through the path.
      'ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/lib',
      `ENV GRPC_HEALTH_PORT=${GRPC_PORT}`,
      `LABEL berth.test.inputs=${digest}`,
    ];
    const quoted = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    await run('sh', ['-c', `tar -C ${quoted(root)} -c . | docker import ${changes.map((c) => `-c ${quoted(c)}`).join(' ')} - ${GRPC_IMAGE}`], { timeoutMs: 300_000 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The app: the health server, SERVING or not as its env says, probed over gRPC on its published port. */
function grpcApp(status: 'SERVING' | 'NOT_SERVING', version: string): string {
  return `apiVersion: berth/v1
kind: App
metadata: { name: rpc }
spec:
  image: ${GRPC_IMAGE}
  env: { GRPC_HEALTH_STATUS: ${status}, APP_VERSION: "${version}" }
  ports: [{ containerPort: ${GRPC_PORT} }]
  healthCheck:
    grpc: { port: ${GRPC_PORT} }
    intervalSeconds: 0.25
    timeoutSeconds: 1
    failureThreshold: 2
    # Node and grpc-js start in well under this; their first refused probes do not count.
    startPeriodSeconds: 3
    timeoutTotalSeconds: 30
`;
}

describe('a grpc health check gates a real app (real dockerd, a gRPC server in the container)', () => {
  let infra: Infrastructure | undefined;
  let docker: Docker | undefined;
  let dir: string;
  let env: string;
  let h: Harness;

  const rpcContainers = async () => (await h.runtime.list(env)).filter((c) => c.app === 'rpc');

  before(async (t) => {
    infra = await infrastructure(t as never);
    if (!infra) return;
    docker = infra.docker;
    await ensureGrpcImage();
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-grpc-repo-'));
    env = `itg${Math.random().toString(36).slice(2, 8)}`;
    mkdirSync(path.join(dir, 'apps'));
    writeFileSync(path.join(dir, 'berth.yaml'), `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${env}: { branch: main }\n`);
    writeFileSync(path.join(dir, 'apps/rpc.yaml'), grpcApp('SERVING', '1'));
    h = harness(dir, env, infra.nginx);
  });
  after(async () => {
    if (docker && env) await removeEnv(docker, env);
    await infra?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a SERVING version passes the gate: the gRPC server in the container answered berth through the published port', async (t) => {
    if (!docker) return t.skip('no docker');
    const report = await h.apply();
    assert.equal(report.result, 'Succeeded', JSON.stringify(report.apps));
    const [c, ...more] = await rpcContainers();
    assert.ok(c && more.length === 0 && c.state === 'running');
    const published = c.ports.find((p) => p.containerPort === GRPC_PORT);
    assert.ok(published && published.hostIp === '127.0.0.1', JSON.stringify(c.ports));
    // The same probe, once more, by hand: what it saw is the real server's answer.
    const desired = (await h.render()).apps[0]!.spec.healthCheck!;
    const probe = await probeOnce(desired, c, h.runtime);
    assert.deepEqual([probe.ok, probe.message], [true, `grpc health 127.0.0.1:${published.hostPort} (server): SERVING`]);
    // The server logs every check: the gate's passing probe is among them.
    const logs = (await docker.getContainer(c.id).logs({ stdout: true, stderr: true })).toString('utf8');
    assert.match(logs, /grpc health server on :50051, status SERVING/);
    assert.ok((logs.match(/check service="" → SERVING/g) ?? []).length >= 2, logs);
  });

  it('a NOT_SERVING version is rolled back with the gRPC status as the reason; the SERVING one keeps running', async (t) => {
    if (!docker) return t.skip('no docker');
    const before = (await rpcContainers()).map((c) => c.id);
    editFile(dir, 'apps/rpc.yaml', 'GRPC_HEALTH_STATUS: SERVING, APP_VERSION: "1"', 'GRPC_HEALTH_STATUS: NOT_SERVING, APP_VERSION: "2"');
    const planned = await h.planOnly();
    assert.equal(planned.apps.find((a) => a.app === 'rpc')?.actions[0]?.kind, 'replace');
    const report = await h.apply();
    const rpc = report.apps.find((a) => a.app === 'rpc')!;
    assert.equal(report.result, 'RolledBack', JSON.stringify(report.apps));
    assert.equal(rpc.result, 'RolledBack');
    assert.match(rpc.error ?? '', /health check failed 2 times in a row: grpc health 127\.0\.0\.1:\d+ \(server\): NOT_SERVING/);
    const after = await rpcContainers();
    assert.deepEqual(after.map((c) => c.id), before, 'the old replica kept, the new one removed');
    const desired = (await h.render()).apps[0]!.spec.healthCheck!;
    assert.equal((await probeOnce(desired, after[0]!, h.runtime)).ok, true, 'the kept replica still answers SERVING');
  });
});
