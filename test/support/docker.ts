import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import Docker from 'dockerode';
import { dockerOptions } from '../../src/runtime/docker/driver.js';
import { ROOT } from './repo.js';

export const DEMO_IMAGES = ['berth-demo/httpd:1.0', 'berth-demo/httpd:1.1'];

/**
 * The real Docker engine at DOCKER_HOST (the test runner finds or starts one). Without one the
 * test is skipped locally but fails in CI: integration tests must never pass by not running.
 */
export async function requireDocker(t: TestContext): Promise<Docker | undefined> {
  const docker = new Docker(dockerOptions(process.env.DOCKER_HOST));
  try {
    await docker.ping();
    return docker;
  } catch (err) {
    const why = `no Docker engine at ${process.env.DOCKER_HOST ?? '/var/run/docker.sock'}: ${(err as Error).message}`;
    if (process.env.CI) throw new Error(`${why} (CI must run integration tests against a real dockerd)`);
    t.skip(why);
    return undefined;
  }
}

/** Builds the busybox demo images (FROM scratch, no registry) when they are missing. */
export async function ensureDemoImages(docker: Docker): Promise<void> {
  const missing = [];
  for (const image of DEMO_IMAGES) {
    try {
      await docker.getImage(image).inspect();
    } catch {
      missing.push(image);
    }
  }
  if (missing.length) execFileSync(path.join(ROOT, 'scripts/demo-image.sh'), { stdio: 'inherit', env: process.env });
}
