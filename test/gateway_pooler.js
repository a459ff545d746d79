// The reference gateway with its per-device queries going through PgBouncer
// in pool_mode = transaction and its LISTEN connection going to PostgreSQL
// directly (run by test/extra/gateway_pooler.sh, which starts both the
// pooler and the gateway).  Environment:
//
//   GW_URL       the gateway, http://127.0.0.1:PORT
//   JWT_SECRET   its HS256 secret
//   USER_ID      a user that exists
//   PG*          the test database, directly, as a superuser (the service)
//
// Checked: devices are authorized and answered with state_sync (queries
// through the pooler), changes made through SQL are relayed live (LISTEN,
// direct), a patch over the socket is applied and relayed, a version gap is
// caught up, the HTTP reads answer, /metrics counted it.  Prints one line
// per check and "N passed, N failed"; exits 1 on any failure.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../gateway/package.json', import.meta.url));
const pg = require('pg');
const { SignJWT } = require('jose');
const { io } = require('socket.io-client');

const { GW_URL: url, JWT_SECRET, USER_ID: U } = process.env;
const KEY = Buffer.from(JWT_SECRET ?? '', 'utf8');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (err) {
    failed++;
    console.log(`not ok - ${name}: ${err.stack ?? err}`);
  }
}

const sql = new pg.Client();
const patch = async (changes) => (await sql.query('SELECT roastr_state.patch($1, $2) AS r', [U, JSON.stringify(changes)])).rows[0].r;
const version = async () => Number((await sql.query("SELECT (roastr_state.state_full($1)->'_meta'->>'version')::bigint AS v", [U])).rows[0].v);

const token = () => new SignJWT({ sub: U, role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' })
  .setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(KEY);

class Device {
  constructor() {
    this.events = [];
    this.cursor = 0;
  }

  async connect(cursor) {
    this.cursor = cursor;
    const s = io(url, { auth: { token: await token(), cursor }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 });
    this.socket = s;
    s.on('state_update', (m) => { this.events.push(['state_update', m]); this.cursor = m.version; });
    s.on('state_sync', (m) => { this.events.push(['state_sync', m]); this.cursor = m.cursor; });
    return new Promise((resolve, reject) => {
      s.once('connect_error', reject);
      s.once('state_sync', resolve);
    });
  }

  async waitCursor(v, ms = 2000) {
    const until = Date.now() + ms;
    while (this.cursor < v) {
      if (Date.now() > until) throw new Error(`timed out waiting for cursor ${v} (at ${this.cursor})`);
      await sleep(5);
    }
  }

  last() { return this.events.at(-1); }

  close() { this.socket?.close(); }
}

async function main() {
  await sql.connect();
  const a = new Device();
  const b = new Device();
  let line = null;   // the server's history line, "<system id>.<timeline>"

  await check('devices are authorized and answered with state_sync (queries through the pooler)', async () => {
    const v = await version();
    const first = await a.connect(v);
    // 0.5.0: the answer names the history its cursor belongs to
    assert.match(first.history ?? '', /^[0-9]+\.[0-9]+\.[0-9A-F]+$/);
    line = first.history.split('.').slice(0, 2).join('.');
    assert.deepEqual({ ...first, history: undefined }, { changes: [], cursor: v, history: undefined, reset: false });
    const s = await b.connect(0);
    assert.equal(s.cursor, v);
    assert.ok(s.changes.some((c) => c.field === 'roasting.enabled'));
  });

  await check('a change made through SQL reaches both devices as state_update within 1 s (LISTEN, direct)', async () => {
    const r = await patch({ 'roasting.roast_level': 2 });
    await a.waitCursor(r.version, 1000);
    await b.waitCursor(r.version, 1000);
    assert.equal(r.history, line);
    assert.deepEqual(a.last(), ['state_update', { type: 'roasting_update', data: { roasting: { roast_level: 2 } }, version: r.version, history: line, fields: ['roasting.roast_level'] }]);
  });

  await check('a patch over the socket is applied through the pooler, acked, and relayed to the other device', async () => {
    const v = await version();
    const ack = await a.socket.timeout(5000).emitWithAck('patch', { changes: { 'roasting.roast_level': 4 }, base_version: v });
    assert.deepEqual(ack, { version: v + 1, applied: ['roasting.roast_level'], history: line });
    await b.waitCursor(v + 1, 1000);
    assert.equal(b.last()[0], 'state_update');
  });

  await check('a version gap (two statements in one transaction) is caught up with state_sync through the pooler', async () => {
    const v = await version();
    await sql.query('BEGIN');
    await patch({ 'roasting.enabled': false });
    await patch({ 'roasting.roast_level': 5 });
    await sql.query('COMMIT');
    await a.waitCursor(v + 2, 2000);
    const [kind, m] = a.last();
    assert.equal(kind, 'state_sync');
    assert.deepEqual(m.changes.map((c) => [c.field, c.version]), [['roasting.enabled', v + 1], ['roasting.roast_level', v + 2]]);
  });

  await check('GET /api/state/full and /api/state/sync answer through the pooler', async () => {
    const headers = { authorization: `Bearer ${await token()}` };
    const full = await fetch(`${url}/api/state/full`, { headers });
    assert.equal(full.status, 200);
    const body = await full.json();
    assert.equal(body.data._meta.version, await version());
    const sync = await fetch(`${url}/api/state/sync?since=${body.data._meta.version - 1}`, { headers });
    assert.equal(sync.status, 200);
    assert.equal((await sync.json()).cursor, body.data._meta.version);
  });

  await check('/metrics counted the deliveries, the patch and the catch-up; the LISTEN connection is up', async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (sample) => Number(text.split('\n').find((l) => l.startsWith(`${sample} `))?.slice(sample.length + 1));
    assert.ok(value('roastr_gateway_state_updates_total') >= 3);
    assert.equal(value('roastr_gateway_patches_total{code="ok"}'), 1);
    assert.ok(value('roastr_gateway_catchups_total{cause="gap"}') >= 1);
    assert.equal(value('roastr_gateway_listen_up'), 1);
    assert.equal(value('roastr_gateway_listen_reconnects_total'), 0);
  });

  a.close();
  b.close();
}

try {
  assert.ok(url && JWT_SECRET && U, 'GW_URL, JWT_SECRET and USER_ID must be set');
  await main();
} catch (err) {
  failed++;
  console.log(`not ok - setup: ${err.stack ?? err}`);
} finally {
  await sql.end().catch(() => {});
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
