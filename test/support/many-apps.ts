import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
export function appNames(count: number): string[] {
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
    writeFileSync(
      path.join(dir, 'apps', `${app}.yaml`),
      `apiVersion: berth/v1
kind: App
metadata: { name: ${app} }
spec:
  image: berth-demo/httpd:1.0
  replicas: 1
  command: ["/bin/sh", "-c", "echo ${app} > /www/index.html && exec httpd -f -p 8080 -h /www"]
  ports: [{ containerPort: 8080 }]
  stopGracePeriodSeconds: 1
  healthCheck: { http: { path: ${failing ? '/missing' : '/health'}, port: 8080 }, intervalSeconds: ${options.intervalSeconds ?? 0.25}, timeoutSeconds: 2, failureThreshold: 2 }
  route: { host: ${host(app)}, drainSeconds: 0 }
${deps ? `  dependsOn: [${deps.join(', ')}]\n` : ''}${options.extra ?? ''}`,
    );
  }
  return { dir, env, apps, host, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
