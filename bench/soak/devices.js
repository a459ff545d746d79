// Soak devices that follow notifications through the reference gateway
// (scripts/soak.sh and scripts/soak_prod.sh start the gateways and this).
// Each device is a socket.io-client of one user, holding its state as a
// flat object path -> value, the cursor it was last given and the history
// that cursor belongs to, applying what the gateway sends exactly as
// gateway/README.md tells devices to:
//   state_sync   {changes, cursor, history, reset}: with reset, drop what
//                it holds first; apply every change, take the cursor and
//                the history;
//   state_update {version, fields, data, history}: deep-merge data, take
//                the version (and the history's line).
// It connects with {token, cursor, history}, also when it reconnects (a
// gateway restarted, a failover).  The gateway relays a notification only
// when it continues the device's cursor on the device's history line and
// carries every field it names; anything else reaches the device as a
// state_sync.  So a state_update that does not continue the cursor, is of
// another line, or whose data lacks a field it names that payloads carry,
// is an anomaly.
//
// Usage: node bench/soak/devices.js URL[,URL...] USERS_FILE OUT_FILE
//   USERS_FILE: one user uuid per line; device i connects to URL i mod n.
//   JWT_SECRET from the environment.
// On SIGUSR2 it reads OUT_FILE.targets (uuid TAB version [TAB history line]
// per line), waits (up to 60 s) until every device holds its user's version
// (of that line), then writes OUT_FILE (one JSON object per device: u, gw,
// cursor, history, st, updates and updatesNoHistory (those whose payload
// named no history), syncs, resets, anomalies, connects, lines: the highest
// version seen per history line) and exits 0.
import { createRequire } from 'node:module';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const require = createRequire(new URL('../../gateway/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [urlList, usersFile, outFile] = process.argv.slice(2);
const secret = process.env.JWT_SECRET;
if (!urlList || !usersFile || !outFile || !secret) {
  console.error('usage: JWT_SECRET=... node bench/soak/devices.js URL[,URL...] USERS_FILE OUT_FILE');
  process.exit(2);
}
const urls = urlList.split(',');
const WITHHELD = new Set([
  'auth.email', 'auth.name', 'subscription.polar_subscription_id',
  'subscription.polar_customer_id', 'persona.identity', 'persona.intolerance',
  'persona.tolerance', 'organization.id', 'organization.name',
  'organization.slug', 'organization.role',
]);

const b64url = (b) => Buffer.from(b).toString('base64url');
function token(sub) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 86400 }));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// "<system identifier>.<timeline>" of a history token (what notifications
// carry), as the gateway's validate.js historyLine.
function lineOf(h) {
  if (typeof h !== 'string') return null;
  const dot = h.indexOf('.', h.indexOf('.') + 1);
  return dot < 0 ? h : h.slice(0, dot);
}

function seen(d, version) {
  const line = lineOf(d.history) ?? '';
  d.lines[line] = Math.max(d.lines[line] ?? 0, version);
}

function flatten(data, out = {}) {
  for (const [sec, obj] of Object.entries(data)) {
    if (obj === null) {
      for (const k of ['id', 'name', 'slug', 'role']) out[`${sec}.${k}`] = null;
    } else {
      for (const [k, v] of Object.entries(obj)) out[`${sec}.${k}`] = v;
    }
  }
  return out;
}

const devices = readFileSync(usersFile, 'utf8').split('\n').filter(Boolean).map((u, i) => {
  const d = {
    u, gw: i % urls.length, cursor: 0, history: null, st: {}, updates: 0, updatesNoHistory: 0, syncs: 0,
    resets: 0, anomalies: 0, connects: 0, lines: {}, notes: [],
  };
  const jwt = token(u);
  d.socket = io(urls[d.gw], {
    transports: ['websocket'],
    reconnectionDelay: 200,
    reconnectionDelayMax: 2000,
    auth: (cb) => cb(d.history === null ? { token: jwt, cursor: d.cursor } : { token: jwt, cursor: d.cursor, history: d.history }),
  });
  d.socket.on('connect', () => { d.connects++; });
  d.socket.on('state_sync', (m) => {
    if (m.reset === true) {
      d.st = {};
      d.resets++;
    }
    for (const c of m.changes) d.st[c.field] = c.value;
    d.cursor = m.cursor;
    if (typeof m.history === 'string') d.history = m.history;
    seen(d, d.cursor);
    d.syncs++;
  });
  d.socket.on('state_update', (m) => {
    const data = flatten(m.data || {});
    const otherLine = typeof m.history === 'string' && d.history !== null && lineOf(m.history) !== lineOf(d.history);
    if (m.version !== d.cursor + 1 || otherLine || !Array.isArray(m.fields) || m.fields.length === 0 ||
        m.fields.some((f) => !WITHHELD.has(f) && !(f in data)) || m.fields.some((f) => WITHHELD.has(f))) {
      d.anomalies++;
      if (d.notes.length < 3) d.notes.push({ cursor: d.cursor, history: d.history, version: m.version, line: m.history, fields: m.fields });
    }
    Object.assign(d.st, data);
    d.cursor = m.version;
    // a payload's history has no WAL position: the device keeps the line
    if (typeof m.history === 'string') d.history = m.history;
    else {
      d.history = lineOf(d.history);
      d.updatesNoHistory++;
    }
    seen(d, d.cursor);
    d.updates++;
  });
  d.socket.on('connect_error', () => {});
  return d;
});

process.on('SIGUSR2', async () => {
  const targets = new Map(readFileSync(`${outFile}.targets`, 'utf8').split('\n').filter(Boolean)
    .map((l) => { const [u, v, line] = l.split('\t'); return [u, { version: Number(v), line: line || null }]; }));
  const there = (d) => {
    const t = targets.get(d.u);
    return !t || (d.cursor >= t.version && (t.line === null || lineOf(d.history) === t.line));
  };
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline && !devices.every(there)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  writeFileSync(outFile, devices.map((d) => JSON.stringify({
    u: d.u, gw: d.gw, cursor: d.cursor, history: d.history, st: d.st, updates: d.updates,
    updatesNoHistory: d.updatesNoHistory, syncs: d.syncs,
    resets: d.resets, anomalies: d.anomalies, connects: d.connects, lines: d.lines, notes: d.notes,
  })).join('\n') + '\n');
  for (const d of devices) d.socket.close();
  process.exit(0);
});
console.log(`ready ${devices.length}`);
