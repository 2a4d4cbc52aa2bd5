import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { validateRepository } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { readDirectoryRevision } from '../../src/source/directory.js';
import { BROKEN } from '../support/repo.js';

interface Expected {
  code: string;
  file: string;
  line: number;
  message: RegExp;
}

// One broken repo per error class: the first problem must name the file and line to fix.
const cases: Record<string, Expected> = {
  'yaml-syntax': { code: 'yaml-syntax', file: 'apps/web.yaml', line: 5, message: /YAML syntax error/ },
  'unknown-field': { code: 'unknown-field', file: 'apps/web.yaml', line: 7, message: /unknown field "replcas" in spec; did you mean "replicas"\?/ },
  'wrong-type': { code: 'schema', file: 'apps/web.yaml', line: 7, message: /spec\.replicas: expected integer, got string/ },
  'bad-memory': { code: 'schema', file: 'apps/web.yaml', line: 7, message: /"256MB" is not valid; expected e\.g\. "256Mi"/ },
  'duplicate-app': { code: 'duplicate-app', file: 'apps/web2.yaml', line: 3, message: /app "web" is already defined in apps\/web\.yaml/ },
  'route-conflict': { code: 'route-conflict', file: 'apps/www.yaml', line: 7, message: /route web\.example\.test\/ is already claimed by app "web"/ },
  'host-port-conflict': { code: 'host-port-conflict', file: 'apps/b.yaml', line: 8, message: /host port 8081\/tcp is already used by app "a"/ },
  'host-port-replicas': { code: 'schema', file: 'apps/a.yaml', line: 6, message: /pinned hostPort runs at most one replica/ },
  'unknown-dependency': { code: 'unknown-dependency', file: 'apps/web.yaml', line: 7, message: /unknown app "apii"; did you mean "api"\?/ },
  'dependency-cycle': { code: 'dependency-cycle', file: 'apps/a.yaml', line: 7, message: /dependsOn cycle: a → b → c → a/ },
  'overlay-unknown-target': { code: 'overlay-unknown-target', file: 'overlays/production/web.yaml', line: 3, message: /unknown app "wbe"; did you mean "web"\?/ },
  'overlay-test-failed': { code: 'overlay-failed', file: 'overlays/production/web.yaml', line: 6, message: /operation 1 \(test \/spec\/image\).*expected "berth-demo\/httpd:9\.9"/ },
  'overlay-leading-zero': { code: 'overlay-failed', file: 'overlays/staging/web.yaml', line: 5, message: /"00" is not a valid array index/ },
  'overlay-invalid-result': { code: 'schema', file: 'overlays/production/web.yaml', line: 6, message: /spec\.replicas: -1 must be >= 0/ },
  'overlay-unknown-env': { code: 'overlay-unknown-environment', file: 'overlays/prod/web.yaml', line: 1, message: /overlays\/prod\/ is not an environment/ },
  'secret-undeclared': { code: 'secret-missing', file: 'apps/web.yaml', line: 8, message: /secretRef "api-token" \(env TOKEN\) is not declared/ },
  'missing-repository': { code: 'missing-file', file: 'berth.yaml', line: 1, message: /no berth\.yaml at the repo root/ },
};

describe('broken fixture repos', () => {
  for (const [name, want] of Object.entries(cases)) {
    it(`${name}: ${want.code} at ${want.file}:${want.line}`, async () => {
      const revision = await readDirectoryRevision(path.join(BROKEN, name));
      const { problems } = validateRepository(revision, { secrets: envSecretSource({}), unresolvedSecrets: 'allow' });
      assert.ok(problems.length > 0, 'expected at least one problem');
      const p = problems[0]!;
      assert.equal(p.code, want.code);
      assert.equal(p.file, want.file);
      assert.equal(p.line, want.line);
      assert.ok(p.column >= 1);
      assert.match(p.message, want.message);
    });
  }
});
