// The transports: PostgREST with a fake fetch that checks the exact
// requests, supabase-js's rpc shape, and the gateway transport against a
// real Socket.IO server speaking the gateway's protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { createStateClient, gatewayTransport, postgrestTransport, StateError } from '../src/index.js';
import { postgrestError } from '../src/postgrest.js';
import { createMockGateway } from '../examples/mock-gateway.js';
import { ServerModel } from './support/model.js';
import { settle } from './support/sim.js';

const URL_ = 'https://abc.supabase.co';
const KEY = 'anon-key';
const JWT = 'eyJ.user.jwt';
const HEADERS = { apikey: KEY, Authorization: `Bearer ${JWT}`, 'Content-Type': 'application/json' };
const until = async (cond, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
};

// A PostgREST in front of the model; every request is checked and kept.
function fakePostgrest(model, { fail = null } = {}) {
  const requests = [];
  const fetch = async (url, init) => {
    requests.push({ url, ...init });
    assert.equal(init.method, 'POST');
    assert.deepEqual(init.headers, HEADERS);
    const fn = url.slice(`${URL_}/rest/v1/rpc/`.length);
    const args = JSON.parse(init.body);
    const reply = (status, body) => ({ ok: status < 300, status, text: async () => JSON.stringify(body) });
    if (fail) {
      const f = fail(fn, args);
      if (f) return f;
    }
    try {
      if (fn === 'patch') return reply(200, model.patch({ changes: args.changes, base_version: args.base_version, mutation_id: args.mutation_id }));
      if (fn === 'state_sync') return reply(200, model.sync(args.since, args.history ?? null));
      if (fn === 'state_full') return reply(200, model.full());
      return reply(404, { code: 'PGRST202', message: 'Could not find the function', details: null, hint: null });
    } catch (e) {
      const status = { PT409: 409, 42501: 403, PT402: 402, 22023: 400, PT404: 404 }[e.code] ?? 500;
      return reply(status, { code: e.code, message: e.message, details: e.detail ?? null, hint: null });
    }
  };
  return { fetch, requests };
}

test('postgrest: the exact requests (method, URL, headers, body)', async () => {
  const model = new ServerModel();
  const pg = fakePostgrest(model);
  const client = createStateClient({ transport: postgrestTransport({ url: URL_, apikey: KEY, token: JWT, fetch: pg.fetch, pollMs: 60000 }) });
  await client.loaded;
  await until(() => client.status.ready);
  assert.equal(pg.requests[0].url, `${URL_}/rest/v1/rpc/state_sync`);
  assert.equal(pg.requests[0].body, '{"user_id":null,"since":0}');
  const p = client.patch({ 'roasting.enabled': false });
  await p;
  const patchReq = pg.requests.find((r) => r.url.endsWith('/rpc/patch'));
  assert.equal(patchReq.url, `${URL_}/rest/v1/rpc/patch`);
  const id = JSON.parse(patchReq.body).mutation_id;
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(patchReq.body, `{"user_id":null,"changes":{"roasting.enabled":false},"base_version":1,"mutation_id":"${id}"}`);
  // no push: the client pulls right after the confirmation
  await until(() => client.state._meta.version === 2);
  // with the history of the cursor (0.5.0)
  assert.equal(pg.requests.at(-1).body, `{"user_id":null,"since":1,"history":"${model.sysid}.1.1000028"}`);
  assert.equal(client.status.cursor, 2);
  await client.close();

  const t = postgrestTransport({ url: URL_, apikey: KEY, token: JWT, fetch: pg.fetch });
  const full = await t.full();
  assert.equal(pg.requests.at(-1).url, `${URL_}/rest/v1/rpc/state_full`);
  assert.equal(pg.requests.at(-1).body, '{}');
  assert.equal(full._meta.version, 2);
});

test('postgrest: HTTP 409/403/402/400/404 bodies become the same client errors as the gateway gives', async () => {
  const detail = { code: 'E_CONFLICT', server_version: 2, client_version: 1, conflicts: [{ field: 'roasting.enabled', server_value: false, server_version: 2 }] };
  const cases = [
    [409, { code: 'PT409', message: 'version conflict: fields were changed after version 1', details: JSON.stringify(detail), hint: null }, 'PT409'],
    [403, { code: '42501', message: 'permission denied to write field "subscription.plan"', details: null, hint: null }, '42501'],
    [402, { code: 'PT402', message: 'field "persona.tolerance" needs the pro or plus plan', details: 'The current plan is "free".', hint: null }, 'PT402'],
    [400, { code: '22023', message: 'invalid value for field "roasting.roast_level"', details: null, hint: null }, '22023'],
    [404, { code: 'PT404', message: 'user … has no state', details: null, hint: null }, 'PT404'],
    [409, null, 'PT409'], [403, null, '42501'], [402, null, 'PT402'], [400, null, '22023'],
    [401, { code: 'PGRST301', message: 'JWT expired', details: null, hint: null }, 'AUTH'],
    [503, null, 'NETWORK'],
  ];
  for (const [status, body, code] of cases) {
    const err = postgrestError(status, body);
    assert.ok(err instanceof StateError);
    assert.equal(err.code, code, `HTTP ${status}`);
  }
  assert.equal(postgrestError(400, cases[3][1]).field, 'roasting.roast_level');
  assert.equal(postgrestError(402, cases[2][1]).field, 'persona.tolerance');

  // end to end: the same outcome through PostgREST as through the gateway
  const model = new ServerModel();
  const pg = fakePostgrest(model);
  const client = createStateClient({ transport: postgrestTransport({ url: URL_, apikey: KEY, token: JWT, fetch: pg.fetch, pollMs: 60000 }) });
  await until(() => client.status.ready);
  await assert.rejects(client.patch({ 'roasting.roast_level': 8 }), { code: '22023', field: 'roasting.roast_level' });
  assert.equal(client.state.roasting.roast_level, 3);
  await assert.rejects(client.patch({ 'persona.tolerance': 'x' }), { code: 'PT402', field: 'persona.tolerance' });
  // a conflict: someone else changed the field after the device's version
  model.patch({ changes: { 'roasting.enabled': false } });
  await assert.rejects(client.patch({ 'roasting.enabled': true, 'roasting.shield_level': 'estricto' }).then((r) => {
    if (r.conflicts.length > 0) throw Object.assign(new Error('conflict'), { code: 'PT409' });
    return r;
  }), { code: 'PT409' });
  assert.equal(client.conflicts.length, 1);
  assert.deepEqual({ ...client.conflicts[0], id: 0 }, { id: 0, field: 'roasting.enabled', mine: true, server: false, serverVersion: 2, serverKnown: true });
  assert.equal(model.s.values['roasting.shield_level'], 'estricto', 'the other field went through');
  await client.close();
});

test('postgrest: a network failure is retried with the same mutation_id', async () => {
  const model = new ServerModel();
  let drop = 1;
  const pg = fakePostgrest(model, {
    fail: (fn, args) => {
      if (fn === 'patch' && drop-- > 0) {
        model.patch({ changes: args.changes, base_version: args.base_version, mutation_id: args.mutation_id });
        throw new TypeError('fetch failed');   // applied, but the answer is lost
      }
      return null;
    },
  });
  const client = createStateClient({ transport: postgrestTransport({ url: URL_, apikey: KEY, token: JWT, fetch: pg.fetch, pollMs: 60000 }), retryMinMs: 5 });
  await until(() => client.status.ready);
  const r = await client.patch({ 'roasting.roast_level': 1 });
  assert.equal(r.version, 2);
  const bodies = pg.requests.filter((q) => q.url.endsWith('/patch')).map((q) => q.body);
  assert.equal(bodies.length, 2);
  assert.equal(bodies[0], bodies[1]);
  assert.equal(model.version, 2);
  await client.close();
});

test('postgrest: supabase-js rpc shape', async () => {
  const model = new ServerModel();
  const calls = [];
  const supabase = {
    async rpc(fn, args) {
      calls.push([fn, args]);
      try {
        if (fn === 'state_sync') return { data: model.sync(args.since), error: null, status: 200 };
        if (fn === 'patch') return { data: model.patch(args), error: null, status: 200 };
      } catch (e) {
        return { data: null, error: { code: e.code, message: e.message, details: e.detail ?? null, hint: null }, status: e.code === 'PT409' ? 409 : 400 };
      }
      return { data: null, error: { code: 'PGRST202', message: 'no such function' }, status: 404 };
    },
  };
  const client = createStateClient({ transport: postgrestTransport({ supabase, pollMs: 60000 }) });
  await until(() => client.status.ready);
  await client.patch({ 'auth.name': 'Ann' });
  const [fn, args] = calls.find(([f]) => f === 'patch');
  assert.equal(fn, 'patch');
  assert.deepEqual(Object.keys(args), ['user_id', 'changes', 'base_version', 'mutation_id']);
  assert.equal(args.user_id, null);
  assert.deepEqual(args.changes, { 'auth.name': 'Ann' });
  await assert.rejects(client.patch({ 'roasting.shield_level': 'nope' }), { code: '22023' });
  await client.close();
});

test('gateway: socket push, patch with ack, two devices in step', async () => {
  const gw = createMockGateway();
  const url = await gw.listen();
  const uid = '00000000-0000-4000-8000-00000000a001';
  const mk = () => createStateClient({ transport: gatewayTransport({ url, token: uid, io }) });
  const a = mk();
  const b = mk();
  await until(() => a.status.ready && b.status.ready && a.status.via === 'socket' && b.status.via === 'socket');
  // no state_sync reports auth.userId: read once from /api/state/full
  await until(() => a.state.auth.userId === uid && b.state.auth.userId === uid);
  const r = await a.patch({ 'roasting.enabled': false, 'roasting.roast_level': 5 });
  assert.deepEqual(r.applied.sort(), ['roasting.enabled', 'roasting.roast_level']);
  await until(() => b.state.roasting.enabled === false && b.state.roasting.roast_level === 5);
  assert.equal(b.state._meta.version, 2);
  // persona text is withheld from notifications: b gets it by state_sync
  await b.patch({ 'persona.identity': 'I roast' });
  await until(() => a.state.persona.identity === 'I roast');
  // a conflict through the socket's ack
  gw.user(uid).model.patch({ changes: { 'auth.name': 'Server' } });
  await until(() => a.state.auth.name === 'Server');
  const stale = a.state._meta.version;
  a.patch({ 'auth.name': 'A' });
  gw.user(uid).model.patch({ changes: { 'auth.name': 'Later' } });
  // (the base was fixed when patch() was called, before 'Later')
  await until(() => a.conflicts.length === 1);
  assert.equal(a.conflicts[0].field, 'auth.name');
  assert.equal(a.conflicts[0].mine, 'A');
  assert.equal(a.conflicts[0].server, 'Later');
  assert.ok(a.conflicts[0].serverVersion > stale);
  await a.resolve(a.conflicts[0], 'mine');
  await until(() => b.state.auth.name === 'A');
  await a.close();
  await b.close();
  await gw.close();
});

test('gateway: falls back to HTTP polling when the socket cannot connect, and back to the socket', async () => {
  const gw = createMockGateway({ refuseSockets: true });
  const url = await gw.listen();
  const uid = '00000000-0000-4000-8000-00000000a002';
  gw.user(uid).model.patch({ changes: { 'roasting.shield_level': 'estricto' } });
  const client = createStateClient({
    transport: gatewayTransport({ url, token: uid, io, fallbackAfterMs: 10, pollMs: 30, reconnectMinMs: 20, reconnectMaxMs: 50 }),
  });
  await until(() => client.status.via === 'http' && client.status.ready);
  assert.equal(client.status.state === 'online' || client.status.state === 'syncing', true);
  assert.equal(client.state.roasting.shield_level, 'estricto');
  // followed by polling
  gw.user(uid).model.patch({ changes: { 'roasting.roast_level': 1 } });
  await until(() => client.state.roasting.roast_level === 1);
  // writes wait for the socket
  const p = client.patch({ 'roasting.enabled': false });
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(client.status.pending, 1);
  gw.ctl.refuseSockets = false;
  await p;
  await until(() => client.status.via === 'socket');
  assert.equal(gw.user(uid).model.s.values['roasting.enabled'], false);
  await client.close();
  await gw.close();
});

test('gateway: a refused token is reported and the socket retried; an HTTP error keeps its code', async () => {
  const gw = createMockGateway();
  const url = await gw.listen();
  let token = 'bad';
  const auth = [];
  const client = createStateClient({ transport: gatewayTransport({ url, token: () => token, io, fallbackAfterMs: 10000, reconnectMinMs: 20 }) });
  client.on('auth', (e) => auth.push(e.code));
  await until(() => auth.length > 0);
  assert.equal(client.status.state, 'offline');
  token = '00000000-0000-4000-8000-00000000a003';      // the app refreshed its token
  await until(() => client.status.via === 'socket' && client.status.ready);
  await client.close();

  const t = gatewayTransport({ url, token: '', io });
  await assert.rejects(t.sync(0), { code: 'AUTH' });
  const t2 = gatewayTransport({ url, token: 'x', io });
  await assert.rejects(t2.sync(-1), { code: '22023' });
  await gw.close();
});

test('gateway: a reconnect resumes from the cursor; nothing is missed while away', async () => {
  const gw = createMockGateway();
  const url = await gw.listen();
  const uid = '00000000-0000-4000-8000-00000000a004';
  const client = createStateClient({ transport: gatewayTransport({ url, token: uid, io }) });
  await until(() => client.status.ready && client.status.via === 'socket');
  gw.disconnectAll();
  await until(() => client.status.via !== 'socket');
  gw.user(uid).model.patch({ changes: { 'roasting.roast_level': 2 } });
  gw.user(uid).model.consume(7);
  await until(() => client.status.via === 'socket' && client.state.usage.monthly_roasts_used === 7, 8000);
  assert.equal(client.state.roasting.roast_level, 2);
  assert.equal(client.state.usage.remaining_roasts, 93);
  assert.deepEqual(client.state.usage, gw.user(uid).model.full().usage);
  await client.close();
  await gw.close();
});

test('transports: sanity of the arguments', () => {
  assert.throws(() => gatewayTransport({ url: 'http://x' }), TypeError);
  assert.throws(() => postgrestTransport({}), TypeError);
  assert.throws(() => createStateClient({}), TypeError);
  return settle();
});

test('postgrest with push: writes and pulls through PostgREST, changes pushed by the gateway, no polling', async () => {
  const gw = createMockGateway();
  const url = await gw.listen();
  const uid = '00000000-0000-4000-8000-00000000a005';
  const model = gw.user(uid).model;
  const pg = fakePostgrest(model);
  const client = createStateClient({
    transport: postgrestTransport({ url: URL_, apikey: KEY, token: JWT, fetch: pg.fetch, pollMs: 20, push: gatewayTransport({ url, token: uid, io }) }),
  });
  await until(() => client.status.ready && client.status.via === 'socket+rest');
  const before = pg.requests.length;
  const pulls = () => pg.requests.filter((r) => r.url.endsWith('/rpc/state_sync')).length;
  const pullsBefore = pulls();   // (polls until the socket was up: timing)
  await client.patch({ 'roasting.shield_level': 'tolerante' });
  assert.ok(pg.requests.slice(before).some((r) => r.url.endsWith('/rpc/patch')), 'the write went through PostgREST');
  model.patch({ changes: { 'roasting.roast_level': 1 } });           // another device
  await until(() => client.state.roasting.roast_level === 1);
  await new Promise((r) => setTimeout(r, 100));
  const polls = pulls() - pullsBefore;
  assert.ok(polls <= 1, `no polling while the socket pushes (${polls} pulls)`);
  await client.close();
  await gw.close();
});

test('gateway: the cursor\'s history goes in the auth and in ?history=; a failover under the devices resets them through the gateway', async () => {
  const gw = createMockGateway();
  const url = await gw.listen();
  const uid = '00000000-0000-4000-8000-00000000a006';
  const model = gw.user(uid).model;
  const a = createStateClient({ transport: gatewayTransport({ url, token: uid, io }) });
  const b = createStateClient({ transport: gatewayTransport({ url, token: uid, io }) });
  const resets = [];
  a.on('reset', (r) => resets.push(['a', r.cursor]));
  b.on('reset', (r) => resets.push(['b', r.cursor]));
  await until(() => a.status.ready && b.status.ready && a.status.via === 'socket' && b.status.via === 'socket');
  const snap = model.snapshot();
  await a.patch({ 'roasting.roast_level': 5 });
  model.patch({ changes: { 'auth.name': 'Lost' } }, { by: 'other' });
  await until(() => a.status.cursor === 3 && b.status.cursor === 3);
  // a reconnect sends the cursor with its history
  gw.disconnectAll();
  await until(() => gw.ctl.seen.filter((x) => x.via === 'socket').length >= 4 && a.status.via === 'socket' && b.status.via === 'socket', 8000);
  const last = gw.ctl.seen.filter((x) => x.via === 'socket').at(-1);
  assert.equal(last.cursor, 3);
  assert.match(last.history, /^7391234567890123456\.1\.[0-9A-F]+$/);
  // the failover: 2 and 3 are lost, 2 and 3 are handed out again
  model.restore(snap);
  model.patch({ changes: { 'roasting.enabled': false } }, { by: 'other' });
  model.patch({ changes: { 'roasting.shield_level': 'estricto' } }, { by: 'other' });
  await until(() => resets.length === 2);
  // a's write was confirmed and synced before the failover: lost with the
  // old history, for every device alike (the client replays only writes
  // its cursor had not reached)
  await until(() => a.state._meta.version === model.version && b.state._meta.version === model.version);
  for (const c of [a, b]) {
    for (const sec of ['auth', 'roasting', 'usage']) assert.deepEqual(c.state[sec], model.full()[sec], sec);
  }
  assert.equal(a.state.roasting.roast_level, 3);
  assert.equal(a.state.auth.name, null);
  // the HTTP pull carries it too
  const t = gatewayTransport({ url, token: uid, io });
  const r = await t.sync(model.version, model.token());
  assert.equal(r.reset, false);
  assert.deepEqual(gw.ctl.seen.at(-1), { via: 'http', cursor: model.version, history: model.token() });
  assert.equal((await t.sync(model.version, '1.1')).reset, true);
  await a.close();
  await b.close();
  await gw.close();
});

test('postgrest: state_sync with the history; a server before 0.5.0 (PGRST202) is asked with the bare cursor', async () => {
  const model = new ServerModel();
  const old = fakePostgrest(model, {
    fail: (fn, args) => (fn === 'state_sync' && 'history' in args
      ? { ok: false, status: 404, text: async () => JSON.stringify({ code: 'PGRST202', message: 'Could not find the function roastr_state.state_sync(history, since, user_id) in the schema cache', details: null, hint: null }) }
      : null),
  });
  const t = postgrestTransport({ url: URL_, apikey: KEY, token: JWT, fetch: old.fetch });
  const r = await t.sync(1, '7391234567890123456.1.1000028');
  assert.deepEqual(old.requests.map((x) => x.body), ['{"user_id":null,"since":1,"history":"7391234567890123456.1.1000028"}', '{"user_id":null,"since":1}']);
  assert.deepEqual([r.cursor, r.reset], [1, false]);
  // PT503 (a standby behind the cursor): the client's error, to retry
  const behind = fakePostgrest(model, { fail: () => ({ ok: false, status: 503, text: async () => JSON.stringify({ code: 'PT503', message: 'not replayed yet', details: null, hint: null }) }) });
  await assert.rejects(postgrestTransport({ url: URL_, apikey: KEY, token: JWT, fetch: behind.fetch }).sync(5, '7391234567890123456.1'), { code: 'PT503' });
});
