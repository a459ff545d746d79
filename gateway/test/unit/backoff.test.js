// backoff(): 100 ms doubling, capped, ±20 % jitter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoff } from '../../lib/backoff.js';

test('doubles from 100 ms up to the cap', () => {
  const mid = () => 0.5;   // no jitter
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoff(a, 5000, mid)), [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  assert.equal(backoff(1000, 5000, mid), 5000);   // no overflow to Infinity or NaN
  assert.equal(backoff(0, 100, mid), 100);
});

test('jitter stays within ±20 %', () => {
  assert.equal(backoff(0, 5000, () => 0), 80);
  assert.equal(backoff(0, 5000, () => 0.999999), 120);
  assert.equal(backoff(10, 5000, () => 0), 4000);
  assert.equal(backoff(10, 5000, () => 0.999999), 6000);
  for (let i = 0; i < 1000; i++) {
    const d = backoff(i % 8, 5000);
    const base = Math.min(100 * 2 ** (i % 8), 5000);
    assert.ok(d >= base * 0.8 && d <= base * 1.2, `${d} for ${base}`);
  }
});
