// preflight.js: the login role check and the transaction pooler detection,
// with a fake PostgreSQL; and what the Listener does with their verdicts
// (refuse at start, retry with an error after a reconnection, the
// heartbeat's pid check).
import { test } from 'node:test';
import { EventEmitter } from 'node:events';
import assert from 'node:assert/strict';
import {
  checkLoginRole, CREATE_ROLE_SQL, detectPooler, judgeLoginRole, LOGIN_ROLE_SQL, loginRoleError, poolerError, PreflightError,
} from '../../lib/preflight.js';
import { Listener } from '../../lib/listener.js';

// ----------------------------------------------------------------- fake
// Server processes with their LISTENed channels, reached directly (one
// process per client, for the client's life) or through a transaction
// pooler (each statement takes the most recently freed server process, as
// PgBouncer does; order: 'fifo' takes the least recently freed, as a busy
// pool may; reset: the pooler discards session state between clients).

class FakeServer {
  // mode: 'direct' | 'transaction'; poolSize for 'transaction'.
  // role: the row LOGIN_ROLE_SQL returns.
  constructor({ mode = 'direct', poolSize = 2, role, order = 'lifo', reset = false } = {}) {
    Object.assign(this, { mode, order, reset });
    this.nextPid = 1000;
    this.free = [];             // pooler: idle server processes, last freed last
    for (let i = 0; i < poolSize; i++) this.free.push(this.backend());
    this.role = role ?? { login: 'roastr_gateway', superuser: false, bypassrls: false, memberships: ['authenticated'], target_exists: true, target_superuser: false, target_bypassrls: false };
    this.setRoleError = null;   // error SET LOCAL ROLE throws
    this.refuseConnect = 0;     // connections refused before one succeeds
    this.clients = [];
  }

  backend() { return { pid: this.nextPid++, channels: new Set() }; }

  client() {
    const c = new FakeClient(this);
    this.clients.push(c);
    return c;
  }
}

class FakeClient extends EventEmitter {
  constructor(server) {
    super();
    this.server = server;
    this.log = [];
    this.ended = false;
  }

  async connect() {
    if (this.server.refuseConnect > 0) {
      this.server.refuseConnect--;
      throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    }
    if (this.server.hangConnect) return new Promise(() => {});
    if (this.server.mode === 'direct') this.own = this.server.backend();
  }

  async end() {
    this.ended = true;
    this.emit('end');
  }

  // the server process this statement runs in
  _take() {
    if (this.server.mode === 'direct') return this.own;
    return this.server.order === 'fifo' ? this.server.free.shift() : this.server.free.pop();
  }

  async query(text, values) {
    if (this.ended) throw new Error('Client was closed and is not queryable');
    this.log.push(text);
    await null;
    if (this.server.hangOthers && this !== this.server.clients[0]) return new Promise(() => {});
    if (text === LOGIN_ROLE_SQL) return { rows: [this.server.role] };
    if (text === 'BEGIN' || text === 'ROLLBACK') return { rows: [] };
    if (text.startsWith('SET LOCAL ROLE')) {
      if (this.server.setRoleError) throw this.server.setRoleError;
      return { rows: [] };
    }
    const b = this._take();
    try {
      if (this.server.pidOverride) return { rows: [{ pid: this.server.pidOverride }] };
      if (text === 'SELECT pg_backend_pid() AS pid') return { rows: [{ pid: b.pid }] };
      if (text.startsWith('SELECT pg_backend_pid() AS pid, $1::text')) return { rows: [{ pid: b.pid, listening: b.channels.has(values[0]) }] };
      for (const stmt of text.split('; ')) {
        const m = /^(UN)?LISTEN "(.*)"$/.exec(stmt);
        if (!m) throw new Error(`fake server: unexpected statement ${stmt}`);
        if (m[1]) b.channels.delete(m[2]);
        else b.channels.add(m[2]);
      }
      return { rows: [] };
    } finally {
      if (this.server.mode !== 'direct') {
        if (this.server.reset) b.channels.clear();
        this.server.free.push(b);
      }
    }
  }
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const ROLE = 'authenticated';
const row = (over = {}) => ({
  login: 'roastr_gateway', superuser: false, bypassrls: false, memberships: [ROLE],
  target_exists: true, target_superuser: false, target_bypassrls: false, ...over,
});
async function connected(server) {
  const c = server.client();
  await c.connect();
  return c;
}
const opener = (server) => () => connected(server);

// ----------------------------------------------------------- login role
test('a dedicated login role (LOGIN NOINHERIT, granted DB_ROLE only) is fit', () => {
  assert.deepEqual(judgeLoginRole(row(), ROLE), []);
  // the LISTEN connection need not be a member of DB_ROLE
  assert.deepEqual(judgeLoginRole(row({ memberships: [] }), ROLE, { needMember: false }), []);
});

test('Supabase\'s authenticator is refused, naming its extra memberships', () => {
  const problems = judgeLoginRole(row({ login: 'authenticator', memberships: ['anon', ROLE, 'service_role'] }), ROLE);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /"authenticator" is a member of "anon", "service_role" besides "authenticated"/);
});

test('memberships count recursively (the query follows pg_auth_members), predefined roles too', () => {
  // granted a role that is itself granted service_role: the query returns both
  const p = judgeLoginRole(row({ memberships: [ROLE, 'middle', 'service_role'] }), ROLE);
  assert.match(p[0], /"middle", "service_role"/);
  assert.match(judgeLoginRole(row({ memberships: [ROLE, 'pg_read_all_data'] }), ROLE)[0], /"pg_read_all_data"/);
  assert.match(LOGIN_ROLE_SQL, /WITH RECURSIVE/);
  assert.match(LOGIN_ROLE_SQL, /pg_auth_members/);
});

test('a superuser, BYPASSRLS, no membership of DB_ROLE, or a privileged or missing DB_ROLE are refused', () => {
  assert.deepEqual(judgeLoginRole(row({ login: 'postgres', superuser: true, bypassrls: true, memberships: [] }), ROLE), [
    'the login role "postgres" is a superuser',
    'the login role "postgres" has BYPASSRLS',
    'the login role "postgres" is not a member of "authenticated"',
  ]);
  assert.deepEqual(judgeLoginRole(row({ bypassrls: true }), ROLE), ['the login role "roastr_gateway" has BYPASSRLS']);
  assert.deepEqual(judgeLoginRole(row({ target_superuser: true, target_bypassrls: true }), ROLE),
    ['DB_ROLE "authenticated" is a superuser', 'DB_ROLE "authenticated" has BYPASSRLS']);
  assert.deepEqual(judgeLoginRole(row({ memberships: [], target_exists: false }), ROLE), ['DB_ROLE "authenticated" does not exist']);
  // the LISTEN connection: the same, but membership is not required
  assert.deepEqual(judgeLoginRole(row({ superuser: true, memberships: [] }), ROLE, { needMember: false }), ['the login role "roastr_gateway" is a superuser']);
  assert.equal(judgeLoginRole(row({ memberships: ['service_role'] }), ROLE, { needMember: false }).length, 1);
});

test('checkLoginRole asks once, then tries SET LOCAL ROLE in a rolled-back transaction', async () => {
  const server = new FakeServer();
  const c = await connected(server);
  assert.deepEqual(await checkLoginRole(c, ROLE), { login: 'roastr_gateway', memberships: [ROLE], problems: [] });
  assert.deepEqual(c.log, [LOGIN_ROLE_SQL, 'BEGIN', 'SET LOCAL ROLE "authenticated"', 'ROLLBACK']);
  // PostgreSQL 16: a membership granted WITH SET FALSE
  server.setRoleError = Object.assign(new Error('permission denied to set role "authenticated"'), { code: '42501' });
  const r = await checkLoginRole(c, ROLE);
  assert.deepEqual(r.problems, ['the login role "roastr_gateway" cannot SET ROLE "authenticated" (permission denied to set role "authenticated")']);
  assert.equal(c.log.at(-1), 'ROLLBACK');
  // anything else is not a verdict: thrown (the caller retries)
  server.setRoleError = Object.assign(new Error('terminating connection'), { code: '57P01' });
  await assert.rejects(checkLoginRole(c, ROLE), /terminating connection/);
  // no SET ROLE without membership, nor on the LISTEN connection
  server.role = row({ memberships: [] });
  const c2 = await connected(server);
  await checkLoginRole(c2, ROLE);
  await checkLoginRole(c2, ROLE, { needMember: false });
  assert.deepEqual(c2.log, [LOGIN_ROLE_SQL, LOGIN_ROLE_SQL]);
});

test('the refusal names the problems and the SQL of a dedicated role, and nothing secret', () => {
  const err = loginRoleError('query', { login: 'authenticator', memberships: ['anon', ROLE, 'service_role'], problems: ['P1', 'P2'] }, ROLE);
  assert.ok(err instanceof PreflightError);
  assert.equal(err.kind, 'login_role');
  assert.match(err.message, /^query connection: P1; P2\. /);
  assert.ok(err.message.includes('CREATE ROLE roastr_gateway LOGIN NOINHERIT; GRANT authenticated TO roastr_gateway;'));
  assert.deepEqual(err.details, { login: 'authenticator', memberships: ['anon', ROLE, 'service_role'] });
  assert.equal(CREATE_ROLE_SQL('App Users'), 'CREATE ROLE roastr_gateway LOGIN NOINHERIT; GRANT "App Users" TO roastr_gateway;');
});

// ------------------------------------------------------ pooler detection
test('a direct connection is a session: no pooler, and the probe channel is UNLISTENed', async () => {
  const server = new FakeServer({ mode: 'direct' });
  const c = await connected(server);
  const r = await detectPooler(c, opener(server), { channel: 'probe' });
  assert.deepEqual(r, { pid: c.own.pid, pooler: null, compared: true });
  assert.deepEqual([...c.own.channels], []);
  assert.equal(server.clients[1].ended, true);      // the second connection is closed
});

test('an idle transaction pool: two open connections share a server process', async () => {
  for (const poolSize of [1, 2, 5]) {
    const server = new FakeServer({ mode: 'transaction', poolSize });
    const c = await connected(server);
    const r = await detectPooler(c, opener(server), { channel: 'probe' });
    assert.match(r.pooler, /^two connections open at the same time were served by one server process \(pid \d+\)$/, `pool of ${poolSize}`);
  }
});

test('a busy pool handing out another server process: the pid changes between transactions', async () => {
  const server = new FakeServer({ mode: 'transaction', poolSize: 2, order: 'fifo' });
  const c = await connected(server);
  const r = await detectPooler(c, opener(server), { channel: 'probe' });
  assert.equal(r.pooler, 'consecutive transactions of one connection ran in different server processes (pid 1000, then 1001)');
});

test('a pooler that resets server connections: the LISTENed channel is gone', async () => {
  const server = new FakeServer({ mode: 'transaction', poolSize: 1, reset: true });
  const c = await connected(server);
  const r = await detectPooler(c, opener(server), { channel: 'probe' });
  assert.equal(r.pooler, 'a channel LISTENed in one transaction was no longer LISTENed in the next');
});

test('without a second connection (refused or waiting), the two one-connection signs still count', async () => {
  const fifo = new FakeServer({ mode: 'transaction', poolSize: 3, order: 'fifo' });
  const c = await connected(fifo);
  fifo.refuseConnect = 1;
  const r = await detectPooler(c, opener(fifo), { channel: 'probe' });
  assert.equal(r.compared, false);
  assert.match(r.pooler, /different server processes/);
  // a session pool that is full makes the second connection wait: given up
  const direct = new FakeServer({ mode: 'direct' });
  const d = await connected(direct);
  direct.hangOthers = true;
  const t = Date.now();
  const r2 = await detectPooler(d, opener(direct), { channel: 'probe', otherTimeoutMs: 30 });
  assert.deepEqual([r2.pooler, r2.compared], [null, false]);
  assert.ok(Date.now() - t < 1000);
  direct.hangOthers = false;
  direct.hangConnect = true;
  const r3 = await detectPooler(d, opener(direct), { channel: 'probe', otherTimeoutMs: 30 });
  assert.deepEqual([r3.pooler, r3.compared], [null, false]);
});

test('the limit: a quiet pool of one, no second connection, no reset: unseen (the heartbeat keeps watching)', async () => {
  const server = new FakeServer({ mode: 'transaction', poolSize: 1 });
  const c = await connected(server);
  server.refuseConnect = 1;
  const r = await detectPooler(c, opener(server), { channel: 'probe' });
  assert.deepEqual([r.pooler, r.compared], [null, false]);
});

test('the pooler refusal says LISTEN needs a direct session and how to give one', () => {
  const err = poolerError('some reason');
  assert.equal(err.kind, 'pooler');
  assert.match(err.message, /transaction pooler \(some reason\)\. LISTEN needs a direct session: point LISTEN_DATABASE_URL \(or LISTEN_PGHOST and LISTEN_PGPORT\)/);
});

// ------------------------------------------------ the listener's verdicts
function newListener(servers, over = {}) {
  const logged = [];
  const log = { debug() {}, info() {}, warn: (msg, f) => logged.push(['warn', msg, f]), error: (msg, f) => logged.push(['error', msg, f]) };
  const cfg = { listenMode: 'per-user', heartbeatMs: 3600000, reconnectMaxMs: 100, dbRole: ROLE, allowPrivilegedLoginRole: false, ...over };
  const l = new Listener(cfg, log, { newClient: () => servers.current.client() });
  return { l, logged };
}
const waitFor = async (pred, ms = 2000) => {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('listener: a first connection through a transaction pooler is refused once, not retried', async () => {
  const servers = { current: new FakeServer({ mode: 'transaction' }) };
  const { l } = newListener(servers);
  const refused = new Promise((resolve) => l.once('refused', resolve));
  l.start();
  const err = await refused;
  assert.equal(err.kind, 'pooler');
  const n = servers.current.clients.length;
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(servers.current.clients.length, n, 'retried');
  assert.equal(l.status().connected, false);
  await l.stop();
});

test('listener: a privileged LISTEN login role is refused; ALLOW_PRIVILEGED_LOGIN_ROLE makes it a warning', async () => {
  const role = row({ login: 'authenticator', memberships: ['anon', ROLE, 'service_role'] });
  const servers = { current: new FakeServer({ role }) };
  let { l } = newListener(servers);
  const refused = new Promise((resolve) => l.once('refused', resolve));
  l.start();
  const err = await refused;
  assert.equal(err.kind, 'login_role');
  assert.match(err.message, /^LISTEN connection: the login role "authenticator" is a member of "anon", "service_role"/);
  await l.stop();
  let logged;
  ({ l, logged } = newListener(servers, { allowPrivilegedLoginRole: true }));
  const ready = new Promise((resolve) => l.once('ready', resolve));
  l.start();
  await ready;
  assert.equal(logged[0][0], 'warn');
  assert.match(logged[0][1], /ALLOW_PRIVILEGED_LOGIN_ROLE/);
  await l.stop();
});

test('listener: after a reconnection a pooler is logged as an error and retried with backoff until a session comes', async () => {
  const direct = new FakeServer({ mode: 'direct' });
  const servers = { current: direct };
  const { l, logged } = newListener(servers);
  const events = [];
  l.on('ready', (e) => events.push(['ready', e]));
  l.on('refused', () => events.push(['refused']));
  l.start();
  await waitFor(() => events.length === 1);
  l.acquire('u1');
  // the database moves behind a pooler, and the connection drops
  servers.current = new FakeServer({ mode: 'transaction' });
  l.client.emit('end');
  await waitFor(() => logged.filter(([lvl]) => lvl === 'error').length >= 2);
  assert.deepEqual(events, [['ready', { reconnected: false }]]);
  const errors = logged.filter(([lvl]) => lvl === 'error');
  assert.equal(errors[0][1], 'listen connection refused, will retry');
  assert.equal(errors[0][2].kind, 'pooler');
  assert.match(errors[0][2].reason, /LISTEN needs a direct session/);
  // a direct connection again: ready, its channels LISTENed again
  servers.current = direct;
  await waitFor(() => events.length === 2);
  assert.deepEqual(events[1], ['ready', { reconnected: true }]);
  assert.ok(l.stats.refused >= 2);
  assert.ok(direct.clients.at(-2).log.includes('LISTEN "user:u1"') || direct.clients.at(-1).log.includes('LISTEN "user:u1"'));
  await l.stop();
});

test('listener: the heartbeat refuses a connection whose server process changed', async () => {
  const servers = { current: new FakeServer({ mode: 'direct' }) };
  const { l, logged } = newListener(servers);
  const ready = new Promise((resolve) => l.once('ready', resolve));
  l.start();
  await ready;
  const first = l.client;
  await l._heartbeat();
  assert.equal(l.client, first);                       // same pid: fine
  servers.current.pidOverride = 4242;
  await l._heartbeat();
  assert.equal(l.status().connected, false);
  assert.equal(first.ended, true);
  assert.equal(logged[0][2].kind, 'pooler');
  assert.match(logged[0][2].reason, /changed from pid \d+ to 4242/);
  servers.current.pidOverride = null;
  const again = new Promise((resolve) => l.once('ready', resolve));
  assert.deepEqual(await again, { reconnected: true });
  await l.stop();
});
