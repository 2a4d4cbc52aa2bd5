import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blobId } from '../../src/source/directory.js';
import type { RepoFile, Revision } from '../../src/source/types.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const EXAMPLE_REPO = path.join(ROOT, 'example-repo');
export const BROKEN = path.join(ROOT, 'test/fixtures/broken');

/** An in-memory revision from path → content, for table-driven render tests. */
export function memoryRevision(files: Record<string, string>): Revision {
  const map = new Map<string, RepoFile>();
  for (const p of Object.keys(files).sort()) map.set(p, { path: p, id: blobId(files[p]!), content: files[p]! });
  return { ref: {}, files: map };
}

export const REPO_YAML = `apiVersion: berth/v1
kind: Repository
environments:
  staging: { branch: staging }
  production: { branch: main }
secrets:
  db-password: { description: database password }
`;

export function appYaml(name: string, extra = ''): string {
  return `apiVersion: berth/v1
kind: App
metadata: { name: ${name} }
spec:
  image: berth-demo/httpd:1.0
  ports: [{ containerPort: 8080 }]
${extra}`;
}

/** Replaces `from` with `to` in `dir/file`; fails the test when the edit would change nothing (a stale fixture). */
export function editFile(dir: string, file: string, from: string | RegExp, to: string): void {
  const p = path.join(dir, file);
  const text = readFileSync(p, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit of ${file} changed nothing: ${String(from)} not found`);
  writeFileSync(p, next);
}
