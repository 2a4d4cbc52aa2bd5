import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../../src/errors.js';
import { Lifecycle, shortestPath, TRANSITIONS, type StateChange } from '../../src/plugins/lifecycle.js';
import { PLUGIN_STATES, type PluginState } from '../../src/plugins/types.js';

/** A lifecycle that records every change it reports. */
function recorded(name = 'audit'): { lc: Lifecycle; changes: StateChange[] } {
  const changes: StateChange[] = [];
  return { lc: new Lifecycle(name, (c) => void changes.push(c)), changes };
}

/** A lifecycle brought to `state` along allowed moves; the changes of getting there are forgotten. */
function at(state: PluginState): { lc: Lifecycle; changes: StateChange[] } {
  const r = recorded();
  r.lc.walk(state);
  assert.equal(r.lc.state, state);
  r.changes.length = 0;
  return r;
}

const steps = (changes: StateChange[]) => changes.map((c) => `${c.from}→${c.to}`);

describe('plugin lifecycle: transitions', () => {
  it('starts inactive and reports each move of the happy path, in order, with from and to', () => {
    const { lc, changes } = recorded('audit');
    assert.equal(lc.state, 'inactive');
    for (const s of ['installing', 'installed', 'configuring', 'starting', 'running'] as const) lc.to(s, 'enabled by plugins/audit.yaml');
    assert.equal(lc.state, 'running');
    assert.deepEqual(changes, [
      { plugin: 'audit', from: 'inactive', to: 'installing', reason: 'enabled by plugins/audit.yaml' },
      { plugin: 'audit', from: 'installing', to: 'installed', reason: 'enabled by plugins/audit.yaml' },
      { plugin: 'audit', from: 'installed', to: 'configuring', reason: 'enabled by plugins/audit.yaml' },
      { plugin: 'audit', from: 'configuring', to: 'starting', reason: 'enabled by plugins/audit.yaml' },
      { plugin: 'audit', from: 'starting', to: 'running', reason: 'enabled by plugins/audit.yaml' },
    ]);
  });

  it('reports a change without a reason as one without the field', () => {
    const { lc, changes } = recorded('audit');
    lc.to('installing');
    assert.deepEqual(changes, [{ plugin: 'audit', from: 'inactive', to: 'installing' }]);
  });

  it('runs a config change and a stop through their own states', () => {
    const { lc, changes } = at('running');
    for (const s of ['updating', 'configuring', 'starting', 'running', 'maintenance', 'running', 'stopping', 'installed', 'inactive'] as const) lc.to(s);
    assert.deepEqual(steps(changes), [
      'running→updating', 'updating→configuring', 'configuring→starting', 'starting→running',
      'running→maintenance', 'maintenance→running', 'running→stopping', 'stopping→installed', 'installed→inactive',
    ]);
  });

  it('is the documented table: the happy path, updating, stopping, error and maintenance', () => {
    assert.deepEqual(TRANSITIONS, {
      inactive: ['installing'],
      installing: ['installed', 'error'],
      installed: ['configuring', 'inactive'],
      configuring: ['starting', 'error'],
      starting: ['running', 'error'],
      running: ['updating', 'stopping', 'maintenance', 'error'],
      updating: ['configuring', 'error'],
      maintenance: ['running', 'stopping', 'error'],
      stopping: ['installed', 'error'],
      error: ['configuring', 'stopping', 'inactive'],
    });
  });

  it('every state lists only known states as next, and every state can be reached', () => {
    for (const s of PLUGIN_STATES) {
      for (const next of TRANSITIONS[s]) assert.ok(PLUGIN_STATES.includes(next), `${s} → ${next}`);
      for (const target of PLUGIN_STATES) assert.ok(shortestPath(s, target), `${s} cannot reach ${target}`);
    }
  });

  // The whole table: from each state, every state it does not list is refused.
  for (const from of PLUGIN_STATES) {
    const refused = PLUGIN_STATES.filter((s) => !TRANSITIONS[from].includes(s));
    it(`from ${from}, refuses ${refused.join(', ')} with E_PLUGIN_STATE naming from, to and the allowed states`, () => {
      for (const to of refused) {
        const { lc, changes } = at(from);
        assert.equal(lc.can(to), false);
        assert.throws(
          () => lc.to(to, 'test'),
          (err: unknown) => {
            assert.ok(err instanceof BerthError);
            assert.equal(err.code, 'E_PLUGIN_STATE');
            assert.deepEqual(err.context, { plugin: 'audit', from, to });
            assert.ok(err.message.includes(`from ${from} to ${to}`), err.message);
            for (const allowed of TRANSITIONS[from]) assert.ok(err.message.includes(allowed), `${err.message} names ${allowed}`);
            return true;
          },
          `${from} → ${to}`,
        );
        assert.equal(lc.state, from, 'a refused move leaves the state as it was');
        assert.deepEqual(changes, [], 'a refused move is not reported');
      }
    });
  }

  it('allows every move the table lists', () => {
    for (const from of PLUGIN_STATES) {
      for (const to of TRANSITIONS[from]) {
        const { lc, changes } = at(from);
        assert.equal(lc.can(to), true);
        lc.to(to);
        assert.deepEqual(steps(changes), [`${from}→${to}`]);
      }
    }
  });
});

describe('plugin lifecycle: walk', () => {
  it('takes the way out of error through stopping: error → stopping → installed', () => {
    const { lc, changes } = at('error');
    lc.walk('installed', 'removed from the repo');
    assert.deepEqual(changes, [
      { plugin: 'audit', from: 'error', to: 'stopping', reason: 'removed from the repo' },
      { plugin: 'audit', from: 'stopping', to: 'installed', reason: 'removed from the repo' },
    ]);
  });

  it('stops a running plugin through stopping and installed, never through error', () => {
    const { lc, changes } = at('running');
    lc.walk('inactive');
    assert.deepEqual(steps(changes), ['running→stopping', 'stopping→installed', 'installed→inactive']);
  });

  it('takes a plugin in maintenance out through stopping, not through a made-up error', () => {
    const { lc, changes } = at('maintenance');
    lc.walk('inactive');
    assert.deepEqual(steps(changes), ['maintenance→stopping', 'stopping→installed', 'installed→inactive']);
  });

  it('walks the happy path from inactive to running', () => {
    const { lc, changes } = recorded();
    lc.walk('running');
    assert.deepEqual(steps(changes), ['inactive→installing', 'installing→installed', 'installed→configuring', 'configuring→starting', 'starting→running']);
  });

  it('goes to error directly when error is the target', () => {
    const { lc, changes } = at('running');
    lc.walk('error');
    assert.deepEqual(steps(changes), ['running→error']);
  });

  it('does nothing when already there', () => {
    const { lc, changes } = at('installed');
    lc.walk('installed');
    assert.equal(lc.state, 'installed');
    assert.deepEqual(changes, []);
  });

  it('every path shortestPath gives is made of allowed moves', () => {
    for (const from of PLUGIN_STATES) {
      for (const to of PLUGIN_STATES) {
        const path = shortestPath(from, to)!;
        let s = from;
        for (const next of path) {
          assert.ok(TRANSITIONS[s].includes(next), `${from} → ${to}: ${s} → ${next}`);
          s = next;
        }
        assert.equal(s, to);
        assert.ok(!path.slice(0, -1).includes('error'), `${from} → ${to} passes through error: ${path.join(' → ')}`);
      }
    }
  });

  it('throws E_PLUGIN_STATE for a state it cannot reach, and moves nowhere', () => {
    const { lc, changes } = at('running');
    assert.throws(() => lc.walk('retired' as PluginState), (err: unknown) => err instanceof BerthError && err.code === 'E_PLUGIN_STATE' && err.context.from === 'running' && err.context.to === 'retired');
    assert.equal(lc.state, 'running');
    assert.deepEqual(changes, []);
    assert.equal(shortestPath('running', 'retired' as PluginState), undefined);
  });
});
