import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { DockerDriver } from '../../src/runtime/docker/driver.js';
import { DockerError } from '../../src/runtime/docker/errors.js';
import { LABELS } from '../../src/runtime/labels.js';
import type { ContainerCreateSpec, RuntimeEvent } from '../../src/runtime/types.js';
import { ensureDemoImages, requireDocker } from '../support/docker.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Consumes `driver.events()` in the background; `done` settles when the loop ends. */
function collect(driver: DockerDriver, env: string, signal: AbortSignal): { seen: RuntimeEvent[]; done: Promise<unknown> } {
  const seen: RuntimeEvent[] = [];
  const done = (async () => {
    for await (const event of driver.events(env, signal)) seen.push(event);
  })().then(
    () => undefined,
    (err: unknown) => err,
  );
  return { seen, done };
}

async function waitFor<T>(what: string, find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function spec(env: string, app: string, name: string): ContainerCreateSpec {
  return {
    name,
    image: 'berth-demo/httpd:1.0',
    labels: { [LABELS.managed]: 'true', [LABELS.env]: env, [LABELS.app]: app, [LABELS.replica]: '0' },
    command: ['/bin/httpd', '-f', '-p', '8080'],
    env: {},
    ports: [{ containerPort: 8080, protocol: 'tcp' }],
    volumes: [],
    restartPolicy: 'no',
    stopGracePeriodSeconds: 1,
    init: false,
  };
}

describe('DockerDriver.events (real dockerd)', () => {
  const env = `evt${process.pid}`;
  const driver = new DockerDriver({ name: 'test-host' });
  const created: string[] = [];
  let docker: Docker | undefined;
  after(async () => {
    for (const id of created) await docker?.getContainer(id).remove({ force: true }).catch(() => {});
  });

  /** The stream connects lazily: create throwaway containers of `env` until one of their events shows up. */
  async function untilSubscribed(seen: RuntimeEvent[]): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const probe = await docker!.createContainer({ name: `${env}-probe-${i}`, Image: 'berth-demo/httpd:1.0', Labels: { [LABELS.managed]: 'true', [LABELS.env]: env, [LABELS.app]: 'probe' } });
      created.push(probe.id);
      await probe.remove({ force: true });
      await sleep(100);
      if (seen.some((e) => e.app === 'probe')) return;
    }
    throw new Error('the event stream never delivered');
  }

  it('reports start, die with its exit code and destroy of its own env only, and ends on abort', async (t) => {
    docker = await requireDocker(t);
    if (!docker) return;
    await ensureDemoImages(docker);
    const controller = new AbortController();
    const { seen, done } = collect(driver, env, controller.signal);
    await untilSubscribed(seen);

    // Act: another env's container first, so its events (if leaked) would arrive before ours.
    const other = await driver.run(spec(`${env}-other`, 'web', `${env}-other-web-0`));
    created.push(other.id);
    const live = await driver.run(spec(env, 'web', `${env}-web-0`));
    created.push(live.id);
    const ours = (action: string) => () => seen.find((e) => e.id === live.id && e.action === action);
    const start = await waitFor('start', ours('start'));
    await docker.getContainer(live.id).kill();
    const die = await waitFor('die', ours('die'));
    await driver.remove(live.id);
    const destroy = await waitFor('destroy', ours('destroy'));

    // Assert
    for (const event of [start, die, destroy]) {
      assert.deepEqual({ env: event.env, app: event.app, name: event.name, host: event.host }, { env, app: 'web', name: `${env}-web-0`, host: 'test-host' });
      assert.ok(Math.abs(event.time - Date.now()) < 60_000, `time ${event.time} is in ms`);
    }
    assert.equal(die.exitCode, 137, 'SIGKILL');
    assert.equal(start.exitCode, undefined);
    const order = seen.filter((e) => e.id === live.id).map((e) => e.action);
    assert.ok(order.indexOf('start') < order.indexOf('die') && order.indexOf('die') < order.indexOf('destroy'), order.join(','));
    assert.deepEqual(seen.filter((e) => e.id === other.id || e.env !== env), [], 'nothing of the other env');

    const aborted = Date.now();
    controller.abort();
    assert.equal(await done, undefined, 'the loop ends without an error');
    assert.ok(Date.now() - aborted < 1000, `ended ${Date.now() - aborted} ms after abort`);
  });

  it('ends at once when aborted while connecting or before the first call', async (t) => {
    docker = await requireDocker(t);
    if (!docker) return;
    const early = new AbortController();
    const connecting = collect(driver, env, early.signal);
    early.abort();
    assert.equal(await connecting.done, undefined);

    const already = collect(driver, env, AbortSignal.abort());
    assert.equal(await already.done, undefined);
    assert.deepEqual([...connecting.seen, ...already.seen], []);
  });
});

// A fake daemon on a unix socket: it controls how the stream is chunked and how it ends.
describe('DockerDriver.events stream handling', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-events-'));
  const socket = path.join(dir, 'docker.sock');
  let server: Server | undefined;
  after(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  const line = (action: string, attributes: Record<string, string>): string =>
    JSON.stringify({ status: action, Type: 'container', Action: action, Actor: { ID: 'c1', Attributes: { name: 'dev-web-0', 'berth.env': 'dev', 'berth.app': 'wéb', ...attributes } }, time: 1700000000, timeNano: 1700000000123456789 }) + '\n';

  async function serve(respond: (res: ServerResponse) => Promise<void>): Promise<{ query: () => string }> {
    let query = '';
    await new Promise((r) => server ? server.close(r) : r(undefined));
    server = createServer((req, res) => {
      query = decodeURIComponent(req.url ?? '');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      void respond(res);
    });
    await new Promise<void>((r) => server!.listen(socket, r));
    return { query: () => query };
  }

  const cases: { name: string; end: (res: ServerResponse) => void }[] = [
    { name: 'the connection drops', end: (res) => res.socket?.destroy() },
    { name: 'the daemon ends the stream', end: (res) => res.end() },
  ];
  for (const { name, end } of cases) {
    it(`parses split and batched lines, skips exec_*, and throws a transient DockerError when ${name}`, async () => {
      // Arrange: one chunk ends mid-character, one holds three lines.
      const bytes = Buffer.from(line('start', {}) + line('exec_start: /bin/sh -c true', { execID: 'x' }) + line('health_status: healthy', {}) + line('die', { exitCode: '3' }));
      const cut = bytes.indexOf(Buffer.from('é')) + 1;
      const daemon = await serve(async (res) => {
        for (const part of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
          res.write(part);
          await sleep(30);
        }
        end(res);
      });
      const driver = new DockerDriver({ host: `unix://${socket}`, name: 'fake' });

      // Act
      const { seen, done } = collect(driver, 'dev', new AbortController().signal);
      const err = await done;

      // Assert
      assert.ok(err instanceof DockerError, String(err));
      assert.equal(err.code, 'E_DOCKER_UNAVAILABLE');
      assert.equal(err.transient, true);
      assert.match(daemon.query(), /"label":\["berth\.managed=true","berth\.env=dev"\]/);
      assert.deepEqual(
        seen.map((e) => [e.action, e.app, e.exitCode, e.time]),
        [
          ['start', 'wéb', undefined, 1700000000123],
          ['health_status', 'wéb', undefined, 1700000000123],
          ['die', 'wéb', 3, 1700000000123],
        ],
      );
      assert.deepEqual({ id: seen[0]?.id, name: seen[0]?.name, env: seen[0]?.env, host: seen[0]?.host }, { id: 'c1', name: 'dev-web-0', env: 'dev', host: 'fake' });
    });
  }
});
