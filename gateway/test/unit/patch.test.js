// handlePatch(): the ack of socket.emit('patch', msg, ack), with a fake database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { handlePatch } from '../../lib/socket.js';

const U = 'a1111111-1111-4111-8111-111111111111';
const M = 'c3333333-3333-4333-8333-333333333333';
const logged = [];
const log = { debug() {}, info: (msg, f) => logged.push([msg, f]), warn: (msg, f) => logged.push([msg, f]), error() {} };
const device = { claims: JSON.stringify({ sub: U, role: 'authenticated' }), exp: Math.floor(Date.now() / 1000) + 60, userId: U };

function fakeDb(answer) {
  const calls = [];
  return {
    calls,
    async patch(claims, changes, baseVersion, mutationId) {
      calls.push({ claims, changes, baseVersion, mutationId });
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}
const stats = () => ({ applied: 0, refused: 0, failed: 0 });

test('success: {version, applied}, with the device\'s claims and the patch as given', async () => {
  const db = fakeDb({ version: 8, applied: ['roasting.enabled'] });
  const s = stats();
  const ack = await handlePatch({ db, log, stats: s }, device,
    { changes: { 'roasting.enabled': false }, base_version: 7, mutation_id: M.toUpperCase() });
  assert.deepEqual(ack, { version: 8, applied: ['roasting.enabled'] });
  assert.deepEqual(db.calls, [{ claims: device.claims, changes: { 'roasting.enabled': false }, baseVersion: 7, mutationId: M }]);
  assert.deepEqual(s, { applied: 1, refused: 0, failed: 0 });
});

test('a malformed patch is 22023 without touching the database', async () => {
  const db = fakeDb({ version: 1, applied: [] });
  const s = stats();
  for (const msg of [null, 'x', [], {}, { changes: [] }, { changes: {}, base_version: -1 }, { changes: {}, mutation_id: 'nope' },
    { changes: {}, base_version: '1' }, { changes: {}, extra: 1 }]) {
    const ack = await handlePatch({ db, log, stats: s }, device, msg);
    assert.equal(ack.code, '22023', JSON.stringify(msg));
    assert.equal(typeof ack.message, 'string');
  }
  assert.deepEqual(db.calls, []);
  assert.equal(s.refused, 9);
});

test('an expired token is PT401 without touching the database', async () => {
  const db = fakeDb({ version: 1, applied: [] });
  const ack = await handlePatch({ db, log, stats: stats() }, { ...device, exp: Math.floor(Date.now() / 1000) - 1 }, { changes: {} });
  assert.deepEqual(ack, { code: 'PT401', message: 'token expired' });
  assert.deepEqual(db.calls, []);
});

test('the extension\'s refusals: code, message, detail (JSON parsed); nothing of them logged', async () => {
  logged.length = 0;
  const detail = '{"code": "E_CONFLICT", "server_version": 9, "client_version": 7, "conflicts": [{"field": "auth.name", "server_value": "Secret Name", "server_version": 9}]}';
  const conflict = Object.assign(new Error('conflict'), { code: 'PT409', detail });
  const ack = await handlePatch({ db: fakeDb(conflict), log, stats: stats() }, device, { changes: { 'auth.name': 'x' }, base_version: 7 });
  assert.deepEqual(ack, { code: 'PT409', message: 'conflict', detail: JSON.parse(detail) });
  const denied = Object.assign(new Error('field "subscription.plan" is written by the service only'), { code: '42501' });
  assert.deepEqual(await handlePatch({ db: fakeDb(denied), log, stats: stats() }, device, { changes: { 'subscription.plan': 'pro' } }),
    { code: '42501', message: denied.message });
  assert.doesNotMatch(JSON.stringify(logged), /Secret Name|E_CONFLICT|subscription/);
  assert.deepEqual(logged.map(([m, f]) => [m, f.code]), [['patch refused', 'PT409'], ['patch refused', '42501']]);
});

test('the database unreachable, or the outcome unknown: 08006, retry with the same mutation_id', async () => {
  const s = stats();
  for (const err of [
    Object.assign(new Error('role "authenticator" is not permitted to log in'), { code: '28000', phase: 'connect' }),
    new Error('Connection terminated unexpectedly'),
    Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
  ]) {
    const ack = await handlePatch({ db: fakeDb(err), log, stats: s }, device, { changes: { 'roasting.enabled': true }, mutation_id: M });
    assert.equal(ack.code, '08006');
    assert.match(ack.message, /retry with the same mutation_id/);
  }
  assert.equal(s.failed, 3);
});
