#!/usr/bin/env node
// bench/gateway_load.js — load test of the reference gateway (gateway/).
//
//   node bench/gateway_load.js            (PG* env: a running cluster with
//                                          roastr_state installed, as a superuser)
//
// For each LISTEN mode: starts the gateway (loopback, ephemeral port) against
// a fresh database, connects BENCH_DEVICES socket.io-client devices spread
// over BENCH_USERS users, then writes BENCH_RATE patches a second for
// BENCH_SECONDS seconds through roastr_state.patch from a pg pool (round
// robin over the users).  The writer notes when each patch's commit was
// acknowledged; each device notes when the state_update of that user and
// version arrived: the difference is the delivery latency.  Gateway memory
// (RSS, from its /healthz) is read idle, with every device connected, and
// after the run.  A result block goes to stdout, progress to stderr.
//
// Knobs: BENCH_USERS (100), BENCH_DEVICES (1000), BENCH_RATE (200),
// BENCH_SECONDS (30), BENCH_MODES ("per-user,shared"), BENCH_DB
// (roastr_gateway_bench, dropped and created), GATEWAY_DB_USER (the role the
// gateway logs in as; default roastr_gateway, created when missing and the
// cluster has Supabase's authenticated role, as gateway/README.md says).
'use strict';
const fs = require('node:fs');
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');
const {
  gatewayModules, envInt, sleep, userId, percentile, openFilesLimit, cpuSeconds,
  setupDatabase, dropDatabase, versions, startGateway, stopGateway, healthz,
} = require('./gateway_common.js');

const [pg, { io }, { SignJWT }] = gatewayModules('gateway_load', ['pg', 'socket.io-client', 'jose']);

const USERS = envInt('BENCH_USERS', 100);
const DEVICES = envInt('BENCH_DEVICES', 1000);
const RATE = envInt('BENCH_RATE', 200);
const SECONDS = envInt('BENCH_SECONDS', 30);
const MODES = (process.env.BENCH_MODES ?? 'per-user,shared').split(',').map((s) => s.trim()).filter(Boolean);
const DB = process.env.BENCH_DB ?? 'roastr_gateway_bench';
const SECRET = crypto.randomBytes(32).toString('hex');
const KEY = Buffer.from(SECRET, 'utf8');

const now = () => performance.now();
const log = (msg) => process.stderr.write(`[gateway_load ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ------------------------------------------------------------- one run
async function run(mode, dbUser) {
  const { child, url } = await startGateway({ db: DB, dbUser, secret: SECRET, mode });
  const pool = new pg.Pool({ database: DB, max: 8 });
  const result = { mode };
  const sockets = [];
  try {
    await sleep(500);
    result.rssIdle = (await healthz(url)).rss_bytes;

    // devices
    const tokens = await Promise.all(Array.from({ length: USERS }, (_, i) =>
      new SignJWT({ sub: userId(i), role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(KEY)));
    const start = await versions(pool, USERS);
    const commitAt = new Map();          // "user:version" -> ms
    const receipts = [];                 // [key, ms]
    const cursors = new Array(DEVICES).fill(0);
    let syncsDuringRun = 0;
    let measuring = false;
    const t0 = now();
    const cpu0 = cpuSeconds(child.pid);
    for (let base = 0; base < DEVICES; base += 100) {
      await Promise.all(Array.from({ length: Math.min(100, DEVICES - base) }, (_, j) => {
        const d = base + j;
        const u = d % USERS;
        cursors[d] = start[u];
        const s = io(url, { auth: { token: tokens[u], cursor: start[u] }, transports: ['websocket'], reconnection: false, forceNew: true });
        sockets.push(s);
        s.on('state_update', (m) => {
          receipts.push([`${u}:${m.version}`, now()]);
          cursors[d] = m.version;
        });
        s.on('state_sync', (m) => {
          if (measuring) syncsDuringRun++;
          cursors[d] = m.cursor;
        });
        return new Promise((resolve, reject) => {
          s.once('state_sync', resolve);
          s.once('connect_error', reject);
        });
      }));
    }
    result.connectSeconds = (now() - t0) / 1000;
    result.cpuConnect = cpuSeconds(child.pid) - cpu0;
    await sleep(2000);
    result.rssConnected = (await healthz(url)).rss_bytes;
    log(`${mode}: ${DEVICES} devices connected in ${result.connectSeconds.toFixed(1)} s`);

    // writes: write k at w0 + k / RATE, round robin over the users
    const level = start.map(() => 3);
    const warm = new Set();
    let failed = 0;
    async function write(seconds, measured) {
      const total = RATE * seconds;
      const inflight = new Set();
      const w0 = now();
      for (let issued = 0; issued < total;) {
        const due = Math.min(total, Math.floor(((now() - w0) / 1000) * RATE) + 1);
        for (; issued < due; issued++) {
          const u = issued % USERS;
          level[u] = (level[u] % 5) + 1;
          const p = pool.query('SELECT (roastr_state.patch($1, $2)->>\'version\')::bigint AS v',
            [userId(u), `{"roasting.roast_level": ${level[u]}}`])
            .then((r) => {
              const key = `${u}:${r.rows[0].v}`;
              if (measured) commitAt.set(key, now());
              else warm.add(key);
            }, () => failed++)
            .finally(() => inflight.delete(p));
          inflight.add(p);
        }
        await sleep(Math.max(1, (issued / RATE) * 1000 - (now() - w0)));
      }
      await Promise.all(inflight);
      return { total, seconds: (now() - w0) / 1000 };
    }
    // One second of warm-up, not measured: the extension's notifier is
    // started on demand by the first write after 3 idle seconds.
    await write(1, false);
    await sleep(200);
    measuring = true;
    const cpu1 = cpuSeconds(child.pid);
    const w = await write(SECONDS, true);
    result.cpuRun = cpuSeconds(child.pid) - cpu1;
    result.writeSeconds = w.seconds;
    result.writes = w.total - failed;
    result.failedWrites = failed;

    // every device reaches its user's final version (or 15 s pass)
    const final = await versions(pool, USERS);
    const until = now() + 15000;
    while (cursors.some((c, d) => c < final[d % USERS]) && now() < until) await sleep(50);
    measuring = false;
    result.behind = cursors.filter((c, d) => c < final[d % USERS]).length;
    await sleep(500);
    const h = await healthz(url);
    result.rssAfter = h.rss_bytes;
    result.catchups = Object.values(h.catchups).reduce((a, b) => a + b, 0);

    const lat = [];
    let unmatched = 0;
    for (const [key, t] of receipts) {
      if (warm.has(key)) continue;
      const c = commitAt.get(key);
      if (c === undefined) unmatched++;
      else lat.push(t - c);
    }
    lat.sort((a, b) => a - b);
    result.deliveries = lat.length;
    result.expected = result.writes * (DEVICES / USERS);
    result.unmatched = unmatched;
    result.syncsDuringRun = syncsDuringRun;
    result.p50 = percentile(lat, 50);
    result.p99 = percentile(lat, 99);
    result.max = lat.at(-1);
    result.min = lat[0];
  } finally {
    for (const s of sockets) s.close();
    await pool.end();
    await stopGateway(child);
  }
  return result;
}

// --------------------------------------------------------------- main
async function main() {
  if (DEVICES % USERS !== 0) throw new Error('BENCH_DEVICES must be a multiple of BENCH_USERS');
  const limit = openFilesLimit();
  if (limit < DEVICES + 200) throw new Error(`open files limit ${limit} is too low for ${DEVICES} sockets (ulimit -n ${DEVICES + 1000})`);
  const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  log(`database ${DB}: ${USERS} users`);
  const dbUser = await setupDatabase(pg, DB, USERS, 'bench');
  const results = [];
  try {
    for (const mode of MODES) {
      log(`${mode}: starting the gateway`);
      results.push(await run(mode, dbUser));
    }
  } finally {
    await dropDatabase(pg, DB).catch((e) => log(`could not drop ${DB}: ${e.message}`));
  }

  const mb = (b) => `${(b / 1048576).toFixed(0)} MB`;
  const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a');
  const out = [];
  out.push(`### Gateway load (bench/gateway_load.js)`);
  out.push('');
  out.push(`${DEVICES} devices over ${USERS} users, ${RATE} writes/s for ${SECONDS} s through roastr_state.patch (pool of 8), ` +
    `after 1 s of unmeasured warm-up; node ${process.version}, loopback only, gateway connected as ${dbUser}; ` +
    `latency = device receipt of the state_update minus the writer's receipt of the commit acknowledgement (one process, one clock).`);
  out.push('');
  out.push(`Machine: ${require('node:os').cpus().length} CPUs; load average before ${loadBefore}, after ` +
    `${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; gateway, devices, writer and PostgreSQL share them.`);
  out.push('');
  out.push('| LISTEN mode | writes (achieved/s) | state_update deliveries / expected | catch-up syncs | p50 | p99 | max | devices behind at end | gateway RSS idle → connected → after | gateway CPU: connecting / during writes |');
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    out.push(`| ${r.mode} | ${r.writes} (${(r.writes / r.writeSeconds).toFixed(0)}/s) | ${r.deliveries} / ${r.expected}` +
      `${r.unmatched ? ` (+${r.unmatched} unmatched)` : ''} | ${r.catchups} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.behind} |` +
      ` ${mb(r.rssIdle)} → ${mb(r.rssConnected)} → ${mb(r.rssAfter)} |` +
      ` ${r.cpuConnect.toFixed(1)} s in ${r.connectSeconds.toFixed(1)} s / ${(100 * r.cpuRun / r.writeSeconds).toFixed(0)} % of a core |`);
  }
  const text = out.join('\n');
  console.log(text);
  const ok = results.every((r) => r.behind === 0 && r.failedWrites === 0);
  if (!ok) console.log('\nFAILED: some devices did not reach the final version, or writes failed');
  return ok;
}

main().then((ok) => process.exit(ok ? 0 : 1), (err) => {
  console.error(`gateway_load: ${err.stack ?? err}`);
  process.exit(1);
});
