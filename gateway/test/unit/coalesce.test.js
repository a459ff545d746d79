// coalescer: identical state_syncs waiting for the pool share one query; a
// query that has started is never joined.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalescer } from '../../lib/coalesce.js';
import { limiter } from '../../lib/limiter.js';

// a query the test releases by hand: run() records its start and returns a
// promise resolved with release(value)
function queries() {
  const started = [];
  const run = (key) => () => new Promise((resolve, reject) => started.push({ key, resolve, reject }));
  return { started, run };
}
const tick = () => new Promise((r) => setImmediate(r));

test('identical calls waiting for a slot share one query and its answer', async () => {
  const slot = limiter(1);
  let told = 0;
  const shared = coalescer(slot, () => told++);
  const q = queries();
  const a = shared('u|authenticated|5|h', q.run('a'));    // takes the slot at once
  const b = shared('u|authenticated|5|h', q.run('b'));    // waits ...
  const c = shared('u|authenticated|5|h', q.run('c'));    // ... and c joins b
  assert.equal(q.started.length, 1);
  assert.deepEqual(shared.stats, { queries: 2, joined: 1 });
  assert.equal(told, 1, 'the metric hears of the shared one');
  q.started[0].resolve({ cursor: 5 });
  assert.deepEqual(await a, { cursor: 5 });
  await tick();
  assert.equal(q.started.length, 2);
  assert.equal(q.started[1].key, 'b');
  q.started[1].resolve({ cursor: 6 });
  const [rb, rc] = await Promise.all([b, c]);
  assert.equal(rb, rc, 'one answer for both');
  assert.deepEqual(rb, { cursor: 6 });
  assert.equal(q.started.length, 2, 'c ran no query of its own');
  assert.equal(shared.waiting(), 0);
});

test('a query that has started is never joined: the next call waits for a new one', async () => {
  const slot = limiter(2);
  const shared = coalescer(slot);
  const q = queries();
  const a = shared('k', q.run('a'));      // starts at once
  const b = shared('k', q.run('b'));      // a slot is free: starts at once too
  assert.equal(q.started.length, 2);
  assert.deepEqual(shared.stats, { queries: 2, joined: 0 });
  q.started[0].resolve(1);
  q.started[1].resolve(2);
  assert.deepEqual([await a, await b], [1, 2]);
});

test('different keys (another cursor, history, role or user) never share', async () => {
  const slot = limiter(1);
  const shared = coalescer(slot);
  const q = queries();
  const first = shared('u|authenticated|5|h', q.run('first'));
  const keys = ['u|authenticated|4|h', 'u|authenticated|5|h2', 'u|service_role|5|h', 'v|authenticated|5|h'];
  const others = keys.map((k) => shared(k, q.run(k)));
  assert.deepEqual(shared.stats, { queries: 5, joined: 0 });
  for (let i = 0; i <= keys.length; i++) {
    q.started[i].resolve(q.started[i].key);
    await tick();
  }
  assert.equal(await first, 'first');
  assert.deepEqual(await Promise.all(others), keys);
});

test('an error is shared by the joined calls, and the key is free again after it', async () => {
  const slot = limiter(1);
  const shared = coalescer(slot);
  const q = queries();
  const a = shared('k', q.run('a'));
  const b = shared('k', q.run('b'));
  const c = shared('k', q.run('c'));
  q.started[0].resolve('ok');
  await a;
  await tick();
  q.started[1].reject(Object.assign(new Error('gone'), { code: '08006' }));
  await assert.rejects(b, { code: '08006' });
  await assert.rejects(c, { code: '08006' });
  const d = shared('k', q.run('d'));
  assert.equal(q.started.at(-1).key, 'd');
  q.started.at(-1).resolve('again');
  assert.equal(await d, 'again');
});
