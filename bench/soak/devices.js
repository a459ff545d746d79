// Soak devices that follow notifications through the reference gateway
// (scripts/soak.sh starts the gateway and this).  Each device is a
// socket.io-client of one user, holding its state as a flat object
// path -> value and the cursor it was last given, applying what the
// gateway sends exactly as gateway/README.md tells devices to:
//   state_sync   {changes, cursor}: apply every change, take the cursor;
//   state_update {version, fields, data}: deep-merge data, take the version.
// The gateway relays a notification only when it continues the device's
// cursor and carries every field it names; anything else reaches the device
// as a state_sync.  So a state_update that does not continue the cursor, or
// whose data lacks a field it names that payloads carry, is an anomaly.
//
// Usage: node bench/soak/devices.js URL USERS_FILE OUT_FILE
//   USERS_FILE: one user uuid per line.  JWT_SECRET from the environment.
// On SIGUSR2 it reads OUT_FILE.targets (uuid TAB version per line), waits
// (up to 60 s) until every device's cursor reached its user's version, then
// writes OUT_FILE (one JSON object per device: u, cursor, st, updates,
// syncs, anomalies, connects) and exits 0.
import { createRequire } from 'node:module';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const require = createRequire(new URL('../../gateway/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, usersFile, outFile] = process.argv.slice(2);
const secret = process.env.JWT_SECRET;
if (!url || !usersFile || !outFile || !secret) {
  console.error('usage: JWT_SECRET=... node bench/soak/devices.js URL USERS_FILE OUT_FILE');
  process.exit(2);
}
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

const devices = readFileSync(usersFile, 'utf8').split('\n').filter(Boolean).map((u) => {
  const d = { u, cursor: 0, st: {}, updates: 0, syncs: 0, anomalies: 0, connects: 0, notes: [] };
  const jwt = token(u);
  d.socket = io(url, {
    transports: ['websocket'],
    reconnectionDelay: 200,
    reconnectionDelayMax: 2000,
    auth: (cb) => cb({ token: jwt, cursor: d.cursor }),
  });
  d.socket.on('connect', () => { d.connects++; });
  d.socket.on('state_sync', (m) => {
    for (const c of m.changes) d.st[c.field] = c.value;
    d.cursor = m.cursor;
    d.syncs++;
  });
  d.socket.on('state_update', (m) => {
    const data = flatten(m.data || {});
    if (m.version !== d.cursor + 1 || !Array.isArray(m.fields) || m.fields.length === 0 ||
        m.fields.some((f) => !WITHHELD.has(f) && !(f in data)) || m.fields.some((f) => WITHHELD.has(f))) {
      d.anomalies++;
      if (d.notes.length < 3) d.notes.push({ cursor: d.cursor, version: m.version, fields: m.fields });
    }
    Object.assign(d.st, data);
    d.cursor = m.version;
    d.updates++;
  });
  d.socket.on('connect_error', () => {});
  return d;
});

process.on('SIGUSR2', async () => {
  const targets = new Map(readFileSync(`${outFile}.targets`, 'utf8').split('\n').filter(Boolean)
    .map((l) => { const [u, v] = l.split('\t'); return [u, Number(v)]; }));
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline && devices.some((d) => d.cursor < (targets.get(d.u) ?? 0))) {
    await new Promise((r) => setTimeout(r, 100));
  }
  writeFileSync(outFile, devices.map((d) => JSON.stringify({
    u: d.u, cursor: d.cursor, st: d.st, updates: d.updates, syncs: d.syncs,
    anomalies: d.anomalies, connects: d.connects, notes: d.notes,
  })).join('\n') + '\n');
  for (const d of devices) d.socket.close();
  process.exit(0);
});
console.log(`ready ${devices.length}`);
