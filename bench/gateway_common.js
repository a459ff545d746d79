// bench/gateway_common.js — what the gateway benchmarks share
// (bench/gateway_load.js, bench/gateway_scale.js): the gateway's node
// modules, knobs, the bench database with its users, a gateway process, and
// the /proc readings of a process.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const { createRequire } = require('node:module');

const ROOT = path.join(__dirname, '..');
const gwRequire = createRequire(path.join(ROOT, 'gateway', 'package.json'));

// The gateway's own packages (npm ci --prefix gateway), or exit 2 saying so.
function gatewayModules(who, names) {
  try {
    return names.map((n) => gwRequire(n));
  } catch {
    console.error(`${who}: node modules missing; run: npm ci --prefix gateway`);
    process.exit(2);
  }
}

const envInt = (name, def) => {
  const n = Number(process.env[name] ?? def);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// user i's id (0-based), as setupDatabase creates them
const userId = (i) => `00000000-0000-4000-8000-${(i + 1).toString(16).padStart(12, '0')}`;
const USER_ID_SQL = "('00000000-0000-4000-8000-' || lpad(to_hex(i + 1), 12, '0'))::uuid";
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function openFilesLimit() {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    return Number(line.split(/\s+/)[3]);
  } catch {
    return Infinity;
  }
}

// CPU seconds (user + system) and RSS (bytes) of a process, from /proc.
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch {
    return NaN;
  }
}
function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]) * 1024;
  } catch {
    return NaN;
  }
}

// A fresh database DB with the extension and USERS users (ids userId(i),
// e-mail <prefix><i>@example.com), and the gateway's own login role when the
// cluster has Supabase's authenticated role (gateway/README.md: it may
// become authenticated, nothing else).  Returns the role the gateway logs in
// as (GATEWAY_DB_USER overrides it).
async function setupDatabase(pg, db, users, prefix) {
  const admin = new pg.Client({ database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(db)} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(db)}`);
  const hasAuthenticated = (await admin.query("SELECT 1 FROM pg_roles WHERE rolname = 'authenticated'")).rowCount > 0;
  if (hasAuthenticated && !process.env.GATEWAY_DB_USER) {
    if ((await admin.query("SELECT 1 FROM pg_roles WHERE rolname = 'roastr_gateway'")).rowCount === 0) {
      await admin.query('CREATE ROLE roastr_gateway LOGIN NOINHERIT');
    }
    await admin.query('GRANT authenticated TO roastr_gateway');
  }
  await admin.end();
  const c = new pg.Client({ database: db });
  await c.connect();
  await c.query('CREATE EXTENSION roastr_state');
  await c.query(`SELECT count(roastr_state.ensure_user(${USER_ID_SQL}, $2 || i || '@example.com'))
                 FROM generate_series(0, $1::int - 1) i`, [users, prefix]);
  await c.end();
  return process.env.GATEWAY_DB_USER ?? (hasAuthenticated ? 'roastr_gateway' : process.env.PGUSER);
}

async function dropDatabase(pg, db) {
  const admin = new pg.Client({ database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(db)} WITH (FORCE)`);
  await admin.end();
}

// Every user's current version, in user order.
async function versions(pool, users) {
  const { rows } = await pool.query(
    `SELECT (roastr_state.state_full(${USER_ID_SQL})->'_meta'->>'version')::bigint AS v
     FROM generate_series(0, $1::int - 1) i ORDER BY i`, [users]);
  return rows.map((r) => Number(r.v));
}

// The reference gateway on loopback, an ephemeral port; resolves to
// {child, name, url} once it listens, rejects if it exits first.  Its logs
// are drained (never parsed beyond the listening line).
function startGateway({ db, dbUser, secret, mode, name = 'gateway' }) {
  const child = spawn(process.execPath, [path.join(ROOT, 'gateway', 'server.js')], {
    env: { ...process.env, PGDATABASE: db, PGUSER: dbUser, JWT_SECRET: secret, LISTEN_MODE: mode, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk) => {
      buf += chunk;
      const m = /"msg":"listening","port":(\d+)/.exec(buf);
      if (m) {
        child.stdout.off('data', onData);
        child.stdout.resume(); // keep draining its logs
        child.off('exit', onExit);
        resolve({ child, name, url: `http://127.0.0.1:${m[1]}` });
      }
      if (buf.length > 1e6) buf = buf.slice(-1000);
    };
    const onExit = (code) => reject(new Error(`${name} exited with ${code}`));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

// SIGTERM, and up to 10 s for it to exit (nothing if it already has).
async function stopGateway(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10000)]);
}

async function healthz(url) {
  return (await fetch(`${url}/healthz`)).json();
}

module.exports = {
  ROOT, gatewayModules, envInt, sleep, userId, loadavg, percentile, openFilesLimit, cpuSeconds, rssBytes,
  setupDatabase, dropDatabase, versions, startGateway, stopGateway, healthz,
};
