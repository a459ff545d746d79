// route(): which user a notification is for, per LISTEN mode; broadcasts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BROADCAST_CHANNEL, BROADCAST_TYPES, route, userChannel } from '../../lib/listener.js';

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

test('broadcasts: an operator\'s change of a shared row, in both modes, for every device', () => {
  assert.equal(BROADCAST_CHANNEL, 'roastr_state_broadcast');
  assert.deepEqual(BROADCAST_TYPES, ['plan_limits', 'organization']);
  const plan = { type: 'plan_limits', plan: 'free', monthly_roasts_limit: 150 };
  const org = { type: 'organization', id: 'f0000000-0000-4000-8000-0000000000aa', change: 'rename' };
  for (const mode of ['per-user', 'shared']) {
    assert.deepEqual(route(mode, BROADCAST_CHANNEL, JSON.stringify(plan)), { broadcast: plan }, mode);
    assert.deepEqual(route(mode, BROADCAST_CHANNEL, JSON.stringify(org)), { broadcast: org }, mode);
    // a type of a later extension is a broadcast all the same
    assert.deepEqual(route(mode, BROADCAST_CHANNEL, '{"type":"later"}'), { broadcast: { type: 'later' } }, mode);
    // one that cannot be read: still a broadcast (every device catches up)
    for (const p of ['not json', '{}', '[]', 'null', '7', '{"type":7}']) {
      assert.deepEqual(route(mode, BROADCAST_CHANNEL, p), { broadcast: null }, `${mode}: ${p}`);
    }
  }
  // never routed to a user, even with a user id in it
  assert.deepEqual(route('shared', BROADCAST_CHANNEL, JSON.stringify({ ...plan, user_id: U })), { broadcast: { ...plan, user_id: U } });
});
