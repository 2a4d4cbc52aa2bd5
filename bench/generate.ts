import { blobId } from '../src/source/directory.js';
import type { RepoFile, Revision } from '../src/source/types.js';

/** A synthetic config repo: `apps` apps, 2 environments, an overlay per app in production and every 3rd in staging. */
export function generateRepo(apps: number, seed = 0): Map<string, string> {
  const files = new Map<string, string>();
  files.set('berth.yaml', `apiVersion: berth/v1
kind: Repository
environments:
  staging: { branch: staging }
  production: { branch: main }
secrets:
  db-password: { description: db }
`);
  for (let i = 0; i < apps; i++) {
    const name = `app-${String(i).padStart(4, '0')}`;
    const dep = i > 0 && i % 10 !== 0 ? `\n  dependsOn: [app-${String(i - 1).padStart(4, '0')}]` : '';
    files.set(`apps/${name}.yaml`, `apiVersion: berth/v1
kind: App
metadata:
  name: ${name}
  labels: { team: team-${i % 17} }
spec:
  image: registry.example.test/${name}:1.${seed}.${i % 7}
  replicas: ${1 + (i % 3)}
  command: ["/bin/httpd", "-f", "-p", "8080"]
  env:
    LOG_LEVEL: info
    INDEX: "${i}"
    DB_PASSWORD: { secretRef: db-password }
  ports: [{ name: http, containerPort: 8080 }]
  resources: { cpu: "250m", memory: "128Mi" }
  healthCheck:
    http: { path: /health, port: 8080 }
    intervalSeconds: 2
  route: { host: ${name}.example.test, path: / }
  strategy: { type: rolling, maxSurge: 1, maxUnavailable: 0 }${dep}
`);
    files.set(`overlays/production/${name}.yaml`, `apiVersion: berth/v1
kind: Overlay
target: ${name}
patch:
  - { op: replace, path: /spec/replicas, value: ${2 + (i % 4)} }
merge:
  spec: { env: { LOG_LEVEL: warn } }
`);
    if (i % 3 === 0) {
      files.set(`overlays/staging/${name}.yaml`, `apiVersion: berth/v1
kind: Overlay
target: ${name}
merge:
  spec: { replicas: 1 }
`);
    }
  }
  return files;
}

export function toRevision(files: Map<string, string>): Revision {
  const map = new Map<string, RepoFile>();
  for (const [p, content] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) map.set(p, { path: p, id: blobId(content), content });
  return { ref: {}, files: map };
}

export function stats(samples: number[]): { median: number; min: number; max: number; p90: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), min: s[0]!, max: s[s.length - 1]!, p90: at(0.9) };
}
