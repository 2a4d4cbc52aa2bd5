import { cpSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { applyPlan } from '../../src/apply/apply.js';
import type { ApplyReport } from '../../src/apply/types.js';
import { DockerDriver } from '../../src/runtime/docker/driver.js';
import { systemClock } from '../../src/util/clock.js';
import { NginxDriver } from '../../src/runtime/nginx/driver.js';
import { observe } from '../../src/runtime/observe.js';
import { plan } from '../../src/plan/plan.js';
import type { Plan } from '../../src/plan/types.js';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource, loadDigestKey, type SecretSource } from '../../src/render/secrets.js';
import type { DesiredState } from '../../src/render/types.js';
import { readDirectoryRevision } from '../../src/source/directory.js';
import { EXAMPLE_REPO } from './repo.js';
import type { TestContext } from 'node:test';
import { ensureDemoImages, requireDocker } from './docker.js';
import { nginxCliEnv, startNginx, type TestNginx } from './nginx.js';

export const SECRETS = envSecretSource({ BERTH_SECRET_DB_PASSWORD: 'it-secret' });

/**
 * A private copy of example-repo whose single environment has a unique name, so tests sharing one
 * dockerd never touch each other's containers. `staging` overlays become this environment's.
 */
export function copyExampleRepo(): { dir: string; env: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-repo-'));
  cpSync(EXAMPLE_REPO, dir, { recursive: true });
  const env = `it${Math.random().toString(36).slice(2, 8)}`;
  renameSync(path.join(dir, 'overlays/staging'), path.join(dir, `overlays/${env}`));
  rmSync(path.join(dir, 'overlays/production'), { recursive: true });
  rmSync(path.join(dir, 'plugins'), { recursive: true });
  writeFileSync(path.join(dir, 'berth.yaml'), `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${env}: { branch: main }\nsecrets:\n  db-password: { description: test }\n`);
  return { dir, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function listApps(dir: string): string[] {
  return readdirSync(path.join(dir, 'apps')).map((f) => f.replace(/\.yaml$/, ''));
}

export interface Harness {
  runtime: DockerDriver;
  proxy: NginxDriver;
  render(): Promise<DesiredState>;
  planOnly(): Promise<Plan>;
  apply(): Promise<ApplyReport & { plan: Plan }>;
}

/**
 * Drivers and render/plan/apply in this process. Pass the CLI's `stateDir` when the test compares
 * with what a `berth` process applied: secrets are digested with that installation's key.
 */
export function harness(dir: string, env: string, nginx: TestNginx, stateDir?: string): Harness {
  const runtime = new DockerDriver({ host: process.env.DOCKER_HOST, hostIp: '127.0.0.1' });
  const proxy = new NginxDriver({ confDir: nginx.confDir, listen: nginx.listen, testCmd: nginx.testCmd, reloadCmd: nginx.reloadCmd, minReloadIntervalMs: 0 });
  const digestKey = stateDir ? loadDigestKey(stateDir, true) : undefined;
  const secrets: SecretSource = digestKey ? { ...SECRETS, digestKey } : SECRETS;
  const render = async (): Promise<DesiredState> => {
    const r = renderEnvironment(await readDirectoryRevision(dir), env, { secrets });
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
    return r.state;
  };
  return {
    runtime,
    proxy,
    render,
    planOnly: async () => plan(await render(), await observe(env, runtime, proxy)),
    apply: async () => {
      const desired = await render();
      const live = await observe(env, runtime, proxy);
      const planned = plan(desired, live);
      const report = await applyPlan(planned, { runtime, proxy, clock: systemClock });
      return { ...report, plan: planned };
    },
  };
}

/** Removes every container carrying `label` (`key=value`), ignoring ones already gone (test and bench cleanup). */
export async function removeLabelled(docker: Docker, label: string): Promise<void> {
  const rows = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(rows.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
}

/** Removes every container of `env` (test cleanup). */
export function removeEnv(docker: Docker, env: string): Promise<void> {
  return removeLabelled(docker, `berth.env=${env}`);
}

/** Environment for the CLI under test: its state dir, BERTH_NGINX_* for the private nginx, the test secret. */
export function cliEnvFor(nginx: TestNginx, stateDir: string): NodeJS.ProcessEnv {
  return {
    BERTH_STATE_DIR: stateDir,
    BERTH_SECRET_DB_PASSWORD: 'it-secret',
    ...nginxCliEnv(nginx),
  };
}

/** What every integration suite stands on: the real dockerd, a private nginx, demo images, a fresh state dir. */
export interface Infrastructure {
  docker: Docker;
  nginx: TestNginx;
  /** A fresh state dir for the CLI under test. */
  stateDir: string;
  /** Environment for the CLI under test (see cliEnvFor); add BERTH_REPO and BERTH_ENV. */
  cliEnv: NodeJS.ProcessEnv;
  /** Stops nginx and removes the state dir; containers are the suite's to remove (removeEnv). */
  teardown(): Promise<void>;
}

/** Sets up the Infrastructure, or skips (locally) / fails (CI) when Docker or nginx is missing. */
export async function infrastructure(t: TestContext): Promise<Infrastructure | undefined> {
  const docker = await requireDocker(t);
  if (!docker) return undefined;
  const nginx = await startNginx(t);
  if (!nginx) return undefined;
  await ensureDemoImages(docker);
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'berth-state-'));
  return {
    docker,
    nginx,
    stateDir,
    cliEnv: cliEnvFor(nginx, stateDir),
    teardown: async () => {
      nginx.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** The Infrastructure plus a private copy of example-repo; teardown also removes the copy's containers. */
export interface Stage extends Infrastructure {
  repo: ReturnType<typeof copyExampleRepo>;
}

/** Sets up a Stage, or skips (locally) / fails (CI) when Docker or nginx is missing. */
export async function stage(t: TestContext): Promise<Stage | undefined> {
  const infra = await infrastructure(t);
  if (!infra) return undefined;
  const repo = copyExampleRepo();
  return {
    ...infra,
    repo,
    teardown: async () => {
      await removeEnv(infra.docker, repo.env);
      await infra.teardown();
      repo.cleanup();
    },
  };
}
