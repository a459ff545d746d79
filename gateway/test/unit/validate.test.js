// Cursor and channel parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUuid, parseChannel, parseCursor } from '../../lib/validate.js';

const U = 'a1111111-1111-4111-8111-111111111111';

test('isUuid', () => {
  assert.equal(isUuid(U), true);
  assert.equal(isUuid(U.toUpperCase()), true);
  for (const x of [undefined, null, 7, '', `${U} `, U.slice(1), U.replace(/-/g, ''), `{${U}}`, 'g1111111-1111-4111-8111-111111111111']) {
    assert.equal(isUuid(x), false, String(x));
  }
});

test('parseCursor: a non-negative integer or a string of digits; missing is 0', () => {
  assert.equal(parseCursor(undefined), 0);
  assert.equal(parseCursor(null), 0);
  assert.equal(parseCursor(0), 0);
  assert.equal(parseCursor(42), 42);
  assert.equal(parseCursor('42'), 42);
  assert.equal(parseCursor('007'), 7);
  assert.equal(parseCursor(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  for (const x of [-1, 1.5, NaN, Infinity, 2 ** 53, '', ' 1', '1 ', '-1', '1e3', '0x10', 'abc', '12345678901234567', true, {}, [1]]) {
    assert.equal(parseCursor(x), null, JSON.stringify(x) ?? String(x));
  }
});

test('parseChannel: the own channel by default, user:<lower-case uuid> only', () => {
  assert.deepEqual(parseChannel(undefined, U), { channel: `user:${U}`, userId: U });
  assert.deepEqual(parseChannel(null, U.toUpperCase()), { channel: `user:${U}`, userId: U });
  const B = 'b2222222-2222-4222-8222-222222222222';
  assert.deepEqual(parseChannel(`user:${B}`, U), { channel: `user:${B}`, userId: B });   // the database decides
  for (const x of ['roastr_state', `user:${U.toUpperCase()}`, `User:${U}`, `user:${U} `, `user: ${U}`, 'user:', 7, {}, ['user:' + U]]) {
    assert.equal(parseChannel(x, U), null, JSON.stringify(x));
  }
});
