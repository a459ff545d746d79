// Db.asDevice with a fake pool: the statements PostgREST runs, in order, and
// what happens to the connection when something fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Db, HAS_SYNC3, HISTORY_RECHECK_MS } from '../../lib/db.js';
import { LOGIN_ROLE_SQL } from '../../lib/preflight.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const cfg = { dbRole: 'authenticated', pg: {}, poolMax: 1 };
const CLAIMS = '{"sub":"a1111111-1111-4111-8111-111111111111","role":"authenticated"}';

// A connection that answers each statement with rows, or fails as `script`
// says: script(text) -> undefined | {throw: err} | {emitError: err}.
class FakeClient extends EventEmitter {
  constructor(script = () => undefined) {
    super();
    this.script = script;
    this.log = [];
    this.released = [];
  }

  async query(text, values) {
    this.log.push(values === undefined ? [text] : [text, values]);
    const s = this.script(text);
    if (s?.emitError) {
      // the server kills the connection under the query: the query fails,
      // and the client emits 'error' (with nobody listening, a crash)
      this.emit('error', s.emitError);
      throw s.emitError;
    }
    if (s?.throw) throw s.throw;
    if (s?.rows) return { rows: s.rows };
    return { rows: [{ s: { ok: true }, r: { version: 2, applied: [] }, ok: true }] };
  }

  release(err) { this.released.push(err ?? null); }
}
const pool = (client, connectError) => ({
  on() {},
  async connect() {
    if (connectError) throw connectError;
    return client;
  },
});

test('one transaction with the role and the claims, values as parameters', async () => {
  const c = new FakeClient();
  const db = new Db(cfg, silent, pool(c));
  assert.deepEqual(await db.patch(CLAIMS, { 'persona.identity': 'secret' }, 3, null), { version: 2, applied: [] });
  assert.deepEqual(c.log, [
    ['BEGIN; SET LOCAL ROLE "authenticated"'],
    ["SELECT set_config('request.jwt.claims', $1, true)", [CLAIMS]],
    ['SELECT roastr_state.patch(NULL::uuid, $1::jsonb, $2::bigint, $3::uuid) AS r', ['{"persona.identity":"secret"}', 3, null]],
    ['COMMIT'],
  ]);
  assert.deepEqual(c.released, [null]);
  c.log.length = 0;
  await db.stateSync(CLAIMS, null, 7);
  assert.deepEqual(c.log[2], ['SELECT roastr_state.state_sync($1::uuid, $2::bigint) AS s', [null, 7]]);
  await db.stateFull(CLAIMS);
  assert.deepEqual(c.log.at(-2), ['SELECT roastr_state.state_full(NULL::uuid) AS s', []]);
  assert.equal(await db.authorizeChannel(CLAIMS, 'user:x'), true);
  assert.deepEqual(c.log.at(-2), ['SELECT roastr_state.authorize_channel($1) AS ok', ['user:x']]);
});

test('the role is quoted as an identifier', async () => {
  const c = new FakeClient();
  await new Db({ ...cfg, dbRole: 'app "user"' }, silent, pool(c)).stateFull(CLAIMS);
  assert.deepEqual(c.log[0], ['BEGIN; SET LOCAL ROLE "app ""user"""']);
});

test('an error of the statement is rolled back, the connection kept', async () => {
  const conflict = Object.assign(new Error('conflict'), { code: 'PT409' });
  const c = new FakeClient((text) => (text.includes('patch') ? { throw: conflict } : undefined));
  await assert.rejects(new Db(cfg, silent, pool(c)).patch(CLAIMS, {}, 1, null), conflict);
  assert.deepEqual(c.log.map(([t]) => t.split(' ')[0]), ['BEGIN;', 'SELECT', 'SELECT', 'ROLLBACK']);
  assert.deepEqual(c.released, [null]);
});

test('a connection killed under a query: the query fails, the gateway does not crash, the connection is dropped', async () => {
  const killed = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
  const c = new FakeClient((text) => (text.includes('patch') ? { emitError: killed } : undefined));
  await assert.rejects(new Db(cfg, silent, pool(c)).patch(CLAIMS, {}, 1, null), killed);
  assert.ok(!c.log.some(([t]) => t === 'ROLLBACK'), 'no ROLLBACK on a dead connection');
  assert.deepEqual(c.released, [killed]);
  assert.equal(c.listenerCount('error'), 0);
});

test('a failed ROLLBACK drops the connection', async () => {
  const lost = new Error('Connection terminated unexpectedly');
  const c = new FakeClient((text) => (text === 'COMMIT' || text === 'ROLLBACK' ? { throw: lost } : undefined));
  await assert.rejects(new Db(cfg, silent, pool(c)).stateFull(CLAIMS), lost);
  assert.deepEqual(c.released, [lost]);
});

test('no connection: the error is marked phase connect', async () => {
  const nologin = Object.assign(new Error('role "authenticator" is not permitted to log in'), { code: '28000' });
  await assert.rejects(new Db(cfg, silent, pool(null, nologin)).stateFull(CLAIMS), (err) => err === nologin && err.phase === 'connect');
});

test('checkLoginRole: on one pooled connection, returned to the pool; an error drops it', async () => {
  const role = { login: 'authenticator', superuser: false, bypassrls: false, memberships: ['anon', 'authenticated', 'service_role'], target_exists: true, target_superuser: false, target_bypassrls: false };
  const c = new FakeClient((text) => (text === LOGIN_ROLE_SQL ? { rows: [role] } : undefined));
  const r = await new Db(cfg, silent, pool(c)).checkLoginRole();
  assert.equal(r.login, 'authenticator');
  assert.match(r.problems[0], /"anon", "service_role" besides "authenticated"/);
  assert.deepEqual(c.log.map(([t]) => t), [LOGIN_ROLE_SQL, 'BEGIN', 'SET LOCAL ROLE "authenticated"', 'ROLLBACK']);
  assert.deepEqual(c.log[0][1], ['authenticated']);
  assert.deepEqual(c.released, [null]);
  assert.equal(c.listenerCount('error'), 0);
  const lost = new Error('Connection terminated unexpectedly');
  const c2 = new FakeClient(() => ({ throw: lost }));
  await assert.rejects(new Db(cfg, silent, pool(c2)).checkLoginRole(), lost);
  assert.deepEqual(c2.released, [lost]);
});

// state_sync with a history: the 3-argument form of 0.5.0 when the device
// sent a history and the function exists (asked of the catalog once; a no
// is asked again after a minute), else the 2-argument form.
test('stateSync: a history goes to state_sync(uuid, bigint, text) when it exists, else the 2-argument form', async () => {
  const SYNC2 = 'SELECT roastr_state.state_sync($1::uuid, $2::bigint) AS s';
  const SYNC3 = 'SELECT roastr_state.state_sync($1::uuid, $2::bigint, $3::text) AS s';
  let exists = true;
  const c = new FakeClient((text) => (text === HAS_SYNC3 ? { rows: [{ ok: exists }] } : undefined));
  const db = new Db(cfg, silent, pool(c));
  const statements = () => c.log.filter(([t]) => t.includes('state_sync') || t === HAS_SYNC3);

  await db.stateSync(CLAIMS, null, 7);                    // no history: no lookup
  await db.stateSync(CLAIMS, null, 7, null);
  assert.deepEqual(statements(), [[SYNC2, [null, 7]], [SYNC2, [null, 7]]]);
  assert.equal(db.historySync, undefined);

  c.log.length = 0;
  await db.stateSync(CLAIMS, null, 7, '73.2.AB');
  await db.stateSync(CLAIMS, null, 8, '73.2.AC');
  assert.deepEqual(statements(), [[HAS_SYNC3], [SYNC3, [null, 7, '73.2.AB']], [SYNC3, [null, 8, '73.2.AC']]]);
  assert.deepEqual(c.released.slice(-3), [null, null, null]);

  // before 0.5.0: the 2-argument form, the catalog asked again only after a while
  exists = false;
  const c2 = new FakeClient((text) => (text === HAS_SYNC3 ? { rows: [{ ok: exists }] } : undefined));
  const old = new Db(cfg, silent, pool(c2));
  await old.stateSync(CLAIMS, null, 7, '73.2.AB');
  await old.stateSync(CLAIMS, null, 7, '73.2.AB');
  assert.deepEqual(c2.log.filter(([t]) => t.includes('state_sync') || t === HAS_SYNC3),
    [[HAS_SYNC3], [SYNC2, [null, 7]], [SYNC2, [null, 7]]]);
  old.historySyncAt -= HISTORY_RECHECK_MS;               // a minute later, after ALTER EXTENSION ... UPDATE
  exists = true;
  c2.log.length = 0;
  await old.stateSync(CLAIMS, null, 7, '73.2.AB');
  assert.deepEqual(c2.log.filter(([t]) => t.includes('state_sync') || t === HAS_SYNC3), [[HAS_SYNC3], [SYNC3, [null, 7, '73.2.AB']]]);
});

test('stateSync: 42883 from the 3-argument form falls back to the 2-argument one and asks the catalog again next time', async () => {
  const gone = Object.assign(new Error('function roastr_state.state_sync(uuid, bigint, text) does not exist'), { code: '42883' });
  const c = new FakeClient((text) => (text.includes('$3::text') ? { throw: gone } : text === HAS_SYNC3 ? { rows: [{ ok: true }] } : undefined));
  const db = new Db(cfg, silent, pool(c));
  assert.deepEqual(await db.stateSync(CLAIMS, null, 7, '73.2'), { ok: true });
  assert.deepEqual(c.log.map(([t]) => t).filter((t) => t !== 'COMMIT' && !t.startsWith('BEGIN') && !t.includes('set_config')),
    [HAS_SYNC3, 'SELECT roastr_state.state_sync($1::uuid, $2::bigint, $3::text) AS s', 'ROLLBACK', 'SELECT roastr_state.state_sync($1::uuid, $2::bigint) AS s']);
  assert.equal(db.historySync, undefined);
  // any other error of the 3-argument form is the caller's
  const behind = Object.assign(new Error('not replayed yet'), { code: 'PT503' });
  const c2 = new FakeClient((text) => (text.includes('$3::text') ? { throw: behind } : undefined));
  await assert.rejects(new Db(cfg, silent, pool(c2)).stateSync(CLAIMS, null, 7, '73.2'), behind);
});

test('the catalog lookup: a failure to connect is phase connect, a failed query drops the connection', async () => {
  const nologin = Object.assign(new Error('too many connections'), { code: '53300' });
  await assert.rejects(new Db(cfg, silent, pool(null, nologin)).stateSync(CLAIMS, null, 1, '1.1'), (err) => err === nologin && err.phase === 'connect');
  const lost = new Error('Connection terminated unexpectedly');
  const c = new FakeClient((text) => (text === HAS_SYNC3 ? { throw: lost } : undefined));
  const db = new Db(cfg, silent, pool(c));
  await assert.rejects(db.stateSync(CLAIMS, null, 1, '1.1'), lost);
  assert.deepEqual(c.released, [lost]);
  assert.equal(db.historySync, undefined, 'asked again next time');
});
