import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { specDiff } from '../../src/plan/diff.js';

describe('specDiff', () => {
  it('compares canonical forms: keys in another order are no change (#11 item 17)', () => {
    const old = JSON.stringify({ image: 'a', ports: [{ containerPort: 8080, name: 'http' }], env: { DB: 'secret:db:sha256:aaaa' } });
    const diff = specDiff(old, { image: 'a', ports: [{ name: 'http', containerPort: 8080 }], env: { DB: 'secret:db:sha256:bbbb' } });
    assert.deepEqual(diff, ['spec.env.DB: (secret changed)']);
  });
  it('still names real changes inside arrays of objects', () => {
    const diff = specDiff(JSON.stringify({ ports: [{ containerPort: 8080 }] }), { ports: [{ containerPort: 9090 }] });
    assert.deepEqual(diff, ['spec.ports: [{"containerPort":8080}] → [{"containerPort":9090}]']);
  });
});
