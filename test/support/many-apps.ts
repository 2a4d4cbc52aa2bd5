import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpdApp } from './apps.js';

/** Options of a generated environment: `count` routed apps of one replica each, served by busybox httpd. */
export interface ManyAppsOptions {
  count: number;
  /** Apps whose health check fails (their /health does not exist). */
  failing?: readonly string[];
  /** `dependsOn` per app name. */
  dependsOn?: Readonly<Record<string, readonly string[]>>;
  /** Health-check interval in seconds (default 0.25). */
  intervalSeconds?: number;
  /** Extra YAML lines under `spec:` of every app. */
  extra?: string;
}

export interface ManyAppsRepo {
  dir: string;
  env: string;
  apps: string[];
  host(app: string): string;
  cleanup(): void;
}

/** App names app000, app001… (sorted the way berth sorts them). */
function appNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `app${String(i).padStart(3, '0')}`);
}

/**
 * A config repo (a plain directory) with one environment of `count` routed apps, each answering
 * its own name on `/`, for scale tests and the many-apps benchmark. The environment name is unique,
 * so runs sharing one dockerd never touch each other's containers.
 */
export function manyAppsRepo(options: ManyAppsOptions): ManyAppsRepo {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-many-'));
  const env = `many${Math.random().toString(36).slice(2, 7)}`;
  const apps = appNames(options.count);
  const host = (app: string): string => `${app}.${env}.test`;
  mkdirSync(path.join(dir, 'apps'));
  writeFileSync(path.join(dir, 'berth.yaml'), `apiVersion: berth/v1\nkind: Repository\nenvironments:\n  ${env}: { branch: main }\n`);
  for (const app of apps) {
    const failing = options.failing?.includes(app);
    const deps = options.dependsOn?.[app];
    const extra = `  stopGracePeriodSeconds: 1\n${deps ? `  dependsOn: [${deps.join(', ')}]\n` : ''}${options.extra ?? ''}`;
    writeFileSync(
      path.join(dir, 'apps', `${app}.yaml`),
      httpdApp({ name: app, host: host(app), drainSeconds: 0, intervalSeconds: options.intervalSeconds ?? 0.25, healthPath: failing ? '/missing' : '/health', healthCheck: 'timeoutSeconds: 2, failureThreshold: 2', extra }),
    );
  }
  return { dir, env, apps, host, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
