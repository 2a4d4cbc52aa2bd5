import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { ensureDemoImages, requireDocker } from '../support/docker.js';

// Proves the harness: a real dockerd, an image built FROM scratch, a port published on 127.0.0.1.
describe('docker smoke (real dockerd)', () => {
  let container: Docker.Container | undefined;
  after(async () => {
    await container?.remove({ force: true }).catch(() => {});
  });

  it('runs, inspects, reaches and removes a busybox container', async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return;
    await ensureDemoImages(docker);
    container = await docker.createContainer({
      name: `berth-smoke-${process.pid}`,
      Image: 'berth-demo/httpd:1.0',
      Labels: { 'berth.test': 'smoke' },
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    });
    await container.start();
    const info = await container.inspect();
    assert.equal(info.State.Running, true);
    assert.equal(info.Config.Labels['berth.test'], 'smoke');
    const binding = info.NetworkSettings.Ports['8080/tcp']?.[0];
    assert.ok(binding, 'port 8080 is published');
    assert.equal(binding.HostIp, '127.0.0.1');

    let body = '';
    for (let i = 0; i < 50 && body !== 'ok\n'; i++) {
      body = await fetch(`http://127.0.0.1:${binding.HostPort}/health`).then((r) => r.text(), () => '');
      if (body !== 'ok\n') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(body, 'ok\n');

    await container.remove({ force: true });
    const left = await docker.listContainers({ all: true, filters: { label: ['berth.test=smoke'] } });
    assert.equal(left.filter((c) => c.Id === info.Id).length, 0);
    container = undefined;
  });
});
