import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { memoryRevision, REPO_YAML, ROOT } from '../support/repo.js';

const TEMPLATES = path.join(ROOT, 'overlays');
const web = `apiVersion: berth/v1
kind: App
metadata: { name: web }
spec:
  image: example/web:1.4.1
  replicas: 2
  env: { LOG_LEVEL: info }
  ports: [{ containerPort: 8080 }]
  healthCheck: { http: { path: /health, port: 8080 } }
  route: { host: web.example.com }
`;

// The shipped templates must apply cleanly to a typical app: they are documentation users copy.
describe('overlay templates in overlays/', () => {
  for (const name of readdirSync(TEMPLATES).filter((f) => f.endsWith('.yaml'))) {
    it(`${name} applies to a typical app`, () => {
      const files = { 'berth.yaml': REPO_YAML, 'apps/web.yaml': web, [`overlays/production/${name}`]: readFileSync(path.join(TEMPLATES, name), 'utf8') };
      const result = renderEnvironment(memoryRevision(files), 'production', { secrets: envSecretSource({}) });
      assert.ok(result.ok, result.ok ? '' : result.problems.map((p) => p.message).join('\n'));
      assert.deepEqual(result.state.apps[0]!.sources, ['apps/web.yaml', `overlays/production/${name}`]);
    });
  }
});
