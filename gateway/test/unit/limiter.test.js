// limiter(n): at most n at once, first come first served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { limiter } from '../../lib/limiter.js';

const deferred = () => {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
};
const tick = () => new Promise((r) => setImmediate(r));

test('runs at most n at once, the rest in order', async () => {
  const limit = limiter(2);
  const started = [];
  const ds = [0, 1, 2, 3, 4].map(() => deferred());
  const results = ds.map((d, i) => limit(() => { started.push(i); return d.promise; }));
  await tick();
  assert.deepEqual(started, [0, 1]);
  assert.deepEqual(limit.stats(), { active: 2, waiting: 3 });
  ds[1].resolve('b');
  await tick();
  assert.deepEqual(started, [0, 1, 2]);
  ds[0].resolve('a');
  ds[2].resolve('c');
  await tick();
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  ds[3].resolve('d');
  ds[4].resolve('e');
  assert.deepEqual(await Promise.all(results), ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(limit.stats(), { active: 0, waiting: 0 });
});

test('a failure is passed on and frees its slot', async () => {
  const limit = limiter(1);
  const failing = limit(() => Promise.reject(new Error('boom')));
  const throwing = limit(() => { throw new Error('sync boom'); });
  const after = limit(async () => 'ok');
  await assert.rejects(failing, /boom/);
  await assert.rejects(throwing, /sync boom/);
  assert.equal(await after, 'ok');
  assert.deepEqual(limit.stats(), { active: 0, waiting: 0 });
});
