// The storage adapters, and the rule that persona text never reaches them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { indexedDB as fakeIndexedDB } from 'fake-indexeddb';
import { memoryStorage, localStorageAdapter, indexedDbStorage } from '../src/storage.js';

function fakeLocalStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
    m,
  };
}

for (const [name, make] of [
  ['memoryStorage', () => memoryStorage()],
  ['localStorageAdapter', () => localStorageAdapter({ localStorage: fakeLocalStorage(), prefix: 'app:' })],
  ['indexedDbStorage', () => indexedDbStorage({ indexedDB: fakeIndexedDB, name: `t-${Math.random()}` })],
]) {
  test(`${name}: get, set, remove`, async () => {
    const s = make();
    assert.equal(await s.get('k'), null);
    await s.set('k', '{"a":1}');
    assert.equal(await s.get('k'), '{"a":1}');
    await s.set('k', 'two');
    assert.equal(await s.get('k'), 'two');
    await s.remove('k');
    assert.equal(await s.get('k'), null);
    await s.close?.();
  });
}

test('localStorageAdapter uses its prefix', async () => {
  const ls = fakeLocalStorage();
  const s = localStorageAdapter({ localStorage: ls, prefix: 'app:' });
  await s.set('roastr_state', 'x');
  assert.deepEqual([...ls.m.keys()], ['app:roastr_state']);
});

test('adapters refuse to start without their browser API', () => {
  assert.throws(() => localStorageAdapter({ localStorage: null }), TypeError);
  assert.throws(() => indexedDbStorage({ indexedDB: null }), TypeError);
});
