// roastr_state behind PgBouncer in pool_mode = transaction (run by
// test/extra/pooler.sh, which starts the pooler).  26 clients share 2 server
// connections, each call made the way PostgREST makes it: BEGIN; SET LOCAL
// ROLE; set_config('request.jwt.claims', ..., true); the call; COMMIT.
//
// Checked:
//   - between transactions a pooled connection carries no claims and no
//     role (the next client's transaction starts clean);
//   - every call acts as, and on, its own caller: state_full(NULL) is the
//     caller's, a user's writes land on that user only, a transaction
//     without claims is refused (42501), the service is the service;
//   - no unexpected error;
//   - the quota of a user consumed by 8 clients at once (users and the
//     service) is never overdrawn: used = baseline + allowed calls <= limit;
//   - what does leak through a transaction pooler, shown on a pool of one
//     connection: a session-level set_config (is_local = false) reaches the
//     next client's transaction, and a named prepared statement is shared
//     by clients (PgBouncer 1.18, Debian 12, does not track them).
import { createRequire } from 'node:module';

const require = createRequire(new URL('../gateway/package.json', import.meta.url));
const pg = require('pg');

const host = process.env.POOL_HOST;
const port = Number(process.env.POOL_PORT);
const poolDb = process.env.POOL_DB;
const ITER = Number(process.env.POOLER_ITER || 40);

let passed = 0;
let failed = 0;
function check(ok, what, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.log(`not ok - ${what}${detail !== undefined ? `: ${detail}` : ''}`);
  }
}

const uid = (n) => `e0000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const NUSERS = 16;
const Q = uid(99);                       // the quota user
const QUSED = 70;                        // used before the run (free: 100)
const claims = (sub) => JSON.stringify({ sub, role: 'authenticated', aud: 'authenticated' });
const rnd = (n) => Math.floor(Math.random() * n);

async function pooled(database = poolDb) {
  const c = new pg.Client({ host, port, database, user: 'authenticator' });
  await c.connect();
  return c;
}

// one PostgREST-shaped transaction; returns the call's row or throws
async function asRole(c, role, claimsJson, sql, params) {
  await c.query('BEGIN');
  try {
    await c.query(`SET LOCAL ROLE ${role}`);
    if (claimsJson !== null) await c.query(`SELECT set_config('request.jwt.claims', $1, true)`, [claimsJson]);
    const r = await c.query(sql, params);
    await c.query('COMMIT');
    return r.rows[0];
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
}

const errors = [];
const written = new Map();               // user -> names its own client wrote
let qAllowed = 0;
let qRefused = 0;
const consumed = new Map();              // user -> allowed consumptions

// between transactions: no claims, no role left on the pooled connection
async function clean(c, who) {
  const r = (await c.query(`SELECT current_user AS u, current_setting('request.jwt.claims', true) AS c`)).rows[0];
  check(r.u === 'authenticator' && (r.c === null || r.c === ''), `${who}: a pooled transaction starts without role or claims`,
    JSON.stringify(r));
}

async function userClient(i) {
  const c = await pooled();
  const me = uid(i);
  const mine = [];
  written.set(me, mine);
  consumed.set(me, 0);
  let cursor = 0;
  for (let n = 0; n < ITER; n++) {
    await clean(c, `user ${i}`);
    const op = rnd(4);
    try {
      if (op === 0) {
        const r = await asRole(c, 'authenticated', claims(me), 'SELECT roastr_state.state_full(NULL) AS s');
        check(r.s.auth.userId === me, `user ${i}: state_full(NULL) is the caller's`, r.s.auth.userId);
      } else if (op === 1) {
        const name = `c${i}-${n}`;
        const r = await asRole(c, 'authenticated', claims(me),
          'SELECT roastr_state.patch(NULL, $1::jsonb) AS p', [JSON.stringify({ 'auth.name': name })]);
        mine.push(name);
        check(Number.isInteger(r.p.version), `user ${i}: patch answered a version`);
      } else if (op === 2) {
        const r = await asRole(c, 'authenticated', claims(me), 'SELECT roastr_state.consume_roasts(NULL, 1) AS r');
        if (r.r.allowed) consumed.set(me, consumed.get(me) + 1);
      } else {
        const r = await asRole(c, 'authenticated', claims(me),
          'SELECT roastr_state.state_sync(NULL, $1::bigint) AS s', [cursor]);
        check(r.s.cursor >= cursor, `user ${i}: the cursor never goes back`);
        cursor = r.s.cursor;
      }
    } catch (e) {
      errors.push(`user ${i}: ${e.code} ${e.message}`);
    }
  }
  await c.end();
}

async function quotaUser(i) {
  const c = await pooled();
  for (let n = 0; n < ITER; n++) {
    await clean(c, `quota user ${i}`);
    try {
      const r = await asRole(c, 'authenticated', claims(Q), 'SELECT roastr_state.consume_roasts(NULL, 1) AS r');
      if (r.r.allowed) qAllowed++;
      else qRefused++;
    } catch (e) {
      errors.push(`quota user ${i}: ${e.code} ${e.message}`);
    }
  }
  await c.end();
}

async function serviceClient(i) {
  const c = await pooled();
  const svc = JSON.stringify({ role: 'service_role' });
  for (let n = 0; n < ITER; n++) {
    await clean(c, `service ${i}`);
    try {
      if (n % 2 === 0) {
        const r = await asRole(c, 'service_role', svc, 'SELECT roastr_state.consume_roasts($1, 1) AS r', [Q]);
        if (r.r.allowed) qAllowed++;
        else qRefused++;
      } else {
        const r = await asRole(c, 'service_role', svc, `SELECT roastr_state.authorize_channel('roastr_state') AS s`);
        check(r.s === true, `service ${i}: the service is the service`);
        await asRole(c, 'service_role', svc, 'SELECT roastr_state.patch($1, $2::jsonb) AS p',
          [uid(rnd(NUSERS)), JSON.stringify({ 'roasting.roast_level': 1 + rnd(5) })]);
      }
    } catch (e) {
      errors.push(`service ${i}: ${e.code} ${e.message}`);
    }
  }
  await c.end();
}

// a transaction without claims must be refused, whoever ran before it
async function anonProbe(i) {
  const c = await pooled();
  for (let n = 0; n < ITER; n++) {
    await clean(c, `probe ${i}`);
    let code = null;
    try {
      await asRole(c, 'authenticated', null, 'SELECT roastr_state.state_full(NULL) AS s');
    } catch (e) {
      code = e.code;
    }
    check(code === '42501', `probe ${i}: a transaction without claims is refused`, code);
    const r = await asRole(c, 'authenticated', claims(uid(n % NUSERS)),
      `SELECT roastr_state.authorize_channel('roastr_state') AS s`);
    check(r.s === false, `probe ${i}: a user is not the service (may not LISTEN on roastr_state)`);
  }
  await c.end();
}

async function main() {
  const direct = new pg.Client({ database: process.env.DIRECT_DB });
  await direct.connect();
  for (let i = 0; i < NUSERS; i++) {
    await direct.query('SELECT roastr_state.ensure_user($1, $2)', [uid(i), `u${i}@example.com`]);
  }
  await direct.query('SELECT roastr_state.ensure_user($1, $2)', [Q, 'q@example.com']);
  await direct.query('SELECT roastr_state.consume_roasts($1, $2)', [Q, QUSED]);

  const t0 = Date.now();
  const clients = [];
  for (let i = 0; i < NUSERS; i++) clients.push(userClient(i));
  for (let i = 0; i < 4; i++) clients.push(quotaUser(i));
  for (let i = 0; i < 4; i++) clients.push(serviceClient(i));
  for (let i = 0; i < 2; i++) clients.push(anonProbe(i));
  await Promise.all(clients);
  const ms = Date.now() - t0;

  check(errors.length === 0, 'no unexpected error', errors.slice(0, 5).join(' | '));
  const srv = (await direct.query(`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = $1 AND usename = 'authenticator'`, [process.env.DIRECT_DB])).rows[0].n;
  check(srv <= 3, 'the clients shared at most 2 server connections (+1 of the pool of one)', srv);

  // every user's writes landed on that user only
  for (let i = 0; i < NUSERS; i++) {
    const r = (await direct.query(`SELECT name, monthly_roasts_used AS used FROM roastr_state.state WHERE user_id = $1`,
      [uid(i)])).rows[0];
    const mine = written.get(uid(i));
    check(r.name === null || mine.includes(r.name), `user ${i}: its name is one its own client wrote`, r.name);
    check(r.used === consumed.get(uid(i)), `user ${i}: its count is its own allowed consumptions`,
      `${r.used} vs ${consumed.get(uid(i))}`);
  }
  const q = (await direct.query(`SELECT roastr_state.state_full($1) AS s`, [Q])).rows[0].s;
  check(q.usage.monthly_roasts_used <= q.usage.monthly_roasts_limit, 'the quota user is not overdrawn',
    `${q.usage.monthly_roasts_used} of ${q.usage.monthly_roasts_limit}`);
  check(q.usage.monthly_roasts_used === QUSED + qAllowed, 'its count = baseline + allowed calls',
    `${q.usage.monthly_roasts_used} vs ${QUSED} + ${qAllowed}`);
  check(qAllowed === q.usage.monthly_roasts_limit - QUSED && qRefused > 0,
    'it ends exactly at its limit, the rest refused', `${qAllowed} allowed, ${qRefused} refused`);
  console.log(`pooler: ${clients.length} clients, ${passed + failed} checks in ${ms} ms; quota user: ${qAllowed} allowed, ${qRefused} refused`);

  // What leaks through a transaction pooler, on a pool of one connection.
  const a = await pooled(`${poolDb}_one`);
  const b = await pooled(`${poolDb}_one`);
  await a.query(`SELECT set_config('request.jwt.claims', $1, false)`, [claims(uid(0))]);
  let leaked = null;
  try {
    leaked = (await asRole(b, 'authenticated', null, 'SELECT roastr_state.state_full(NULL) AS s')).s.auth.userId;
  } catch (e) {
    leaked = e.code;
  }
  check(leaked === uid(0), 'evidence: a session-level set_config reaches the next client\'s transaction (claims must be set with is_local = true)', leaked);
  await a.query('DISCARD ALL');
  let code = null;
  try {
    await asRole(b, 'authenticated', null, 'SELECT roastr_state.state_full(NULL) AS s');
  } catch (e) {
    code = e.code;
  }
  check(code === '42501', 'after DISCARD ALL the next transaction has no claims again', code);

  // PgBouncer tracks protocol-level prepared statements in transaction mode
  // from 1.21 on (max_prepared_statements, on by default from 1.22):
  // Debian 12 has 1.18, Debian 13 1.24.
  const [maj, min] = (process.env.POOL_PGBOUNCER_VERSION || '0.0').split('.').map(Number);
  const tracks = maj > 1 || (maj === 1 && min >= 22);
  await a.query({ name: 'rs_named', text: 'SELECT 1 AS one' });
  code = null;
  let two = null;
  try {
    two = (await b.query({ name: 'rs_named', text: 'SELECT 2 AS two' })).rows[0].two;
  } catch (e) {
    code = e.code;
  }
  if (tracks) {
    check(code === null && two === 2,
      `PgBouncer ${process.env.POOL_PGBOUNCER_VERSION} keeps each client's named prepared statements apart`, code);
  } else {
    check(code === '42P05',
      `evidence: a named prepared statement of one client is seen by another (PgBouncer ${process.env.POOL_PGBOUNCER_VERSION} does not track them)`, code);
  }
  await a.query('DEALLOCATE ALL');
  const un = await b.query('SELECT $1::int + 1 AS two', [1]);
  check(un.rows[0].two === 2, 'unnamed statements with parameters (extended protocol) work');
  await a.end();
  await b.end();
  await direct.end();

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
