// Cursor, history, channel, `since` and patch message parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HISTORY_MAX, historyLine, isUuid, parseChannel, parseCursor, parseHistory, parseHistoryParam, parseSince, validatePatch } from '../../lib/validate.js';

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

test('parseSince: missing is 0; one non-negative integer', () => {
  const p = (q) => parseSince(new URLSearchParams(q));
  assert.equal(p(''), 0);
  assert.equal(p('other=1'), 0);
  assert.equal(p('since=0'), 0);
  assert.equal(p('since=17'), 17);
  assert.equal(p('since=9007199254740991'), Number.MAX_SAFE_INTEGER);
  for (const q of ['since=', 'since=-1', 'since=1.5', 'since=abc', 'since=1e3', 'since=%201', 'since=9007199254740992',
    'since=12345678901234567', 'since=2025-10-19T12:00:00Z', 'since=1&since=2']) {
    assert.equal(p(q), null, q);
  }
});

test('validatePatch: a well-formed patch', () => {
  assert.deepEqual(validatePatch({ changes: { 'roasting.enabled': false } }),
    { ok: true, changes: { 'roasting.enabled': false }, baseVersion: null, mutationId: null });
  assert.deepEqual(validatePatch({ changes: {}, base_version: 0, mutation_id: U.toUpperCase() }),
    { ok: true, changes: {}, baseVersion: 0, mutationId: U });
  assert.deepEqual(validatePatch({ changes: { 'auth.name': null }, base_version: null, mutation_id: null }),
    { ok: true, changes: { 'auth.name': null }, baseVersion: null, mutationId: null });
  assert.equal(validatePatch({ changes: { x: 1 }, base_version: Number.MAX_SAFE_INTEGER }).baseVersion, Number.MAX_SAFE_INTEGER);
});

test('validatePatch: every malformed shape is refused with a message', () => {
  const cases = [
    [undefined, /a patch is an object/], [null, /a patch is an object/], ['x', /a patch is an object/],
    [[{ changes: {} }], /a patch is an object/], [7, /a patch is an object/],
    [{}, /changes must be an object/], [{ changes: null }, /changes must be an object/],
    [{ changes: [] }, /changes must be an object/], [{ changes: '{"a":1}' }, /changes must be an object/],
    [{ changes: {}, base_version: -1 }, /base_version must be null or a non-negative integer/],
    [{ changes: {}, base_version: 1.5 }, /base_version/], [{ changes: {}, base_version: '3' }, /base_version/],
    [{ changes: {}, base_version: 2 ** 53 }, /base_version/], [{ changes: {}, base_version: true }, /base_version/],
    [{ changes: {}, mutation_id: 'x' }, /mutation_id must be null or a uuid/],
    [{ changes: {}, mutation_id: 7 }, /mutation_id/], [{ changes: {}, mutation_id: `${U}x` }, /mutation_id/],
    [{ changes: {}, baseVersion: 3 }, /unknown key "baseVersion"/],
    [{ changes: {}, user_id: U }, /unknown key "user_id"/],
  ];
  for (const [msg, re] of cases) {
    const r = validatePatch(msg);
    assert.equal(r.ok, false, JSON.stringify(msg));
    assert.match(r.message, re, JSON.stringify(msg));
  }
  // an unknown key is quoted, cut short
  assert.ok(validatePatch({ changes: {}, ['k'.repeat(500)]: 1 }).message.length < 200);
});

test('parseHistory: a history token "<system id>.<timeline>[.<WAL position hex>]"; missing is null, anything else undefined', () => {
  assert.equal(parseHistory(undefined), null);
  assert.equal(parseHistory(null), null);
  for (const ok of ['7391234567890123456.2.3000148', '7391234567890123456.2', '1.1', '0.0.0', '1.2.ABCDEF0123456789']) {
    assert.equal(parseHistory(ok), ok);
  }
  const long = `${'1'.repeat(HISTORY_MAX - 4)}.1.A`;
  assert.equal(long.length, HISTORY_MAX);
  assert.equal(parseHistory(long), long);
  for (const bad of [`${long}B`, '', ' ', '1', '1.', '.1', '1..2', '1.2.', '1.2.3.4', '1.2.abc', '1.2.3g', '-1.2', '1.2 ', '1.2\n',
    '१.२', 12, 1.2, true, {}, ['1.2'], { toString: () => '1.2' }]) {
    assert.equal(parseHistory(bad), undefined, JSON.stringify(bad));
  }
});

test('historyLine: the "<system id>.<timeline>" a token belongs to', () => {
  assert.equal(historyLine('7391234567890123456.2.3000148'), '7391234567890123456.2');
  assert.equal(historyLine('7391234567890123456.2'), '7391234567890123456.2');
  assert.equal(historyLine(null), null);
});

test('parseHistoryParam: one ?history=, or none', () => {
  assert.equal(parseHistoryParam(new URLSearchParams('since=1')), null);
  assert.equal(parseHistoryParam(new URLSearchParams('history=1.2.AB')), '1.2.AB');
  assert.equal(parseHistoryParam(new URLSearchParams('history=1.2&history=1.2')), undefined);
  assert.equal(parseHistoryParam(new URLSearchParams('history=')), undefined);
  assert.equal(parseHistoryParam(new URLSearchParams('history=1.2.ab')), undefined);
});
