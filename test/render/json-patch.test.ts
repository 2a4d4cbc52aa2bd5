import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Operation } from 'rfc6902';
import { applyJsonPatch, applyMergePatch } from '../../src/render/json-patch.js';

// Cases from RFC 6902 appendix A and the json-patch test suite: [name, doc, patch, expected | error pattern].
const cases: [string, unknown, object[], unknown][] = [
  ['A.1 add an object member', { foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }], { baz: 'qux', foo: 'bar' }],
  ['A.2 add an array element', { foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }], { foo: ['bar', 'qux', 'baz'] }],
  ['A.3 remove an object member', { baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }], { foo: 'bar' }],
  ['A.4 remove an array element', { foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }], { foo: ['bar', 'baz'] }],
  ['A.5 replace a value', { baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }], { baz: 'boo', foo: 'bar' }],
  ['A.6 move a value', { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }], { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } }],
  ['A.7 move an array element', { foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }], { foo: ['all', 'cows', 'eat', 'grass'] }],
  ['A.8 test success', { baz: 'qux', foo: ['a', 2, 'c'] }, [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }], { baz: 'qux', foo: ['a', 2, 'c'] }],
  ['A.9 test error', { baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }], /test failed/],
  ['A.10 add a nested member object', { foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }], { foo: 'bar', child: { grandchild: {} } }],
  ['A.12 add to a nonexistent target', { foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }], /\/baz does not exist/],
  ['A.14 ~ escape ordering', { '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: 10 }], { '/': 9, '~1': 10 }],
  ['A.15 comparing strings and numbers', { '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: '10' }], /test failed/],
  ['A.16 add an array value', { foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }], { foo: ['bar', ['abc', 'def']] }],
  ['replace the whole document', { a: 1 }, [{ op: 'replace', path: '', value: { b: 2 } }], { b: 2 }],
  ['array index with a leading zero', { a: [1, 2] }, [{ op: 'replace', path: '/a/01', value: 3 }], /"01" is not a valid array index/],
  ['array index past the end', { a: [1] }, [{ op: 'add', path: '/a/2', value: 3 }], /index 2 is out of range/],
  ['remove a missing member', { a: 1 }, [{ op: 'remove', path: '/b' }], /\/b does not exist/],
  ['copy from a missing path', { a: 1 }, [{ op: 'copy', from: '/x', path: '/b' }], /from: \/x does not exist/],
  ['pointer without a leading slash', { a: 1 }, [{ op: 'add', path: 'a', value: 1 }], /not a JSON pointer/],
  ['bad ~ escape', { a: 1 }, [{ op: 'add', path: '/a~2', value: 1 }], /not a JSON pointer/],
  ['unknown op', { a: 1 }, [{ op: 'frobnicate', path: '/a' }], /.+/],
  ['test deep equality of objects', { a: { b: [1, { c: 2 }] } }, [{ op: 'test', path: '/a', value: { b: [1, { c: 2 }] } }], { a: { b: [1, { c: 2 }] } }],
];

describe('applyJsonPatch (RFC 6902)', () => {
  for (const [name, doc, patch, expected] of cases) {
    it(name, () => {
      const before = structuredClone(doc);
      const result = applyJsonPatch(doc, patch as Operation[]);
      assert.deepEqual(doc, before, 'input must never be modified');
      if (expected instanceof RegExp) {
        assert.ok(!result.ok, 'expected the patch to fail');
        assert.match(result.message, expected);
      } else {
        assert.ok(result.ok, result.ok ? '' : result.message);
        assert.deepEqual(result.value, expected);
      }
    });
  }

  it('rejects the whole patch when a later operation fails (never half-applied)', () => {
    const doc = { replicas: 1, image: 'a:1' };
    const result = applyJsonPatch(doc, [
      { op: 'replace', path: '/replicas', value: 5 },
      { op: 'test', path: '/image', value: 'b:2' },
    ]);
    assert.ok(!result.ok);
    assert.equal(result.index, 1);
    assert.deepEqual(doc, { replicas: 1, image: 'a:1' });
  });
});

describe('applyMergePatch (RFC 7396 appendix A)', () => {
  const mergeCases: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, expected] of mergeCases) {
    it(`${JSON.stringify(target)} + ${JSON.stringify(patch)}`, () => {
      assert.deepEqual(applyMergePatch(target, patch), expected);
    });
  }
});

describe('hostile patches', () => {
  it('keeps a "__proto__" merge key as an own field, never the prototype', () => {
    const out = applyMergePatch({ spec: { image: 'a' } }, JSON.parse('{"spec":{"image":null,"__proto__":{"image":"b"}}}')) as { spec: Record<string, unknown> };
    assert.equal(Object.getPrototypeOf(out.spec), Object.prototype);
    assert.deepEqual(Object.keys(out.spec), ['__proto__']);
    assert.equal(out.spec.image, undefined, 'no inherited image');
  });

  it('refuses a "__proto__" segment in a patch pointer', () => {
    const r = applyJsonPatch({ spec: {} }, [{ op: 'add', path: '/spec/__proto__/image', value: 'x' }]);
    assert.deepEqual(r, { ok: false, index: 0, message: '"/spec/__proto__/image" has a "__proto__" segment; no app field has that name' });
  });

  it('stops a copy that doubles the document past the node limit, before memory runs out', () => {
    const ops: Operation[] = [{ op: 'add', path: '/spec/command', value: ['x'] }];
    for (let i = 0; i < 40; i++) ops.push({ op: 'copy', from: '/spec/command', path: '/spec/command/-' });
    const r = applyJsonPatch({ spec: {} }, ops);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.index === 16, `refused at the copy that crosses 100,000 nodes (got ${!r.ok && r.index})`);
    assert.match(!r.ok ? r.message : '', /the copy would grow the app past 100,000 nodes/);
  });
});
