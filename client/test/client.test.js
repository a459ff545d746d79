// Unit tests of the queue, the rebase and the conflict rules, with a
// transport the test drives by hand and the server model as the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStateClient } from '../src/client.js';
import { memoryStorage } from '../src/storage.js';
import { ServerModel } from './support/model.js';
import { settle } from './support/sim.js';

function fakeTransport() {
  const t = {
    calls: [],
    syncs: [],
    h: null,
    settleDelayMs: 0,
    start(h) {
      t.h = h;
      h.onStatus({ online: true, writable: true, via: 'fake' });
    },
    patch(req) {
      return new Promise((resolve, reject) => t.calls.push({ req, resolve, reject }));
    },
    sync(since) {
      return new Promise((resolve, reject) => t.syncs.push({ since, resolve, reject }));
    },
    close() {},
  };
  return t;
}

// A client whose first sync (from 0) came from `model`.
async function setup({ model = new ServerModel(), storage = memoryStorage(), t = fakeTransport() } = {}) {
  const client = createStateClient({ transport: t, storage, retryMinMs: 1, retryMaxMs: 5 });
  await client.loaded;
  const r = model.sync(0);
  t.h.onSync({ ...r, since: 0 });
  await settle();
  return { client, t, model, storage };
}

// The server answers the request in flight (runs it on the model).
async function serve(t, model) {
  const c = t.calls.shift();
  try {
    c.resolve(model.patch(c.req));
  } catch (e) {
    c.reject(Object.assign(new Error(e.message), { code: e.code, detail: e.detail }));
  }
  await settle();
  return c.req;
}

// The pull the client asked for, answered by the model.
async function answerSyncs(t, model) {
  await new Promise((r) => setTimeout(r, 5));   // timers that ask for one (settle delay) run first
  await settle();
  while (t.syncs.length > 0) {
    const s = t.syncs.shift();
    s.resolve(model.sync(s.since));
    await settle();
  }
}

const pushFrom = async (t, model, since) => {
  t.h.onSync({ ...model.sync(since), since });
  await settle();
};

test('a write shows at once, is sent with a mutation_id and the base, and becomes server state', async () => {
  const { client, t, model } = await setup();
  assert.equal(client.state.roasting.enabled, true);
  const p = client.patch({ 'roasting.enabled': false });
  assert.equal(client.state.roasting.enabled, false, 'optimistic');
  assert.equal(client.status.pending, 1);
  await settle();
  assert.equal(t.calls.length, 1);
  const { req } = t.calls[0];
  assert.match(req.mutation_id, /^[0-9a-f-]{36}$/);
  assert.equal(req.base_version, 1);
  assert.deepEqual(req.changes, { 'roasting.enabled': false });
  await serve(t, model);
  assert.deepEqual(await p, { version: 2, applied: ['roasting.enabled'], conflicts: [] });
  assert.equal(client.status.pending, 0);
  assert.equal(client.state.roasting.enabled, false, 'still shown while the cursor is behind');
  assert.equal(client.state._meta.version, 1);
  await answerSyncs(t, model);   // the settle pull
  assert.equal(client.state._meta.version, 2);
  assert.equal(client.state.roasting.enabled, false);
  assert.equal(client.status.state, 'online');
  await client.close();
});

test('one write in flight at a time, in order', async () => {
  const { client, t, model } = await setup();
  client.patch({ 'roasting.roast_level': 4 });
  client.patch({ 'roasting.shield_level': 'estricto' });
  client.patch({ 'auth.name': 'Ann' });
  await settle();
  assert.equal(t.calls.length, 1);
  assert.deepEqual((await serve(t, model)).changes, { 'roasting.roast_level': 4 });
  assert.equal(t.calls.length, 1);
  assert.deepEqual((await serve(t, model)).changes, { 'roasting.shield_level': 'estricto' });
  assert.deepEqual((await serve(t, model)).changes, { 'auth.name': 'Ann' });
  assert.equal(model.version, 4);
  await client.close();
});

test('a network failure keeps the write and retries it with the same mutation_id and base', async () => {
  const { client, t, model } = await setup();
  const p = client.patch({ 'roasting.roast_level': 5 });
  await settle();
  const first = t.calls.shift();
  model.patch(first.req);            // the server applied it, the answer was lost
  first.reject(Object.assign(new Error('socket hang up'), { code: 'NETWORK' }));
  await settle();
  assert.equal(client.status.pending, 1);
  assert.equal(client.status.error.code, 'NETWORK');
  assert.equal(client.state.roasting.roast_level, 5);
  await new Promise((r) => setTimeout(r, 20));
  await settle();
  assert.equal(t.calls.length, 1);
  const again = t.calls[0].req;
  assert.equal(again.mutation_id, first.req.mutation_id);
  assert.equal(again.base_version, first.req.base_version);
  await serve(t, model);               // answered from the server's record
  assert.equal((await p).version, 2);
  assert.equal(model.s.history.filter((h) => h.mutationId === again.mutation_id).length, 1);
  await client.close();
});

test('a refused write is rolled back and reported with its code and field', async () => {
  const { client, t, model } = await setup();
  const errors = [];
  client.on('error', (e) => errors.push(e));
  const p = client.patch({ 'roasting.roast_level': 9 });
  assert.equal(client.state.roasting.roast_level, 9);
  await settle();
  await serve(t, model);
  await assert.rejects(p, { code: '22023', field: 'roasting.roast_level' });
  assert.equal(client.state.roasting.roast_level, 3, 'rolled back');
  assert.equal(errors[0].code, '22023');
  assert.equal(errors[0].field, 'roasting.roast_level');

  const q = client.patch({ 'persona.tolerance': 'x' });          // free plan
  await settle();
  await serve(t, model);
  await assert.rejects(q, { code: 'PT402', field: 'persona.tolerance' });
  assert.equal(client.state.persona.tolerance, null);

  // fields the user may not write are refused before anything is queued
  await assert.rejects(client.patch({ 'usage.monthly_roasts_used': 0 }), { code: '42501' });
  await assert.rejects(client.patch({ 'roasting.nope': 1 }), { code: '22023' });
  assert.equal(client.status.pending, 0);
  await client.close();
});

test('rebase: a server change to another field keeps the pending write on top', async () => {
  const { client, t, model } = await setup();
  t.h.onStatus({ online: true, writable: false, via: 'fake' });   // nothing is sent for now
  client.patch({ 'roasting.roast_level': 5 });
  model.patch({ changes: { 'roasting.shield_level': 'estricto' } });
  t.h.onUpdate({ type: 'roasting_update', version: 2, fields: ['roasting.shield_level'], data: { roasting: { shield_level: 'estricto' } } });
  await settle();
  assert.equal(client.state.roasting.shield_level, 'estricto');
  assert.equal(client.state.roasting.roast_level, 5);
  assert.equal(client.conflicts.length, 0);
  t.h.onStatus({ online: true, writable: true, via: 'fake' });
  await settle();
  assert.equal(t.calls[0].req.base_version, 2, 'based on the cursor when first sent');
  await serve(t, model);
  assert.equal(model.s.values['roasting.roast_level'], 5);
  assert.equal(model.s.values['roasting.shield_level'], 'estricto');
  await client.close();
});

test('rebase: a server change to the same field is a conflict, found before sending', async () => {
  const { client, t, model } = await setup();
  t.h.onStatus({ online: true, writable: false, via: 'fake' });
  const p = client.patch({ 'roasting.roast_level': 5, 'roasting.enabled': false });
  model.patch({ changes: { 'roasting.roast_level': 1 } });
  const seen = [];
  client.on('conflict', (c) => seen.push(c));
  await pushFrom(t, model, 1);
  assert.equal(client.conflicts.length, 1);
  const c = client.conflicts[0];
  assert.deepEqual({ field: c.field, mine: c.mine, server: c.server, serverVersion: c.serverVersion },
    { field: 'roasting.roast_level', mine: 5, server: 1, serverVersion: 2 });
  assert.equal(seen.length, 1);
  assert.equal(client.state.roasting.roast_level, 1, 'the server value is shown until the user decides');
  assert.equal(client.state.roasting.enabled, false, 'the other field stays pending');
  t.h.onStatus({ online: true, writable: true, via: 'fake' });
  await settle();
  assert.deepEqual(t.calls[0].req.changes, { 'roasting.enabled': false });
  await serve(t, model);
  assert.equal((await p).conflicts.length, 0);

  // "mine": sent on the server version the user saw
  client.resolve(c, 'mine');
  assert.equal(client.conflicts.length, 0);
  assert.equal(client.state.roasting.roast_level, 5);
  await settle();
  assert.equal(t.calls[0].req.base_version >= 2, true);
  await serve(t, model);
  assert.equal(model.s.values['roasting.roast_level'], 5);
  await client.close();
});

test('PT409 from the server: conflicts per field, the other fields sent again, resolve mine/server/value', async () => {
  const { client, t, model } = await setup();
  client.patch({ 'roasting.roast_level': 5, 'roasting.shield_level': 'estricto', 'auth.name': 'Mine' });
  await settle();
  // someone else writes two of those fields between the device's sync and its write
  model.patch({ changes: { 'roasting.roast_level': 2, 'auth.name': 'Theirs' } });
  await serve(t, model);
  const byField = Object.fromEntries(client.conflicts.map((c) => [c.field, c]));
  assert.deepEqual(Object.keys(byField).sort(), ['auth.name', 'roasting.roast_level']);
  assert.equal(byField['roasting.roast_level'].mine, 5);
  assert.equal(byField['roasting.roast_level'].server, 2);
  assert.equal(byField['roasting.roast_level'].serverVersion, 2);
  assert.equal(byField['auth.name'].server, 'Theirs');
  // before any sync: the conflict's known server value is shown, not the write's
  assert.equal(client.state.roasting.roast_level, 2, 'the server value the PT409 told');
  assert.equal(client.state.auth.name, 'Theirs');
  assert.equal(client.state.roasting.shield_level, 'estricto', 'the other field stays pending');
  // the non-conflicting field goes again, with a new base
  await settle();
  assert.deepEqual(t.calls[0].req.changes, { 'roasting.shield_level': 'estricto' });
  await serve(t, model);
  await answerSyncs(t, model);
  assert.equal(client.state.roasting.roast_level, 2);
  assert.equal(client.state.auth.name, 'Theirs');

  client.resolve(byField['auth.name'], 'server');
  await settle();
  assert.equal(t.calls.length, 0, '"server" sends nothing');
  client.resolve(byField['roasting.roast_level'], 4);        // a merged value
  await settle();
  assert.deepEqual(t.calls[0].req.changes, { 'roasting.roast_level': 4 });
  assert.equal(t.calls[0].req.base_version, model.version);
  await serve(t, model);
  assert.equal(model.s.values['roasting.roast_level'], 4);
  assert.equal(model.s.values['auth.name'], 'Theirs');
  await client.close();
});

test('PT409 detail through the PostgREST shape (details as a JSON string) and persona server_value null', async () => {
  const { client, t, model } = await setup();
  client.patch({ 'persona.identity': 'mine' });
  await settle();
  model.patch({ changes: { 'persona.identity': 'theirs' } });
  const c = t.calls.shift();
  c.reject(Object.assign(new Error('version conflict'), {
    code: 'PT409',
    detail: JSON.stringify({ code: 'E_CONFLICT', server_version: 2, client_version: 1, conflicts: [{ field: 'persona.identity', server_value: null, server_version: 2 }] }),
  }));
  await settle();
  assert.equal(client.conflicts.length, 1);
  assert.equal(client.conflicts[0].serverKnown, false, 'persona text is not in the detail');
  await answerSyncs(t, model);
  assert.equal(client.conflicts[0].server, 'theirs', 'filled in from the sync');
  assert.equal(client.conflicts[0].serverKnown, true);
  await client.close();
});

test('a conflict whose server value becomes the user value resolves itself', async () => {
  const { client, t, model } = await setup();
  t.h.onStatus({ online: true, writable: false, via: 'fake' });
  client.patch({ 'roasting.roast_level': 5 });
  model.patch({ changes: { 'roasting.roast_level': 1 } });
  await pushFrom(t, model, 1);
  assert.equal(client.conflicts.length, 1);
  model.patch({ changes: { 'roasting.roast_level': 5 } });
  await pushFrom(t, model, 2);
  assert.equal(client.conflicts.length, 0);
  await client.close();
});

test('state_update: applied only at cursor + 1 and complete; otherwise a pull', async () => {
  const { client, t, model } = await setup();
  model.patch({ changes: { 'roasting.enabled': false } });
  model.patch({ changes: { 'roasting.roast_level': 2 } });
  // a gap: version 3 while the device holds 1
  t.h.onUpdate({ type: 'roasting_update', version: 3, fields: ['roasting.roast_level'], data: { roasting: { roast_level: 2 } } });
  await settle();
  assert.equal(client.state._meta.version, 1);
  assert.equal(t.syncs.length, 1);
  assert.equal(t.syncs[0].since, 1);
  await answerSyncs(t, model);
  assert.equal(client.state._meta.version, 3);
  assert.equal(client.state.roasting.enabled, false);
  // a duplicate is ignored
  t.h.onUpdate({ type: 'roasting_toggle', version: 2, fields: ['roasting.enabled'], data: { roasting: { enabled: true } } });
  await settle();
  assert.equal(client.state.roasting.enabled, false);
  // withheld persona text: a pull
  model.patch({ changes: { 'persona.identity': 'hello' } });
  t.h.onUpdate({ type: 'persona_update', version: 4, fields: ['persona.identity'], data: {} });
  await settle();
  assert.equal(t.syncs.length, 1);
  await answerSyncs(t, model);
  assert.equal(client.state.persona.identity, 'hello');
  // a consumption (0.4.0): used and remaining_roasts named with their values: merged
  const notes = [];
  model.onNotify((m) => notes.push(m));
  model.consume(3);
  assert.deepEqual(notes[0].fields.filter((f) => f.startsWith('usage.')).sort(), ['usage.monthly_roasts_used', 'usage.period_start', 'usage.remaining_roasts']);
  t.h.onUpdate(notes.shift());
  await settle();
  assert.equal(t.syncs.length, 0);
  assert.equal(client.state.usage.remaining_roasts, 97);
  assert.equal(client.state._meta.version, 5);
  // a named field without its value, whatever the field: a pull
  model.consume(1);
  const { usage } = notes.shift().data;
  delete usage.remaining_roasts;
  t.h.onUpdate({ type: 'usage_update', version: 6, fields: ['usage.monthly_roasts_used', 'usage.remaining_roasts'], data: { usage } });
  await settle();
  assert.equal(client.state._meta.version, 5);
  assert.equal(t.syncs.length, 1);
  await answerSyncs(t, model);
  assert.equal(client.state.usage.remaining_roasts, 96);
  // a complete one at cursor + 1 is merged
  model.patch({ changes: { 'roasting.shield_level': 'estricto' } });
  t.h.onUpdate({ type: 'roasting_update', version: 7, fields: ['roasting.shield_level'], data: { roasting: { shield_level: 'estricto' } } });
  await settle();
  assert.equal(t.syncs.length, 0);
  assert.equal(client.state.roasting.shield_level, 'estricto');
  assert.equal(client.state._meta.version, 7);
  assert.deepEqual(client.state.usage, model.full().usage);
  await client.close();
});

test('organization: null fields mean organization null', async () => {
  const { client, t, model } = await setup();
  assert.equal(client.state.organization, null);
  model.setOrganization({ id: '00000000-0000-4000-8000-0000000000aa', name: 'Acme', slug: 'acme', role: 'owner' });
  await pushFrom(t, model, 1);
  assert.deepEqual(client.state.organization, { id: '00000000-0000-4000-8000-0000000000aa', name: 'Acme', slug: 'acme', role: 'owner' });
  model.setOrganization(null);
  await pushFrom(t, model, 2);
  assert.equal(client.state.organization, null);
  await client.close();
});

test('a section that did not change keeps its object (stable selectors)', async () => {
  const { client, t, model } = await setup();
  const before = client.state;
  client.patch({ 'roasting.enabled': false });
  assert.notEqual(client.state, before);
  assert.notEqual(client.state.roasting, before.roasting);
  assert.equal(client.state.usage, before.usage);
  assert.equal(client.state.persona, before.persona);
  assert.equal(client.state.ui, before.ui);
  await settle();
  await serve(t, model);
  await client.close();
});

test('storage: queue, cursor and server state survive a reload; a sent write is retried as sent', async () => {
  const model = new ServerModel();
  const storage = memoryStorage();
  const a = await setup({ model, storage });
  a.client.setUi({ theme: 'dark' });
  a.client.patch({ 'roasting.roast_level': 2 });
  await settle();
  const sent = a.t.calls[0].req;
  a.client.patch({ 'roasting.enabled': false });
  await a.client.close();

  const t = fakeTransport();
  const client = createStateClient({ transport: t, storage, retryMinMs: 1 });
  await client.loaded;
  assert.equal(client.state._meta.version, 1);
  assert.equal(client.state.roasting.roast_level, 2);
  assert.equal(client.state.roasting.enabled, false);
  assert.equal(client.state.ui.theme, 'dark');
  assert.equal(client.status.pending, 2);
  assert.equal(client.status.ready, false, 'persona text is not loaded yet');
  await settle();
  assert.deepEqual(t.calls[0].req, sent, 'same mutation_id, base and changes');
  await serve(t, model);
  await serve(t, model);
  assert.equal(model.s.values['roasting.enabled'], false);
  await client.close();
});

test('persona text is never written to storage; the app is told while it is unsaved', async () => {
  const model = new ServerModel();
  const storage = memoryStorage();
  const { client, t } = await setup({ model, storage });
  const told = [];
  client.on('unsavedPersona', (f) => told.push(f));
  const p = client.patch({ 'persona.identity': 'SECRET-IDENTITY', 'roasting.enabled': false });
  assert.deepEqual(client.status.unsavedPersona, ['persona.identity']);
  assert.deepEqual(told.at(-1), ['persona.identity']);
  const ev = { returnValue: undefined, preventDefault() { this.prevented = true; } };
  assert.ok(client.beforeUnload(ev));
  assert.equal(ev.prevented, true);
  await settle();
  // the two parts are separate writes: the persona one is memory only
  assert.deepEqual(t.calls[0].req.changes, { 'roasting.enabled': false });
  await client.flush();
  for (const [, v] of storage.entries()) assert.ok(!v.includes('SECRET-IDENTITY'));
  await serve(t, model);
  await serve(t, model);
  await p;
  assert.deepEqual(client.status.unsavedPersona, []);
  assert.deepEqual(told.at(-1), []);
  assert.equal(client.beforeUnload({}), undefined);
  await answerSyncs(t, model);
  assert.equal(client.state.persona.identity, 'SECRET-IDENTITY');
  await client.flush();
  for (const [, v] of storage.entries()) assert.ok(!v.includes('SECRET-IDENTITY'), 'not even as server state');
  await client.close();

  // after a reload the text comes back from the server (a sync from 0)
  const t2 = fakeTransport();
  const c2 = createStateClient({ transport: t2, storage });
  await c2.loaded;
  assert.equal(c2.state.persona.identity, null);
  t2.h.onSync({ ...model.sync(0), since: 0 });
  await settle();
  assert.equal(c2.state.persona.identity, 'SECRET-IDENTITY');
  assert.equal(c2.status.ready, true);
  await c2.close();
});

test('a pending persona write is lost on reload (and was announced)', async () => {
  const storage = memoryStorage();
  const { client } = await setup({ storage });
  client.patch({ 'persona.intolerance': 'LOST-TEXT' });
  let told = null;
  client.on('unsavedPersona', (f) => (told = f));
  await client.close();
  assert.deepEqual(told, ['persona.intolerance']);
  const c2 = createStateClient({ transport: fakeTransport(), storage });
  await c2.loaded;
  assert.equal(c2.status.pending, 0);
  await c2.close();
});

test('ui is local: kept in storage, never sent', async () => {
  const storage = memoryStorage();
  const { client, t } = await setup({ storage });
  client.setUi({ language: 'en', sidebar_collapsed: true });
  assert.equal(client.state.ui.language, 'en');
  assert.equal(client.state.ui.theme, 'auto');
  await settle();
  assert.equal(t.calls.length, 0);
  await client.close();
  const c2 = createStateClient({ transport: fakeTransport(), storage });
  await c2.loaded;
  assert.deepEqual(c2.state.ui, { theme: 'auto', language: 'en', notifications_enabled: true, sidebar_collapsed: true });
  await c2.close();
});

test('reset: the server state is replaced and confirmed writes it lost are sent again', async () => {
  const { client, t, model } = await setup();
  const before = model.snapshot();
  client.patch({ 'roasting.roast_level': 4 });
  await settle();
  const sent = t.calls[0].req;
  await serve(t, model);               // confirmed at version 2, not yet synced
  model.restore(before);               // failover: version 2 is gone
  t.h.onSync({ ...model.sync(0), reset: true });
  await settle();
  assert.equal(client.state._meta.version, 1);
  assert.equal(client.state.roasting.roast_level, 4, 'still shown: it is being sent again');
  assert.equal(t.calls[0].req.mutation_id, sent.mutation_id);
  await serve(t, model);
  assert.equal(model.s.values['roasting.roast_level'], 4);
  await client.close();
});

test('a pull that returns a cursor below its since is a reset', async () => {
  const { client, t, model } = await setup();
  model.patch({ changes: { 'roasting.roast_level': 2 } });
  const snap = model.snapshot();
  model.patch({ changes: { 'roasting.roast_level': 5 } });
  await pushFrom(t, model, 1);
  assert.equal(client.state._meta.version, 3);
  model.restore(snap);
  client.sync();
  await answerSyncs(t, model);
  assert.equal(client.state._meta.version, 2);
  assert.equal(client.state.roasting.roast_level, 2);
  await client.close();
});

test('a plan change names persona.tolerance without its value: a pull shows or hides it', async () => {
  const { client, t, model } = await setup();
  const notes = [];
  model.onNotify((m) => notes.push(m));
  const next = async () => {
    t.h.onUpdate(notes.shift());
    await settle();
  };
  model.patch({ changes: { 'subscription.plan': 'pro' } }, { service: true });
  assert.ok(notes[0].fields.includes('persona.tolerance') && notes[0].fields.includes('usage.monthly_roasts_limit'));
  assert.equal(notes[0].data.usage.monthly_roasts_limit, 1000);
  assert.ok(!('persona' in notes[0].data));
  await next();
  assert.equal(t.syncs.length, 1, 'withheld: a pull');
  await answerSyncs(t, model);
  assert.equal(client.state.usage.monthly_roasts_limit, 1000);
  model.patch({ changes: { 'persona.tolerance': 'TOL' } });
  await next();
  await answerSyncs(t, model);
  assert.equal(client.state.persona.tolerance, 'TOL');
  model.patch({ changes: { 'subscription.plan': 'free' } }, { service: true });
  await next();
  await answerSyncs(t, model);
  assert.equal(client.state.persona.tolerance, null, 'hidden below pro');
  assert.equal(client.state.usage.monthly_roasts_limit, 100);
  model.patch({ changes: { 'subscription.plan': 'plus' } }, { service: true });
  await next();
  await answerSyncs(t, model);
  assert.equal(client.state.persona.tolerance, 'TOL');
  assert.equal(client.state.usage.monthly_roasts_limit, null);
  for (const sec of ['subscription', 'persona', 'roasting', 'usage', 'organization']) assert.deepEqual(client.state[sec], model.full()[sec], sec);
  await client.close();
});

test('status: offline, syncing, online', async () => {
  const t = fakeTransport();
  t.start = (h) => {
    t.h = h;
  };
  const client = createStateClient({ transport: t });
  await client.loaded;
  assert.equal(client.status.state, 'offline');
  t.h.onStatus({ online: true, writable: true, via: 'fake' });
  assert.equal(client.status.state, 'syncing');
  t.h.onSync({ ...new ServerModel().sync(0), since: 0 });
  await settle();
  assert.equal(client.status.state, 'online');
  assert.ok(client.status.lastSyncedAt);
  let calls = 0;
  const off = client.subscribe(() => calls++);
  client.patch({ 'roasting.enabled': false });
  assert.equal(client.status.state, 'syncing');
  assert.ok(calls > 0);
  off();
  await client.close();
});
