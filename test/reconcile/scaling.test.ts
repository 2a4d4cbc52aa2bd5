import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scaledOf, withScaling } from '../../src/reconcile/plugins.js';
import { desiredOf } from '../support/desired.js';

// withScaling: the desired state with the replicas scalers decided, within each app's bounds.
describe('withScaling', () => {
  const desired = () =>
    desiredOf({
      web: '  replicas: 2\n  scaling: { min: 1, max: 4 }\n',
      api: '  replicas: 3\n',
      half: '  replicas: 2\n  scaling: { max: 6 }\n',
    });
  const replicasOf = (state: ReturnType<typeof desired>) => Object.fromEntries(state.apps.map((a) => [a.name, [a.spec.replicas, a.scaledFrom]]));

  const cases: { name: string; scaled: Record<string, number>; want: Record<string, [number, number | undefined]> }[] = [
    { name: 'a count within the bounds is taken, and the repo count kept as scaledFrom', scaled: { web: 3 }, want: { web: [3, 2], api: [3, undefined], half: [2, undefined] } },
    { name: 'above max: clamped to max', scaled: { web: 9 }, want: { web: [4, 2], api: [3, undefined], half: [2, undefined] } },
    { name: 'below min: clamped to min', scaled: { web: 0 }, want: { web: [1, 2], api: [3, undefined], half: [2, undefined] } },
    { name: 'the repo count: the app is left as it is (no scaledFrom)', scaled: { web: 2 }, want: { web: [2, undefined], api: [3, undefined], half: [2, undefined] } },
    { name: 'an app without bounds keeps the repo count', scaled: { api: 1 }, want: { web: [2, undefined], api: [3, undefined], half: [2, undefined] } },
    { name: 'an app with only one bound keeps the repo count', scaled: { half: 5 }, want: { web: [2, undefined], api: [3, undefined], half: [2, undefined] } },
    { name: 'an app that is not in the repo is ignored', scaled: { gone: 5, web: 4 }, want: { web: [4, 2], api: [3, undefined], half: [2, undefined] } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(replicasOf(withScaling(desired(), new Map(Object.entries(c.scaled)))), c.want));
  }

  it('changes nothing else: same object when nothing is scaled, same spec hash when something is', () => {
    const state = desired();
    assert.equal(withScaling(state, undefined), state);
    assert.equal(withScaling(state, new Map()), state);
    assert.equal(withScaling(state, new Map([['api', 1]])), state, 'nothing applied: the very same state');
    const scaled = withScaling(state, new Map([['web', 3]]));
    assert.notEqual(scaled, state);
    const [before, after] = [state.apps.find((a) => a.name === 'web')!, scaled.apps.find((a) => a.name === 'web')!];
    assert.equal(after.specHash, before.specHash, 'replicas are not part of the spec hash: the same containers');
    assert.deepEqual({ ...after.spec, replicas: 2 }, before.spec);
    assert.equal(before.spec.replicas, 2, 'the input is not changed');
    assert.equal(scaled.apps.find((a) => a.name === 'api'), state.apps.find((a) => a.name === 'api'), 'other apps are the same objects');
  });

  it('scaledOf reads the decisions memory keeps', () => {
    assert.deepEqual([...scaledOf({})], []);
    assert.deepEqual([...scaledOf({ scaled: { web: { replicas: 4, scaler: 'office-hours', reason: 'schedule 09:00 (UTC): 5', at: '2025-01-01T10:00:00.000Z' } } })], [['web', 4]]);
  });
});
