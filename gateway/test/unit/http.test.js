// The HTTP handler: /healthz, /api/state/full, /api/state/sync, with a fake
// database on a loopback server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { SignJWT } from 'jose';
import { createVerifier } from '../../lib/auth.js';
import { createHttpHandler } from '../../lib/http.js';

const KEY = Buffer.from('k'.repeat(32));
const U = 'a1111111-1111-4111-8111-111111111111';
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const sign = (sub = U, exp = Math.floor(Date.now() / 1000) + 60) =>
  new SignJWT({ sub, role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(KEY);
const dbError = (code, message) => Object.assign(new Error(message), { code });

const calls = [];
let fail = null;     // the error the fake database throws next
let healthStatus = 'ok';
const FULL = { roasting: { enabled: true }, _meta: { version: 7, lastSyncedAt: 't' } };
const db = {
  async stateFull(claims) {
    calls.push(['full', JSON.parse(claims).sub]);
    if (fail) throw fail;
    return FULL;
  },
  async stateSync(claims, userId, since, history) {
    calls.push(['sync', JSON.parse(claims).sub, userId, since, history]);
    if (fail) throw fail;
    // 0.5.0: a history of another cluster is reset: every field
    const reset = history !== null && !history.startsWith('7391.2');
    const changes = since < 7 || reset ? [{ field: 'roasting.enabled', value: true, version: 7, updated_at: 't' }] : [];
    return { changes, cursor: 7, history: '7391.2.3000148', reset, lastSyncedAt: 'now' };
  },
};
const stats = { full: 0, sync: 0, errors: 0 };
const seen = { behind: 0 };
const metrics = { http() {}, httpBehind() { seen.behind++; } };
let server;
let base;

before(async () => {
  server = http.createServer(createHttpHandler({
    verify: createVerifier({ jwtKey: KEY }), db, stats, metrics, log: silent, corsOrigin: ['https://app.example'],
    health: () => ({ status: healthStatus, devices: 0 }),
  }));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((r) => server.close(r)));

async function get(path, { token, method = 'GET', headers = {} } = {}) {
  const res = await fetch(base + path, { method, headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

test('GET /api/state/full: the caller\'s state_full', async () => {
  calls.length = 0;
  const r = await get('/api/state/full', { token: await sign() });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { success: true, data: FULL });
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.deepEqual(calls, [['full', U]]);
});

const ENABLED = { field: 'roasting.enabled', value: true, version: 7, updated_at: 't' };

test('GET /api/state/sync: changes, cursor, history, reset, lastSyncedAt; since defaults to 0', async () => {
  calls.length = 0;
  const t = await sign();
  assert.deepEqual((await get('/api/state/sync?since=3', { token: t })).body,
    { success: true, changes: [ENABLED], cursor: 7, history: '7391.2.3000148', reset: false, lastSyncedAt: 'now' });
  assert.deepEqual((await get('/api/state/sync?since=7', { token: t })).body,
    { success: true, changes: [], cursor: 7, history: '7391.2.3000148', reset: false, lastSyncedAt: 'now' });
  assert.equal((await get('/api/state/sync', { token: t })).status, 200);
  // the caller's own state: user id NULL, the token's claims decide; no history: null
  assert.deepEqual(calls, [['sync', U, null, 3, null], ['sync', U, null, 7, null], ['sync', U, null, 0, null]]);
});

test('GET /api/state/sync?history=H: passed on; reset: true with every field replaces the device\'s state', async () => {
  calls.length = 0;
  const t = await sign();
  assert.deepEqual((await get('/api/state/sync?since=7&history=7391.2.30000AF', { token: t })).body,
    { success: true, changes: [], cursor: 7, history: '7391.2.3000148', reset: false, lastSyncedAt: 'now' });
  // another cluster's history: reset, everything, at a cursor the server also has
  assert.deepEqual((await get('/api/state/sync?since=7&history=1234.1', { token: t })).body,
    { success: true, changes: [ENABLED], cursor: 7, history: '7391.2.3000148', reset: true, lastSyncedAt: 'now' });
  assert.deepEqual(calls, [['sync', U, null, 7, '7391.2.30000AF'], ['sync', U, null, 7, '1234.1']]);
});

test('GET /api/state/sync before 0.5.0: history null, reset false', async () => {
  const r = await get('/api/state/sync?since=7&history=old', { token: await sign() });
  assert.equal(r.status, 400, 'not a token');
  const orig = db.stateSync;
  db.stateSync = async (...args) => {
    const { history, reset, ...rest } = await orig(...args);
    return rest;
  };
  try {
    assert.deepEqual((await get('/api/state/sync?since=7', { token: await sign() })).body,
      { success: true, changes: [], cursor: 7, history: null, reset: false, lastSyncedAt: 'now' });
  } finally {
    db.stateSync = orig;
  }
});

test('400 22023 for a bad history, without asking the database', async () => {
  calls.length = 0;
  const t = await sign();
  for (const q of ['history=', 'history=abc', 'history=1', 'history=1.2.3.4', 'history=1.2.abc', 'history=1.2&history=1.2',
    `history=${'1'.repeat(63)}.1`, 'history=%201.2']) {
    const r = await get(`/api/state/sync?since=1&${q}`, { token: t });
    assert.equal(r.status, 400, q);
    assert.equal(r.body.error.code, '22023', q);
    assert.match(r.body.error.message, /history/);
  }
  assert.deepEqual(calls, []);
});

test('PT503 (a standby behind the cursor): HTTP 503 with Retry-After, counted', async () => {
  const t = await sign();
  const before = seen.behind;
  fail = dbError('PT503', 'the server has not replayed the cursor yet');
  try {
    const r = await get('/api/state/sync?since=9&history=7391.2.4000000', { token: t });
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.deepEqual(r.body, { success: false, error: { code: 'PT503', message: 'the server has not replayed the cursor yet' } });
    assert.equal(seen.behind, before + 1);
  } finally {
    fail = null;
  }
});

test('401 without a valid token, before anything else', async () => {
  calls.length = 0;
  const cases = [
    [{}, 'missing token', 'Bearer'],
    [{ headers: { authorization: 'Basic abc' } }, 'missing token', 'Bearer'],
    [{ token: 'x.y.z' }, 'invalid token', 'Bearer error="invalid_token"'],
    [{ token: await sign(U, Math.floor(Date.now() / 1000) - 10) }, 'token expired', 'Bearer error="invalid_token"'],
    [{ token: await sign('nobody') }, 'sub is not a uuid', 'Bearer error="invalid_token"'],
  ];
  for (const path of ['/api/state/full', '/api/state/sync?since=bad']) {
    for (const [opts, message, challenge] of cases) {
      const r = await get(path, opts);
      assert.equal(r.status, 401, `${path} ${message}`);
      assert.deepEqual(r.body, { success: false, error: { code: 'PT401', message } });
      assert.equal(r.headers.get('www-authenticate'), challenge);
    }
  }
  assert.deepEqual(calls, []);
});

test('400 22023 for a bad since, without asking the database', async () => {
  calls.length = 0;
  const t = await sign();
  for (const q of ['since=', 'since=-1', 'since=abc', 'since=1.5', 'since=2025-10-19T12:00:00Z', 'since=1&since=2']) {
    const r = await get(`/api/state/sync?${q}`, { token: t });
    assert.equal(r.status, 400, q);
    assert.equal(r.body.success, false);
    assert.equal(r.body.error.code, '22023');
  }
  assert.deepEqual(calls, []);
});

test('the database\'s errors keep their code and get PostgREST\'s status', async () => {
  const t = await sign();
  const cases = [
    [dbError('42501', 'permission denied for function state_full'), 403],
    [dbError('PT404', 'user has no state'), 404],
    [dbError('PT409', 'conflict'), 409],
    [dbError('22023', 'bad cursor'), 400],
    [dbError('XX001', 'could not decrypt field'), 500],
    [dbError('25006', 'read-only transaction'), 500],
  ];
  try {
    for (const [err, status] of cases) {
      fail = err;
      for (const path of ['/api/state/full', '/api/state/sync?since=1']) {
        const r = await get(path, { token: t });
        assert.equal(r.status, status, `${err.code} ${path}`);
        assert.deepEqual(r.body, { success: false, error: { code: err.code, message: err.message } });
      }
    }
    fail = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', phase: 'connect' });
    const r = await get('/api/state/full', { token: t });
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, '08006');
    assert.equal(r.headers.get('retry-after'), '1');
    assert.doesNotMatch(JSON.stringify(r.body), /ECONNREFUSED/);
  } finally {
    fail = null;
  }
});

test('other methods, paths, and CORS', async () => {
  const t = await sign();
  let r = await get('/api/state/full', { token: t, method: 'POST' });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET, OPTIONS');
  r = await get('/api/state/nothing', { token: t });
  assert.deepEqual([r.status, r.body.error.code], [404, 'not_found']);
  r = await get('/', {});
  assert.equal(r.status, 404);
  // an allowed origin gets CORS headers, and a preflight
  r = await get('/api/state/full', { token: t, headers: { origin: 'https://app.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
  r = await get('/api/state/full', { token: t, headers: { origin: 'https://evil.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  r = await get('/api/state/sync', { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-headers': 'authorization' } });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-headers'), 'authorization');
  assert.equal(r.headers.get('access-control-allow-methods'), 'GET');
});

test('/healthz: 200 when ok, 503 when degraded', async () => {
  assert.deepEqual(await get('/healthz'), { status: 200, headers: (await get('/healthz')).headers, body: { status: 'ok', devices: 0 } });
  healthStatus = 'degraded';
  try {
    assert.equal((await get('/healthz')).status, 503);
  } finally {
    healthStatus = 'ok';
  }
});

test('counters', () => {
  assert.ok(stats.full >= 1 && stats.sync >= 3 && stats.errors >= 10, JSON.stringify(stats));
});
