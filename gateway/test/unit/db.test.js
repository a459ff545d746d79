// Db.asDevice with a fake pool: the statements PostgREST runs, in order, and
// what happens to the connection when something fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Db } from '../../lib/db.js';
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
