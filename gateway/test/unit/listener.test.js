// route(): which user a notification is for, per LISTEN mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { route, userChannel } from '../../lib/listener.js';

const U = 'a1111111-1111-4111-8111-111111111111';
const msg = { type: 'roasting_toggle', version: 2, fields: ['roasting.enabled'], data: { roasting: { enabled: false } } };

test('userChannel', () => {
  assert.equal(userChannel(U), `user:${U}`);
});

test('per-user: the channel names the user', () => {
  assert.deepEqual(route('per-user', `user:${U}`, JSON.stringify(msg)), { userId: U, msg });
  // a payload that does not parse still reaches the user's devices (they catch up)
  assert.deepEqual(route('per-user', `user:${U}`, 'not json'), { userId: U, msg: null });
  assert.deepEqual(route('per-user', `user:${U}`, '{"version":"2"}'), { userId: U, msg: { version: '2' } });
  // not ours
  assert.equal(route('per-user', 'roastr_state', JSON.stringify({ ...msg, user_id: U })), null);
  assert.equal(route('per-user', 'roastr_state_embeddings', '{}'), null);
});

test('shared: the payload names the user', () => {
  const shared = { ...msg, user_id: U };
  assert.deepEqual(route('shared', 'roastr_state', JSON.stringify(shared)), { userId: U, msg: shared });
  assert.deepEqual(route('shared', 'roastr_state', JSON.stringify({ ...shared, user_id: U.toUpperCase() })).userId, U);
  // a user but a bad version: routed, the device decides (catch-up)
  assert.deepEqual(route('shared', 'roastr_state', JSON.stringify({ user_id: U, version: null })), { userId: U, msg: { user_id: U, version: null } });
  // no user to give it to
  for (const p of ['not json', '{}', '[]', 'null', JSON.stringify(msg), JSON.stringify({ ...msg, user_id: 'nobody' }), JSON.stringify({ ...msg, user_id: 7 })]) {
    assert.deepEqual(route('shared', 'roastr_state', p), { userId: null }, p);
  }
  assert.equal(route('shared', `user:${U}`, JSON.stringify(shared)), null);
});
