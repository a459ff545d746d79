// decide(): relay a notification, drop it, or catch the device up (and why).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, CAUSES } from '../../lib/device.js';

const relay = { action: 'relay' };
const drop = { action: 'drop' };
const catchup = (cause) => ({ action: 'catchup', cause });
const usage = (version, fields, data) => ({ type: 'usage_update', version, fields, data });

test('the causes are gap, withheld, resync, malformed and history', () => {
  assert.deepEqual(CAUSES, ['gap', 'withheld', 'resync', 'malformed', 'history']);
});

test('the next version naming every field with its value is relayed', () => {
  assert.deepEqual(decide({ type: 'roasting_toggle', version: 2, fields: ['roasting.enabled'], data: { roasting: { enabled: false } } }, 1), relay);
  const consume = usage(8, ['usage.monthly_roasts_used', 'usage.remaining_roasts', 'usage.period_start'],
    { usage: { monthly_roasts_used: 1, remaining_roasts: 99, period_start: '2026-12-01T00:00:00+00:00' } });
  assert.deepEqual(decide(consume, 7), relay);
  // null and false are values too
  assert.deepEqual(decide({ type: 'subscription_update', version: 3, fields: ['subscription.trial_days_remaining', 'usage.monthly_roasts_limit'],
    data: { subscription: { trial_days_remaining: null }, usage: { monthly_roasts_limit: null } } }, 2), relay);
  // a type array (several kinds in one transaction) is fine
  assert.deepEqual(decide({ type: ['roasting_update', 'usage_update'], version: 1, fields: ['roasting.roast_level'], data: { roasting: { roast_level: 4 } } }, 0), relay);
  // extra values in data do no harm
  assert.deepEqual(decide(usage(5, ['usage.monthly_roasts_used'], { usage: { monthly_roasts_used: 3, remaining_roasts: 97 } }), 4), relay);
});

test('versions at or below the cursor are dropped', () => {
  const m = usage(5, ['usage.monthly_roasts_used'], { usage: { monthly_roasts_used: 3 } });
  assert.deepEqual(decide(m, 5), drop);
  assert.deepEqual(decide(m, 9), drop);
  assert.deepEqual(decide({ type: 'resync', version: 3 }, 3), drop);
  // even when the rest of it could not be delivered
  assert.deepEqual(decide(usage(2, [], {}), 2), drop);
});

test('a version beyond cursor + 1 is a gap', () => {
  const m = usage(5, ['usage.monthly_roasts_used'], { usage: { monthly_roasts_used: 3 } });
  assert.deepEqual(decide(m, 3), catchup('gap'));
  assert.deepEqual(decide(m, 0), catchup('gap'));
  assert.deepEqual(decide({ ...m, version: Number.MAX_SAFE_INTEGER }, 1), catchup('gap'));
});

test('a resync hint is a catch-up', () => {
  assert.deepEqual(decide({ type: 'resync', version: 4 }, 3), catchup('resync'));
  assert.deepEqual(decide({ type: 'resync', version: 9, user_id: 'x' }, 3), catchup('resync'));
});

test('a named field without its value is withheld', () => {
  assert.deepEqual(decide({ type: 'auth_update', version: 2, fields: ['auth.name'], data: {} }, 1), catchup('withheld'));
  assert.deepEqual(decide({ type: 'persona_update', version: 2, fields: ['persona.identity', 'persona.embeddings_model'],
    data: { persona: { embeddings_model: null } } }, 1), catchup('withheld'));
  assert.deepEqual(decide({ type: 'organization_update', version: 2, fields: ['organization.id'], data: { organization: null } }, 1), catchup('withheld'));
  // one of several
  assert.deepEqual(decide(usage(2, ['usage.monthly_roasts_used', 'usage.remaining_roasts'], { usage: { monthly_roasts_used: 1 } }), 1), catchup('withheld'));
  // inherited properties are not values
  assert.deepEqual(decide(usage(2, ['usage.toString'], { usage: {} }), 1), catchup('withheld'));
  assert.deepEqual(decide(usage(2, ['__proto__.toString'], {}), 1), catchup('withheld'));
  assert.deepEqual(decide(usage(2, ['usage.monthly_roasts_used'], { usage: [1] }), 1), catchup('withheld'));
});

test('an announcement naming no field is not relayed (a plan limit changed by an operator)', () => {
  // 0.3.0 announces UPDATE roastr_state.plans exactly so
  assert.deepEqual(decide({ type: 'usage_update', version: 3, fields: [], data: {} }, 2), catchup('withheld'));
});

test('a payload that cannot be trusted is malformed', () => {
  const ok = usage(2, ['usage.monthly_roasts_used'], { usage: { monthly_roasts_used: 1 } });
  const cases = [
    null, undefined, 'x', 7, [], [ok],
    { ...ok, version: undefined }, { ...ok, version: null }, { ...ok, version: '2' }, { ...ok, version: 2.5 },
    { ...ok, version: 0 }, { ...ok, version: -1 }, { ...ok, version: 2 ** 53 }, { ...ok, version: NaN },
    { ...ok, version: Infinity }, { type: 'resync' },
    { ...ok, fields: undefined }, { ...ok, fields: null }, { ...ok, fields: 'usage.monthly_roasts_used' },
    { ...ok, fields: { 0: 'usage.monthly_roasts_used' } },
    { ...ok, fields: ['usage.monthly_roasts_used', 7] }, { ...ok, fields: [null] }, { ...ok, fields: ['usage'] },
    { ...ok, fields: ['.monthly_roasts_used'] }, { ...ok, fields: ['usage.'] }, { ...ok, fields: [''] },
    { ...ok, data: undefined }, { ...ok, data: null }, { ...ok, data: [] }, { ...ok, data: 'x' },
  ];
  for (const m of cases) assert.deepEqual(decide(m, 1), catchup('malformed'), JSON.stringify(m) ?? String(m));
  // malformed data with no named field is malformed, not withheld
  assert.deepEqual(decide({ type: 'usage_update', version: 2, fields: [], data: null }, 1), catchup('malformed'));
});

test('the cause does not depend on the cursor beyond the version rule', () => {
  for (const cursor of [0, 1, 41]) {
    const next = cursor + 1;
    assert.deepEqual(decide(usage(next, [], {}), cursor), catchup('withheld'));
    assert.deepEqual(decide(usage(next, ['usage.x'], { usage: { x: 1 } }), cursor), relay);
  }
});

test('decide does not change the notification', () => {
  const m = usage(2, ['usage.monthly_roasts_used'], { usage: { monthly_roasts_used: 1 } });
  const copy = structuredClone(m);
  decide(m, 1);
  assert.deepEqual(m, copy);
});

// 0.5.0: notifications carry "history": "<system id>.<timeline>".
const H = '7391234567890123456.2';
const HL = '7391234567890123456.2.3000148';        // with a WAL position, as state_sync answers
const toggle = (version, history) => ({ type: 'roasting_toggle', version, fields: ['roasting.enabled'], data: { roasting: { enabled: true } }, history });

test('history: the same line (with or without a WAL position) is judged on the version as before', () => {
  assert.deepEqual(decide(toggle(5, H), 4, H), relay);
  assert.deepEqual(decide(toggle(5, H), 4, HL), relay);
  assert.deepEqual(decide(toggle(4, H), 4, HL), drop);
  assert.deepEqual(decide(toggle(7, H), 4, HL), catchup('gap'));
});

test('history: another line is a catch-up, even at or below the cursor (a reissued version)', () => {
  // promoted standby: timeline 3
  assert.deepEqual(decide(toggle(5, '7391234567890123456.3'), 4, HL), catchup('history'));
  assert.deepEqual(decide(toggle(3, '7391234567890123456.3'), 4, HL), catchup('history'));
  assert.deepEqual(decide(toggle(4, '7391234567890123456.3'), 4, H), catchup('history'));
  // another cluster (a dump restored elsewhere)
  assert.deepEqual(decide(toggle(5, '1.2'), 4, H), catchup('history'));
  // a timeline whose digits start like the device's is another one
  assert.deepEqual(decide(toggle(5, '7391234567890123456.21'), 4, HL), catchup('history'));
  // a resync hint of another line too
  assert.deepEqual(decide({ type: 'resync', version: 2, history: '1.3' }, 4, H), catchup('history'));
});

test('history: a payload without one (before 0.5.0), or a device without one (a bare cursor), is judged on the version', () => {
  assert.deepEqual(decide(toggle(5), 4, HL), relay);
  assert.deepEqual(decide(toggle(5, null), 4, HL), relay);
  assert.deepEqual(decide(toggle(5, H), 4, null), relay);
  assert.deepEqual(decide(toggle(5, H), 4), relay);
  assert.deepEqual(decide(toggle(3, H), 4, null), drop);
});

test('history: one that is not a token makes the payload malformed', () => {
  for (const bad of ['', 'x', '1', '1.', '.2', '1.2.', '1.2.3.4', '1.2.abc', '1.2.3g', ' 1.2', 12, {}, ['1.2'], true, `${'9'.repeat(60)}.1.ABCDEF`]) {
    assert.deepEqual(decide(toggle(5, bad), 4, H), catchup('malformed'), JSON.stringify(bad));
    assert.deepEqual(decide(toggle(5, bad), 4, null), catchup('malformed'), JSON.stringify(bad));
  }
});
