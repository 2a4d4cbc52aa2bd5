import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/render/parse.js';
import { SCHEMA_DIR, validateDoc } from '../../src/render/schema.js';

function check(kind: 'App' | 'Overlay' | 'Plugin' | 'Repository', yaml: string) {
  const parsed = parseYaml('x.yaml', yaml);
  assert.ok(parsed.ok);
  return validateDoc(kind, parsed.doc);
}

describe('schemas', () => {
  it('every schema file declares the draft 2020-12 dialect', () => {
    for (const name of readdirSync(SCHEMA_DIR)) {
      const schema = JSON.parse(readFileSync(SCHEMA_DIR + name, 'utf8')) as { $schema: string };
      assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema', name);
    }
  });

  const valid: [string, 'App' | 'Overlay' | 'Plugin' | 'Repository', string][] = [
    ['minimal app', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: a }\nspec: { image: "x:1" }\n'],
    ['cpu as cores', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: a }\nspec: { image: "x:1", resources: { cpu: "1.5", memory: 512m } }\n'],
    ['canary with steps', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: a }\nspec: { image: "x:1", strategy: { type: canary, steps: [{ weight: 10 }, { weight: 50, pauseSeconds: 5 }] } }\n'],
    ['scaling schedule', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: a }\nspec: { image: "x:1", scaling: { min: 1, max: 4, schedule: [{ cron: "0 8 * * 1-5", replicas: 4, timezone: Europe/Paris }] } }\n'],
    ['volumes and exec probe', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: a }\nspec: { image: "x:1", volumes: [{ source: data, target: /data }], healthCheck: { exec: { command: [/bin/true] } } }\n'],
    ['overlay with both patches', 'Overlay', 'apiVersion: berth/v1\nkind: Overlay\ntarget: a\npatch: [{ op: remove, path: /spec/route }]\nmerge: { spec: { replicas: 2 } }\n'],
    ['plugin', 'Plugin', 'apiVersion: berth/v1\nkind: Plugin\nmetadata: { name: p }\nspec: { type: scaler, use: cpu, config: { target: 70 } }\n'],
  ];
  for (const [name, kind, yaml] of valid) {
    it(`accepts: ${name}`, () => assert.deepEqual(check(kind, yaml), []));
  }

  const invalid: [string, 'App' | 'Overlay' | 'Plugin' | 'Repository', string, RegExp][] = [
    ['canary without steps', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: a }\nspec: { image: "x:1", strategy: { type: canary } }\n', /missing required field "steps"/],
    ['maxSurge and maxUnavailable both 0', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: a }\nspec: { image: "x:1", strategy: { maxSurge: 0, maxUnavailable: 0 } }\n', /cannot both be 0/],
    ['hostPort with rolling strategy', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: a }\nspec: { image: "x:1", ports: [{ containerPort: 80, hostPort: 8080 }], strategy: { type: rolling } }\n', /use strategy\.type recreate/],
    ['name with capitals', 'App', 'apiVersion: berth/v1\nkind: App\nmetadata: { name: Web }\nspec: { image: "x:1" }\n', /"Web" is not valid/],
    ['wrong kind', 'App', 'apiVersion: berth/v1\nkind: Ap\nmetadata: { name: a }\nspec: { image: "x:1" }\n', /expected "App", got "Ap"/],
    ['overlay op without value', 'Overlay', 'apiVersion: berth/v1\nkind: Overlay\ntarget: a\npatch: [{ op: add, path: /spec/x }]\n', /missing required field "value"/],
    ['overlay with nothing to do', 'Overlay', 'apiVersion: berth/v1\nkind: Overlay\ntarget: a\n', /set at least one of patch, merge/],
    ['plugin of unknown type', 'Plugin', 'apiVersion: berth/v1\nkind: Plugin\nmetadata: { name: p }\nspec: { type: scaling, use: cpu }\n', /did you mean "scaler"\?/],
    ['environment without branch', 'Repository', 'apiVersion: berth/v1\nkind: Repository\nenvironments: { prod: {} }\n', /missing required field "branch"/],
  ];
  for (const [name, kind, yaml, message] of invalid) {
    it(`rejects: ${name}`, () => {
      const problems = check(kind, yaml);
      assert.ok(problems.some((p) => message.test(p.message)), problems.map((p) => p.message).join('\n'));
    });
  }
});
