// examples/state.js: the device's recipe (deep merge, set by path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applySync, applyUpdate, deepMerge, setPath } from '../../examples/state.js';

const full = () => ({
  auth: { userId: 'u', email: 'a@example.com', name: 'Ann' },
  roasting: { enabled: true, roast_level: 3, shield_level: 'balanceado' },
  usage: { monthly_roasts_used: 0, monthly_roasts_limit: 100, remaining_roasts: 100 },
  organization: null,
  _meta: { version: 4, lastSyncedAt: 't0' },
});

test('applyUpdate merges data into the sections and moves the version', () => {
  const s = applyUpdate(full(), { type: 'usage_update', version: 5, fields: ['usage.monthly_roasts_used', 'usage.remaining_roasts'],
    data: { usage: { monthly_roasts_used: 1, remaining_roasts: 99 } } });
  assert.deepEqual(s.usage, { monthly_roasts_used: 1, monthly_roasts_limit: 100, remaining_roasts: 99 });
  assert.deepEqual(s.roasting, full().roasting);
  assert.deepEqual(s._meta, { version: 5, lastSyncedAt: 't0' });
});

test('applySync sets each field and the cursor; an organization without id is null', () => {
  const s = full();
  applySync(s, { cursor: 9, changes: [
    { field: 'auth.name', value: 'Bea', version: 6 },
    { field: 'organization.id', value: 'o1', version: 7 }, { field: 'organization.name', value: 'Org', version: 7 },
    { field: 'organization.slug', value: 'org', version: 7 }, { field: 'organization.role', value: 'owner', version: 7 },
  ] });
  assert.equal(s.auth.name, 'Bea');
  assert.deepEqual(s.organization, { id: 'o1', name: 'Org', slug: 'org', role: 'owner' });
  assert.equal(s._meta.version, 9);
  applySync(s, { cursor: 10, changes: ['id', 'name', 'slug', 'role'].map((k) => ({ field: `organization.${k}`, value: null, version: 10 })) });
  assert.equal(s.organization, null);
  // from nothing (cursor 0)
  const fresh = applySync({}, { cursor: 3, changes: [{ field: 'roasting.enabled', value: false, version: 3 }] });
  assert.deepEqual(fresh, { roasting: { enabled: false }, _meta: { version: 3 } });
});

test('deepMerge replaces non-objects, copies new objects, ignores prototype keys', () => {
  const t = { a: { x: 1 }, b: 1, c: null };
  const src = JSON.parse('{"a": {"y": 2}, "b": {"z": 3}, "c": {"w": 4}, "__proto__": {"polluted": true}}');
  deepMerge(t, src);
  assert.deepEqual(t, { a: { x: 1, y: 2 }, b: { z: 3 }, c: { w: 4 } });
  src.b.z = 99;
  assert.equal(t.b.z, 3);
  assert.equal({}.polluted, undefined);
  const s = {};
  setPath(s, '__proto__.polluted', true);
  setPath(s, 'nodot', 1);
  assert.equal({}.polluted, undefined);
  assert.deepEqual(s, {});
});

test('the history goes with the cursor: state_sync sets it (null too), state_update sets it when it has one', () => {
  const s = { roasting: { enabled: true }, _meta: { version: 3, history: '7.1.AB' } };
  applyUpdate(s, { data: { roasting: { enabled: false } }, version: 4, fields: ['roasting.enabled'], history: '7.1' });
  assert.deepEqual(s._meta, { version: 4, history: '7.1' });
  applyUpdate(s, { data: {}, version: 5, fields: [] });
  assert.equal(s._meta.history, '7.1');
  // a reset: every field, at a cursor below the device's (its versions were reissued)
  applySync(s, { cursor: 2, history: '7.2.CD', reset: true, changes: [{ field: 'roasting.enabled', value: true, version: 2 }] });
  assert.deepEqual(s, { roasting: { enabled: true }, _meta: { version: 2, history: '7.2.CD' } });
  applySync(s, { cursor: 2, history: null, changes: [] });
  assert.equal(s._meta.history, null);
});
