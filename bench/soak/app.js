// The production soak's application traffic (scripts/soak_prod.sh starts
// it): the soak's mixed workload (bench/soak/*.sql, same weights and the
// same choice of users) made as an API in front of PostgreSQL makes it,
// through PgBouncer in transaction mode, one transaction per request,
// shaped as PostgREST shapes it:
//
//   BEGIN; SET LOCAL ROLE authenticated;          (service_role for the service)
//   SELECT set_config('request.jwt.claims', $1, true);
//   SELECT soak.patch(...);                       (the harness's wrapper: the
//   COMMIT;                                        call and its ledger row)
//
// Patches and syncs run as the user (claims {sub, role: authenticated}),
// consume_roasts and webhook deliveries as the service (service_role).
// Polling devices -- one per user, as the soak's sync script -- sync from
// the cursor and the history they hold, alternately on the standby (the
// read pool) and on the primary; a PT503 from the standby (it has not
// replayed the device's cursor) is retried on the primary.  A reset answer
// replaces what the device holds.
//
// Every request is recorded on the client side (OUT/requests.tsv: client,
// request number, script, outcome, kind, code, start and end in ms):
// outcome ack (the COMMIT was answered), failed (an error before the
// COMMIT: rolled back) or unknown (the connection went while the COMMIT was
// in flight); kind of a failure: disruption (connection lost, server going
// away), pt503 or unexpected.  A connection lost is replaced and the client
// goes on with its next request.
//
// Signals: SIGUSR1 -- the standby was promoted: deliver again, twice and
// from two connections at once, every webhook event whose first delivery
// was acknowledged since the time (ms) in OUT/redeliver.since (a failover
// may have lost them).  SIGUSR2 -- stop: finish the requests under way, sync
// every polling device once more on the primary, write OUT/devices.jsonl
// (u, cursor, history, st, syncs, resets, pt503, anomalies, lines: the
// highest version seen per history line), OUT/points.jsonl (2% of the sync
// points: u, cursor, history, st), OUT/syncs.jsonl (each sync answer as a
// ledger row) and OUT/summary.json, and exit 0.
//
// Environment: APP_POOL_HOST, APP_POOL_PORT (PgBouncer), APP_DB_RW,
// APP_DB_RO (its databases for the primary and the standby), APP_CLIENTS,
// APP_USERS, APP_HOT, APP_WARM, APP_CUSERS (as bench/soak/setup.sql),
// APP_OUT (a directory).
import { createRequire } from 'node:module';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';

const require = createRequire(new URL('../../gateway/package.json', import.meta.url));
const pg = require('pg');

const env = process.env;
function need(name) {
  if (!env[name]) {
    console.error(`app.js: ${name} is required`);
    process.exit(2);
  }
  return env[name];
}
function int(name) {
  const n = Number(need(name));
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`app.js: ${name} must be a positive integer`);
    process.exit(2);
  }
  return n;
}
const HOST = need('APP_POOL_HOST');
const PORT = int('APP_POOL_PORT');
const DB = { rw: need('APP_DB_RW'), ro: need('APP_DB_RO') };
const CLIENTS = int('APP_CLIENTS');
const USERS = int('APP_USERS');
const HOT = int('APP_HOT');
const WARM = int('APP_WARM');
const CUSERS = int('APP_CUSERS');
const OUT = need('APP_OUT');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rnd = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));
const uid = (n) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

// pgbench's random_zipfian(1, USERS, 1.1): P(k) proportional to k^-1.1
const zcdf = new Float64Array(USERS);
for (let k = 1, acc = 0; k <= USERS; k++) {
  acc += k ** -1.1;
  zcdf[k - 1] = acc;
}
function zipf() {
  const x = Math.random() * zcdf[USERS - 1];
  let lo = 0;
  let hi = USERS - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (zcdf[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo + 1;
}

// "<system identifier>.<timeline>" of a history token
function lineOf(h) {
  if (typeof h !== 'string') return null;
  const dot = h.indexOf('.', h.indexOf('.') + 1);
  return dot < 0 ? h : h.slice(0, dot);
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------
const out = {
  requests: createWriteStream(`${OUT}/requests.tsv`),
  syncs: createWriteStream(`${OUT}/syncs.jsonl`),
  points: createWriteStream(`${OUT}/points.jsonl`),
};
const counts = { ack: 0, failed: 0, unknown: 0, unexpected: 0 };

// A failure's kind: the server or the pooler going away (what the soak's
// disruptions cause), a standby behind the cursor, or anything else.
function classify(err) {
  const c = typeof err?.code === 'string' ? err.code : '';
  if (c === 'PT503') return 'pt503';
  if (/^(08|57P0)/.test(c) || c === '53300') return 'disruption';
  // a system error of the socket (errno, syscall), whose code may look like
  // a SQLSTATE (EPIPE, EBADF): the connection, as in gateway/lib/errors.js
  if (typeof err?.errno === 'number' || typeof err?.syscall === 'string') return 'disruption';
  if (/^[0-9A-Z]{5}$/.test(c)) return 'unexpected';
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return 'unexpected';
  if (/^E[A-Z]+$/.test(c) || /terminated|not queryable|connection|socket|closed/i.test(err?.message ?? '')) return 'disruption';
  return 'unexpected';
}

// One client: its number, its request counter, a connection to each pool.
class Ctx {
  constructor(id) {
    this.id = id;
    this.tx = 0;
    this.conns = { rw: null, ro: null };
  }

  async conn(db) {
    const have = this.conns[db];
    if (have && !have.broken) return have;
    const c = new pg.Client({ host: HOST, port: PORT, database: DB[db], user: 'authenticator', application_name: 'soak_app' });
    c.broken = false;
    c.on('error', () => { c.broken = true; });
    c.on('end', () => { c.broken = true; });
    this.conns[db] = c;
    try {
      await c.connect();
    } catch (err) {
      this.drop(db);
      throw err;
    }
    return c;
  }

  drop(db) {
    const c = this.conns[db];
    this.conns[db] = null;
    if (c) {
      c.broken = true;
      c.end().catch(() => {});
    }
  }

  close() {
    this.drop('rw');
    this.drop('ro');
  }
}

const SET_CLAIMS = "SELECT set_config('request.jwt.claims', $1, true)";
const asUser = (n) => ({ role: 'authenticated', claims: JSON.stringify({ sub: uid(n), role: 'authenticated', aud: 'authenticated' }) });
const AS_SERVICE = { role: 'service_role', claims: JSON.stringify({ role: 'service_role' }) };

function note(ctx, tx, src, outcome, kind, code, t0) {
  counts[outcome]++;
  if (kind === 'unexpected') counts.unexpected++;
  out.requests.write(`${ctx.id}\t${tx}\t${src}\t${outcome}\t${kind}\t${String(code).replace(/\s/g, '_')}\t${t0}\t${Date.now()}\n`);
}

// One request in its own transaction; params(tx) gives the call's
// parameters.  Returns {tx, row}; throws the error with kind and outcome.
async function request(ctx, src, as, sql, params, db = 'rw') {
  const tx = ++ctx.tx;
  const t0 = Date.now();
  let phase = 'connect';
  let c;
  try {
    c = await ctx.conn(db);
    phase = 'begin';
    await c.query(`BEGIN; SET LOCAL ROLE ${as.role}`);
    await c.query(SET_CLAIMS, [as.claims]);
    phase = 'call';
    const res = await c.query(sql, params(tx));
    phase = 'commit';
    await c.query('COMMIT');
    note(ctx, tx, src, 'ack', '', '', t0);
    return { tx, row: res.rows[0] };
  } catch (err) {
    err.kind = classify(err);
    // a COMMIT sent without an answer may have committed
    err.outcome = phase === 'commit' ? 'unknown' : 'failed';
    if (c && !c.broken && err.kind !== 'disruption') {
      await c.query('ROLLBACK').catch(() => ctx.drop(db));
    } else {
      ctx.drop(db);
    }
    note(ctx, tx, src, err.outcome, err.kind, err.code ?? err.message?.slice(0, 40) ?? '', t0);
    throw err;
  }
}

// A wrapper call soak.<fn>(src, client, tx, ...args) as `as`.
function call(ctx, src, as, fn, types, args) {
  const ph = types.map((t, i) => `$${i + 4}::${t}`);
  const sql = `SELECT soak.${fn}($1::text, $2::int, $3::int${ph.length ? ', ' + ph.join(', ') : ''}) AS r`;
  return request(ctx, src, as, sql, (tx) => [src, ctx.id, tx, ...args]);
}

// The first of two requests (the client's retry follows whatever happened)
const tolerate = (p) => p.catch((err) => {
  if (err.kind === undefined) throw err;
  return null;
});

// ---------------------------------------------------------------------------
// Polling devices
// ---------------------------------------------------------------------------
const devices = new Map();
function device(u) {
  let d = devices.get(u);
  if (!d) {
    d = { u, cursor: 0, history: null, st: {}, syncs: 0, resets: 0, pt503: 0, anomalies: 0, lines: {}, next: Math.random() < 0.5 ? 'ro' : 'rw', busy: false };
    devices.set(u, d);
  }
  return d;
}

const SYNC2 = 'SELECT roastr_state.state_sync($1::uuid, $2::bigint) AS s';
const SYNC3 = 'SELECT roastr_state.state_sync($1::uuid, $2::bigint, $3::text) AS s';

// Sync device d on pool db and apply the answer, as a device app does.
async function sync(ctx, src, d, db, sample) {
  const params = d.history === null ? [uid(d.u), d.cursor] : [uid(d.u), d.cursor, d.history];
  const { tx, row } = await request(ctx, src, asUser(d.u), d.history === null ? SYNC2 : SYNC3, () => params, db);
  const s = row.s;
  const oldc = d.cursor;
  const reset = s.reset === true;
  const seen = new Set();
  let outside = 0;
  let repeated = 0;
  for (const c of s.changes) {
    if ((!reset && c.version <= oldc) || c.version > s.cursor) outside++;
    if (seen.has(c.field)) repeated++;
    seen.add(c.field);
  }
  const bad = {};
  if (outside) bad.outside = outside;
  if (repeated) bad.repeated = repeated;
  if (!reset && s.cursor < oldc) bad.cursor_back = true;
  const detail = Object.keys(bad).length > 0 ? bad : null;
  if (detail) d.anomalies++;
  if (reset) {
    d.st = {};
    d.resets++;
  }
  for (const c of s.changes) d.st[c.field] = c.value;
  d.cursor = s.cursor;
  if (typeof s.history === 'string') d.history = s.history;
  d.syncs++;
  const line = lineOf(d.history) ?? '';
  d.lines[line] = Math.max(d.lines[line] ?? 0, d.cursor);
  out.syncs.write(JSON.stringify({
    src, client: ctx.id, tx, u: d.u, version: s.cursor, base: oldc, n: s.changes.length,
    result: { server: db, reset, history: s.history ?? null }, detail,
  }) + '\n');
  if (sample) out.points.write(JSON.stringify({ u: d.u, cursor: d.cursor, history: d.history, st: d.st }) + '\n');
}

// ---------------------------------------------------------------------------
// The scripts (bench/soak/*.sql), by weight
// ---------------------------------------------------------------------------
const events = [];      // webhook events whose first delivery was acknowledged

function consumer() {
  const r = rnd(1, 100);
  if (r <= 40) return { u: HOT, n: 1 };
  if (r <= 60) return { u: rnd(1, WARM), n: rnd(1, 3) };
  return { u: rnd(1, CUSERS), n: rnd(1, 3) };
}

async function newEvent(ctx, src) {
  const u = rnd(CUSERS + 1, USERS);
  const { row } = await call(ctx, src, AS_SERVICE, 'webhook_new_j', ['int'], [u]);
  events.push({ ev: row.r, acked: Date.now() });
  return row.r;
}

const SCRIPTS = [
  ['patch', 20, async (ctx) => {
    const u = rnd(1, USERS);
    await call(ctx, 'patch', asUser(u), 'patch', ['int', 'int'], [u, null]);
  }],
  ['patch_base', 15, async (ctx) => {
    const u = rnd(1, 100) <= 10 ? HOT : zipf();
    await call(ctx, 'patch_base', asUser(u), 'patch', ['int', 'int'], [u, rnd(0, 2)]);
  }],
  ['patch_mut', 5, async (ctx) => {
    const u = zipf();
    const k = rnd(1, 8);
    await tolerate(call(ctx, 'patch_mut', asUser(u), 'patch_mut', ['int', 'int'], [u, k]));
    await call(ctx, 'patch_mut', asUser(u), 'patch_mut', ['int', 'int'], [u, k]);
  }],
  ['sync', 25, async (ctx) => {
    const r = rnd(1, 100);
    const d = device(r <= 50 ? zipf() : r <= 55 ? HOT : rnd(1, USERS));
    if (d.busy) return;      // one sync at a time per device
    d.busy = true;
    try {
      const db = d.next;
      d.next = db === 'ro' ? 'rw' : 'ro';
      const sample = rnd(1, 100) <= 2;
      try {
        await sync(ctx, 'sync', d, db, sample);
      } catch (err) {
        if (err.kind !== 'pt503' || db !== 'ro') throw err;
        d.pt503++;
        await sync(ctx, 'sync', d, 'rw', sample);
      }
    } finally {
      d.busy = false;
    }
  }],
  ['consume', 15, async (ctx) => {
    const { u, n } = consumer();
    await call(ctx, 'consume', AS_SERVICE, 'consume', ['int', 'int', 'int'], [u, n, 0]);
  }],
  ['consume_key', 5, async (ctx) => {
    const { u } = consumer();
    const key = rnd(1, 300);
    await tolerate(call(ctx, 'consume_key', AS_SERVICE, 'consume', ['int', 'int', 'int'], [u, 1, key]));
    await call(ctx, 'consume_key', AS_SERVICE, 'consume', ['int', 'int', 'int'], [u, 1, key]);
  }],
  ['webhook', 8, async (ctx) => {
    await newEvent(ctx, 'webhook');
  }],
  ['webhook_dup', 4, async (ctx) => {
    // the same delivery again; soak.redeliver_event, not
    // soak.webhook_redeliver(wid): it puts the event back if a failover
    // lost it in between
    const ev = await newEvent(ctx, 'webhook_dup');
    await call(ctx, 'webhook_dup', AS_SERVICE, 'redeliver_event', ['jsonb'], [JSON.stringify(ev)]);
  }],
  ['webhook_redeliver', 3, async (ctx) => {
    await call(ctx, 'webhook_redeliver', AS_SERVICE, 'webhook_redeliver', ['text', 'int'], [null, 50]);
  }],
];
const TOTAL = SCRIPTS.reduce((a, [, w]) => a + w, 0);
function pick() {
  let x = Math.random() * TOTAL;
  for (const [, w, f] of SCRIPTS) {
    if ((x -= w) < 0) return f;
  }
  return SCRIPTS[0][2];
}

let stopping = false;

async function runClient(ctx) {
  let failures = 0;
  while (!stopping) {
    try {
      await pick()(ctx);
      failures = 0;
    } catch (err) {
      if (err.kind === undefined) throw err;        // a bug here, not a database error
      if (err.kind === 'disruption') await sleep(Math.min(100 * 2 ** failures++, 1000));
    }
  }
  ctx.close();
}

// After the promotion: every event acknowledged since `since`, delivered
// twice, from two connections walking the list from both ends.
async function redeliver() {
  const since = Number(readFileSync(`${OUT}/redeliver.since`, 'utf8'));
  const evs = events.filter((e) => e.acked >= since).map((e) => e.ev);
  const ctxs = [new Ctx(CLIENTS), new Ctx(CLIENTS + 1)];
  await Promise.all(ctxs.map(async (ctx, i) => {
    for (const ev of i === 0 ? evs : [...evs].reverse()) {
      for (let tries = 0; tries < 60; tries++) {
        try {
          await call(ctx, 'webhook_failover', AS_SERVICE, 'redeliver_event', ['jsonb'], [JSON.stringify(ev)]);
          break;
        } catch (err) {
          if (err.kind === undefined) throw err;
          if (err.kind !== 'disruption') break;
          await sleep(500);
        }
      }
    }
    ctx.close();
  }));
  console.log(`redelivered ${evs.length} events twice`);
  return evs.length;
}

// At the end: every device that synced, once more on the primary.
async function finalSyncs() {
  const list = [...devices.values()].filter((d) => d.syncs > 0);
  let next = 0;
  let failed = 0;
  const workers = Array.from({ length: Math.min(CLIENTS, 8) }, (_, i) => new Ctx(CLIENTS + 2 + i));
  await Promise.all(workers.map(async (ctx) => {
    while (next < list.length) {
      const d = list[next++];
      for (let tries = 0; ; tries++) {
        try {
          await sync(ctx, 'final_sync', d, 'rw', false);
          break;
        } catch (err) {
          if (err.kind === undefined) throw err;
          if (err.kind !== 'disruption' || tries >= 20) {
            failed++;
            break;
          }
          await sleep(250);
        }
      }
    }
    ctx.close();
  }));
  return { devices: list.length, failed };
}

const endStream = (s) => new Promise((r) => s.end(r));

async function main() {
  // the pooler answers before we start
  const probe = new Ctx(-1);
  const c = await probe.conn('rw');
  await c.query('SELECT 1');
  probe.close();

  let redelivery = Promise.resolve(0);
  process.on('SIGUSR1', () => { redelivery = redeliver(); });
  process.on('SIGUSR2', () => { stopping = true; });
  const started = Date.now();
  const progress = setInterval(() => {
    console.log(`t=${Math.round((Date.now() - started) / 1000)}s ${JSON.stringify(counts)}`);
  }, 30000);
  console.log(`ready ${CLIENTS}`);

  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => runClient(new Ctx(i))));
  clearInterval(progress);
  const redelivered = await redelivery;
  const finals = await finalSyncs();
  writeFileSync(`${OUT}/devices.jsonl`, [...devices.values()].filter((d) => d.syncs > 0).map((d) => JSON.stringify({
    u: d.u, cursor: d.cursor, history: d.history, st: d.st, syncs: d.syncs, resets: d.resets,
    pt503: d.pt503, anomalies: d.anomalies, lines: d.lines,
  }) + '\n').join(''));
  await Promise.all(Object.values(out).map(endStream));
  const summary = { ...counts, devices: devices.size, events: events.length, redelivered, finalSyncs: finals };
  writeFileSync(`${OUT}/summary.json`, JSON.stringify(summary) + '\n');
  console.log(`done ${JSON.stringify(summary)}`);
  process.exit(finals.failed === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error('app.js:', err);
  process.exit(1);
});
