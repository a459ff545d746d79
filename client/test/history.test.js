// The history a cursor belongs to (0.5.0): kept with the cursor, sent back,
// and what the client does when the server's history is not the device's
// (a failover or a restore that handed version numbers out again).  A
// transport driven by hand, the server model as the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStateClient } from '../src/client.js';
import { classify } from '../src/errors.js';
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
    sync(since, history) {
      return new Promise((resolve, reject) => t.syncs.push({ since, history, resolve, reject }));
    },
    close() {},
  };
  return t;
}

async function setup({ model = new ServerModel(), storage = memoryStorage(), t = fakeTransport() } = {}) {
  t.full ??= async () => model.full();   // auth.userId, read once (it has no version)
  const client = createStateClient({ transport: t, storage, retryMinMs: 1, retryMaxMs: 5 });
  await client.loaded;
  t.h.onSync({ ...model.sync(0), since: 0, fromHistory: null });
  await settle();
  const events = [];
  for (const e of ['reset', 'conflict', 'error']) client.on(e, (x) => events.push([e, x]));
  return { client, t, model, storage, events };
}

const asError = (e) => Object.assign(new Error(e.message), { code: e.code, detail: e.detail });

// The request in flight, run on the model and answered.
async function serve(t, model) {
  const c = t.calls.shift();
  try {
    c.resolve(model.patch(c.req));
  } catch (e) {
    c.reject(asError(e));
  }
  await settle();
  return c.req;
}

// Every pull asked for, answered by the model with the history it came with.
async function answerSyncs(t, model) {
  await new Promise((r) => setTimeout(r, 5));
  await settle();
  while (t.syncs.length > 0) {
    const s = t.syncs.shift();
    try {
      s.resolve(model.sync(s.since, s.history ?? null));
    } catch (e) {
      s.reject(asError(e));
    }
    await settle();
  }
}

const stored = async (storage) => JSON.parse(await storage.get('roastr_state'));
const line = (h) => h.split('.').slice(0, 2).join('.');

test('the history is stored with the cursor, handed to the transport with it, and read back after a reload', async () => {
  const { client, t, model, storage } = await setup();
  assert.equal(t.h.history(), model.token());
  await client.flush();
  assert.deepEqual([(await stored(storage)).cursor, (await stored(storage)).history], [1, model.token()]);
  // a pull sends it
  model.patch({ changes: { 'roasting.roast_level': 2 } });
  client.sync();
  await settle();
  assert.deepEqual([t.syncs[0].since, t.syncs[0].history], [1, model.token().replace(/\.[0-9A-F]+$/, '.1000028')]);
  await answerSyncs(t, model);
  assert.equal(t.h.history(), model.token());
  // a relayed notification: the history has no WAL position then
  const m = [];
  model.onNotify((x) => m.push(x));
  model.patch({ changes: { 'roasting.roast_level': 4 } });
  t.h.onUpdate(m[0]);
  await settle();
  assert.equal(client.state.roasting.roast_level, 4);
  assert.equal(t.h.history(), model.line);
  await client.close();
  // a reload: the same cursor and history (saved again as read)
  const t2 = fakeTransport();
  const c2 = createStateClient({ transport: t2, storage });
  await c2.loaded;
  await c2.flush();
  assert.equal(c2.status.cursor, 3);
  assert.deepEqual([(await stored(storage)).cursor, (await stored(storage)).history], [3, model.line]);
  // (until a whole sync ran in this session, the client asks from 0, with no history)
  assert.deepEqual([t2.h.cursor(), t2.h.history()], [0, null]);
  await c2.close();
});

test('reset: the server state is replaced, the cursor may go down, the reset event says to what', async () => {
  const { client, t, model, events } = await setup();
  const snap = model.snapshot();
  model.patch({ changes: { 'roasting.roast_level': 5, 'auth.name': 'Lost' } });
  model.patch({ changes: { 'roasting.shield_level': 'estricto' } });
  client.sync();
  await answerSyncs(t, model);
  assert.deepEqual([client.status.cursor, client.state.auth.name], [3, 'Lost']);
  model.restore(snap);                          // the failover lost 2 and 3
  model.patch({ changes: { 'roasting.enabled': false } });   // another 2
  client.sync();
  await settle();
  assert.equal(t.syncs[0].history.split('.')[1], '1');
  await answerSyncs(t, model);
  assert.equal(client.status.cursor, 2);
  assert.equal(client.state.auth.name, null, 'replaced, not merged');
  assert.equal(client.state.roasting.roast_level, 3);
  assert.equal(client.state.roasting.shield_level, 'balanceado');
  assert.equal(client.state.roasting.enabled, false);
  assert.equal(t.h.history(), model.token());
  assert.deepEqual(events, [['reset', { cursor: 2, history: model.token() }]]);
  for (const sec of ['auth', 'subscription', 'persona', 'roasting', 'usage']) assert.deepEqual(client.state[sec], model.full()[sec], sec);
  await client.close();
});

test('a version handed out again at or below the cursor: only the history tells, and the update is not merged', async () => {
  const { client, t, model } = await setup();
  const snap = model.snapshot();
  const notes = [];
  model.onNotify((x) => notes.push(x));
  model.patch({ changes: { 'roasting.roast_level': 5 } });
  t.h.onUpdate(notes.shift());
  await settle();
  assert.equal(client.status.cursor, 2);
  model.restore(snap);
  model.patch({ changes: { 'roasting.enabled': false } });                 // the new 2
  const again = notes.shift();
  assert.equal(again.version, 2);
  assert.notEqual(again.history, line(t.h.history()));
  t.h.onUpdate(again);                     // at the cursor: without the history it would be dropped
  await settle();
  assert.equal(t.syncs.length, 1, 'it pulls instead');
  model.patch({ changes: { 'roasting.shield_level': 'estricto' } });       // 3, "cursor + 1" of the old line
  t.h.onUpdate(notes.shift());
  await settle();
  assert.equal(client.state.roasting.shield_level, 'balanceado', 'not merged');
  await answerSyncs(t, model);
  assert.deepEqual([client.status.cursor, client.state.roasting.roast_level, client.state.roasting.enabled, client.state.roasting.shield_level],
    [3, 3, false, 'estricto']);
  await client.close();
});

test('after a reset, a write the user made on the lost history is judged again: kept where nobody else changed the field, a conflict where someone did', async () => {
  for (const when of ['queued', 'in flight']) {
    const { client, t, model, events } = await setup();
    model.patch({ changes: { 'auth.name': 'Ann' } }, { by: 'other' });
    client.sync();
    await answerSyncs(t, model);
    const snap = model.snapshot();           // version 2
    model.patch({ changes: { 'roasting.shield_level': 'estricto' } });
    client.sync();
    await answerSyncs(t, model);             // the device is at 3
    if (when === 'queued') t.h.onStatus({ online: true, writable: false, via: 'fake' });
    const w = client.patch({ 'roasting.roast_level': 1, 'auth.name': 'Mine' });
    await settle();
    assert.equal(t.calls.length, when === 'queued' ? 0 : 1, when);
    model.restore(snap);                     // 3 is lost
    model.patch({ changes: { 'auth.name': 'Bea' } }, { by: 'other' });     // the new 3: someone renamed
    t.h.onSync({ ...model.sync(3, t.h.history()), fromHistory: t.h.history() });   // pushed: a reset
    await settle();
    assert.equal(events[0][0], 'reset', when);
    if (when === 'in flight') {
      // its request is what it is; lost on the way, it is judged then
      assert.deepEqual(events.filter(([e]) => e === 'conflict'), []);
      t.calls.shift().reject(Object.assign(new Error('lost'), { code: 'NETWORK' }));
    } else {
      t.h.onStatus({ online: true, writable: true, via: 'fake' });
    }
    await new Promise((r) => setTimeout(r, 20));
    await settle();
    const conflicts = events.filter(([e]) => e === 'conflict').map(([, c]) => [c.field, c.mine, c.server]);
    assert.deepEqual(conflicts, [['auth.name', 'Mine', 'Bea']], `${when}: roast_level is still 3 as the user saw it; auth.name was renamed meanwhile`);
    assert.equal(client.state.roasting.shield_level, 'balanceado', 'the lost version is gone');
    assert.equal(t.calls.length, 1, when);
    const req = t.calls[0].req;
    assert.deepEqual(req.changes, { 'roasting.roast_level': 1 }, when);
    assert.equal(req.base_version, 3, `${when}: on the new history's cursor`);
    await serve(t, model);
    assert.equal((await w).version, 4);
    assert.equal(model.s.values['auth.name'], 'Bea');
    assert.equal(client.state.auth.name, 'Bea');
    assert.deepEqual(client.conflicts.map((c) => c.field), ['auth.name']);
    await client.close();
  }
});

test('after a reset, a field the failover took back to an older value is a conflict too (a value lost looks like a value changed)', async () => {
  const { client, t, model, events } = await setup();
  const snap = model.snapshot();
  model.patch({ changes: { 'roasting.roast_level': 5 } });
  client.sync();
  await answerSyncs(t, model);
  t.h.onStatus({ online: true, writable: false, via: 'fake' });
  client.patch({ 'roasting.roast_level': 1 });                // seen: 5
  model.restore(snap);                                         // back to 3
  model.patch({ changes: { 'roasting.enabled': false } });
  t.h.onSync({ ...model.sync(2, t.h.history()), fromHistory: t.h.history() });
  await settle();
  assert.deepEqual(events.map(([e, x]) => (e === 'conflict' ? [e, x.field, x.mine, x.server] : [e])), [['reset'], ['conflict', 'roasting.roast_level', 1, 3]]);
  assert.equal(client.status.pending, 0);
  await client.close();
});

test('after a reset, a confirmed write the new history lost is sent again with its mutation_id; one it kept is not applied twice', async () => {
  const { client, t, model } = await setup();
  const snap = model.snapshot();
  client.patch({ 'roasting.roast_level': 4 });
  await settle();
  const first = await serve(t, model);       // confirmed at 2, not yet synced
  client.patch({ 'roasting.shield_level': 'estricto' });
  await settle();
  const second = await serve(t, model);      // at 3
  const kept = model.snapshot();             // a failover that keeps 2 and 3 ...
  model.restore(snap);                       // ... and one that lost them
  model.patch({ changes: { 'auth.name': 'New' } }, { by: 'other' });
  t.h.onSync({ ...model.sync(1, t.h.history()), since: 1, fromHistory: t.h.history() });
  await settle();
  assert.deepEqual(client.pending.map((p) => p.mutationId), [first.mutation_id, second.mutation_id]);
  await serve(t, model);
  await serve(t, model);
  assert.deepEqual([model.s.values['roasting.roast_level'], model.s.values['roasting.shield_level']], [4, 'estricto']);
  const ids = model.s.history.map((h) => h.mutationId).filter(Boolean);
  assert.deepEqual(ids, [first.mutation_id, second.mutation_id]);
  await client.close();

  // the other way: the new history has them (restored to `kept`), the device is told to reset anyway
  const s2 = await setup();
  s2.client.patch({ 'roasting.roast_level': 4 });
  await settle();
  const sent = await serve(s2.t, s2.model);
  const keep = s2.model.snapshot();
  s2.model.restore(keep);
  s2.t.h.onSync({ ...s2.model.sync(0), reset: true });
  await settle();
  await serve(s2.t, s2.model);               // "already used for a different patch": the record says it was applied
  await answerSyncs(s2.t, s2.model);
  assert.equal(s2.model.s.history.filter((h) => h.mutationId === sent.mutation_id).length, 1);
  assert.equal(s2.client.status.pending, 0);
  assert.equal(s2.client.state.roasting.roast_level, 4);
  await s2.client.close();
  void kept;
});

test('an answer of another line, found by the server from exactly this cursor: merged; the device\'s confirmed writes above it are sent again', async () => {
  const { client, t, model, events } = await setup();
  client.patch({ 'roasting.roast_level': 4 });
  await settle();
  const snap = model.snapshot();             // version 1, with the device's cursor
  const sent = await serve(t, model);        // confirmed at 2: lost below
  model.restore(snap);
  model.patch({ changes: { 'roasting.enabled': false } }, { by: 'other' });
  const from = t.h.history();
  const r = model.sync(1, from);
  assert.equal(r.reset, false, 'the cursor (1) is in the new history');
  t.h.onSync({ ...r, since: 1, fromHistory: from });
  await settle();
  assert.deepEqual(events, []);
  assert.equal(client.state.roasting.enabled, false);
  assert.equal(client.state.roasting.roast_level, 4, 'still shown: sent again');
  assert.equal(t.calls[0].req.mutation_id, sent.mutation_id);
  await serve(t, model);
  assert.equal(model.s.values['roasting.roast_level'], 4);
  await client.close();
});

test('an answer of another line from another cursor or history than the one held here is not merged: pulled again', async () => {
  const { client, t, model } = await setup();
  model.patch({ changes: { 'roasting.roast_level': 2 } });
  const old = t.h.history();
  client.sync();
  await answerSyncs(t, model);               // the device is at 2 now
  const snap = model.snapshot();
  model.restore(snap);
  model.patch({ changes: { 'roasting.enabled': false } });
  // a gateway that believed the device at 1
  t.h.onSync({ ...model.sync(1, old), since: 1, fromHistory: old });
  await settle();
  assert.equal(client.state.roasting.enabled, true, 'not merged');
  assert.equal(t.syncs.length, 1);
  assert.deepEqual([t.syncs[0].since, line(t.syncs[0].history)], [2, line(old)]);
  await answerSyncs(t, model);
  assert.equal(client.state.roasting.enabled, false);
  assert.equal(line(t.h.history()), model.line);
  await client.close();
});

test('a write confirmed on another line than the one held here is sent again once the history is settled', async () => {
  const { client, t, model } = await setup();
  const snap = model.snapshot();
  client.patch({ 'roasting.roast_level': 4 });
  await settle();
  model.restore(snap);                       // the device has not heard of it yet
  const req = await serve(t, model);         // applied on the new line
  assert.equal(client.status.pending, 1, 'not taken as confirmed');
  assert.equal(t.syncs.length, 1, 'a sync first');
  await answerSyncs(t, model);
  await settle();
  assert.equal(t.calls[0].req.mutation_id, req.mutation_id);
  await serve(t, model);                     // answered from the record
  assert.equal(model.s.history.filter((h) => h.mutationId === req.mutation_id).length, 1);
  await answerSyncs(t, model);
  assert.equal(client.status.pending, 0);
  assert.equal(client.state.roasting.roast_level, 4);
  await client.close();
});

test('PT503 (a standby behind the cursor) is retried with backoff, never an error to the app', async () => {
  assert.equal(classify('PT503'), 'retry');
  const { client, t, model, events } = await setup();
  model.patch({ changes: { 'roasting.roast_level': 2 } });
  client.sync();
  await settle();
  t.syncs.shift().reject(Object.assign(new Error('the server has not replayed this cursor yet'), { code: 'PT503' }));
  await settle();
  assert.equal(client.status.error.code, 'PT503');
  assert.deepEqual(events, []);
  await answerSyncs(t, model);               // the retry, after the backoff
  assert.equal(client.status.cursor, 2);
  assert.equal(client.status.error, null);
  await client.close();
});
