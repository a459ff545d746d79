// Device: the per-device cursor state machine, with a fake sync and socket.
import { test } from 'node:test';
import { performance } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { Device, Devices, CAUSES, supersedes } from '../../lib/device.js';
import { historyLine } from '../../lib/validate.js';

const U = 'a1111111-1111-4111-8111-111111111111';
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const newStats = () => ({ relayed: 0, syncs: 0, syncFailures: 0, catchups: Object.fromEntries(CAUSES.map((c) => [c, 0])) });
const tick = () => new Promise((r) => setImmediate(r));
const change = (field, value, version) => ({ field, value, version, updated_at: 't' });
const toggle = (version, enabled = false) => ({ type: 'roasting_toggle', version, fields: ['roasting.enabled'], data: { roasting: { enabled } } });

// A device whose state_sync answers from `log` (field -> {value, version}),
// like the extension: every field changed after the cursor, and the newest
// version as the cursor.  `server.version` may run ahead of what a sync
// shows (`server.visible`).
function setup({ cursor = 0, failWith = [] } = {}) {
  const sent = [];
  const server = { version: 0, visible: Infinity, log: new Map(), calls: [] };
  const stats = newStats();
  const waits = [];
  const dev = new Device({
    userId: U,
    cursor,
    emit: (event, payload) => sent.push([event, payload]),
    disconnect: () => sent.push(['disconnect']),
    sync: async (from) => {
      server.calls.push(from);
      await tick();
      if (failWith.length) throw failWith.shift();
      const upto = Math.min(server.version, server.visible);
      const changes = [...server.log].filter(([, c]) => c.version > from && c.version <= upto)
        .map(([f, c]) => change(f, c.value, c.version)).sort((a, b) => a.version - b.version);
      return { changes, cursor: upto, lastSyncedAt: 't' };
    },
    stats,
    log: silent,
    retryCapMs: 1000,
    wait: async (ms) => { waits.push(ms); await tick(); },
  });
  const write = (fields) => {
    server.version++;
    for (const [f, value] of Object.entries(fields)) server.log.set(f, { value, version: server.version });
    return server.version;
  };
  return { dev, sent, server, stats, waits, write };
}

test('connect: the first sync is always answered, even with nothing new', async () => {
  const { dev, sent, write } = setup({ cursor: 0 });
  write({ 'roasting.enabled': true });
  await dev.sync();
  assert.deepEqual(sent, [['state_sync', { changes: [change('roasting.enabled', true, 1)], cursor: 1, history: null, reset: false }]]);
  const s2 = setup({ cursor: 1 });
  s2.write({ 'roasting.enabled': true });
  await s2.dev.sync();
  assert.deepEqual(s2.sent, [['state_sync', { changes: [], cursor: 1, history: null, reset: false }]]);
  // a later sync with nothing new says nothing
  await s2.dev.sync();
  assert.equal(s2.sent.length, 1);
});

test('the next version, complete, is relayed as it is', async () => {
  const { dev, sent, stats } = setup({ cursor: 4 });
  dev.answered = true;
  dev.notify({ ...toggle(5), user_id: U });
  assert.deepEqual(sent, [['state_update', { type: 'roasting_toggle', data: { roasting: { enabled: false } }, version: 5, fields: ['roasting.enabled'] }]]);
  assert.equal(dev.cursor, 5);
  assert.equal(stats.relayed, 1);
  dev.notify(toggle(5));          // again: on the device already
  dev.notify(toggle(3));
  assert.equal(sent.length, 1);
});

for (const [cause, make] of [
  ['gap', (v) => toggle(v + 2)],
  ['withheld', (v) => ({ type: 'usage_update', version: v + 1, fields: [], data: {} })],
  ['resync', (v) => ({ type: 'resync', version: v + 1 })],
  ['malformed', (v) => ({ type: 'roasting_toggle', version: v + 1, fields: 'roasting.enabled', data: {} })],
]) {
  test(`${cause}: a state_sync from the cursor instead, and the cursor moves only with it`, async () => {
    const { dev, sent, stats, server, write } = setup({ cursor: 0 });
    write({ 'roasting.enabled': true });
    await dev.sync();
    sent.length = 0;
    write({ 'usage.monthly_roasts_limit': 150, 'usage.remaining_roasts': 150 });
    if (cause === 'gap') write({ 'roasting.enabled': false });
    dev.notify(make(1));
    assert.equal(dev.cursor, 1, 'the cursor does not move on the announcement');
    await dev.running;
    assert.equal(stats.catchups[cause], 1);
    assert.equal(stats.relayed, 0);
    assert.deepEqual(server.calls.at(-1), 1);
    assert.equal(sent.length, 1);
    assert.equal(sent[0][0], 'state_sync');
    assert.equal(sent[0][1].cursor, server.version);
    assert.equal(dev.cursor, server.version);
  });
}

test('a payload that is not JSON (null) makes a sync, whatever the cursor', async () => {
  const { dev, stats, server } = setup({ cursor: 3 });
  server.version = 3;
  dev.notify(null);
  await dev.running;
  assert.equal(stats.catchups.malformed, 1);
  assert.deepEqual(server.calls, [3]);
});

test('notifications during a sync are covered by it, and it goes on until it shows them', async () => {
  const { dev, sent, server, write, waits } = setup({ cursor: 0 });
  write({ 'roasting.enabled': true });
  await dev.sync();
  sent.length = 0;
  server.visible = 1;           // the next sync's snapshot does not show v2, v3 yet
  write({ 'auth.name': 'withheld' });
  const p = dev.notify({ type: 'auth_update', version: 2, fields: ['auth.name'], data: {} });
  assert.equal(p, undefined);
  dev.notify(toggle(3));        // while syncing: not relayed, remembered
  write({ 'roasting.enabled': false });
  assert.equal(dev.want, 3);
  await tick();
  await tick();
  server.visible = Infinity;
  await dev.running;
  assert.deepEqual(sent.map(([e, m]) => [e, m.cursor, m.changes.map((c) => c.field)]), [['state_sync', 3, ['auth.name', 'roasting.enabled']]]);
  assert.ok(waits.length >= 1 && waits[0] === 10, `lag retries ${waits}`);
  assert.equal(dev.cursor, 3);
});

test('a sync that stays behind an announced version gives up after 20 tries', async () => {
  const { dev, server, waits, sent } = setup({ cursor: 1 });
  dev.answered = true;
  server.version = 1;           // version 3 is announced but never shows
  dev.notify(toggle(3));
  await dev.running;
  assert.equal(waits.length, 20);
  assert.deepEqual(waits.slice(0, 3), [10, 20, 30]);
  assert.equal(server.calls.length, 21);
  assert.deepEqual([dev.cursor, dev.want], [1, 1]);
  assert.deepEqual(sent, []);   // nothing new to say
});

test('a failed sync is retried with backoff; a refusal ends the connection', async () => {
  const transient = Object.assign(new Error('Connection terminated unexpectedly'), {});
  const s = setup({ cursor: 0, failWith: [transient, transient] });
  s.write({ 'roasting.enabled': true });
  await s.dev.sync();
  assert.equal(s.stats.syncFailures, 2);
  assert.equal(s.waits.length, 2);
  assert.ok(s.waits[0] >= 80 && s.waits[0] <= 120 && s.waits[1] >= 160 && s.waits[1] <= 240, `${s.waits}`);
  assert.equal(s.sent.at(-1)[0], 'state_sync');

  for (const [code, answer] of [['PT404', 'no_state'], ['42501', 'forbidden'], ['22023', 'bad_request']]) {
    const r = setup({ failWith: [Object.assign(new Error('no'), { code })] });
    await r.dev.sync();
    assert.deepEqual(r.sent, [['gateway_error', { code: answer }], ['disconnect']], code);
  }
});

// ---- histories (0.5.0) ----

// A server with histories, as the extension judges them: `line` is
// "<sysid>.<tli>", every write moves the WAL position `lsn`; failover(keep)
// promotes a standby that has the first `keep` versions only: a new
// timeline, whose versions after `keep` are handed out again.  A cursor's
// history is this server's when it is of the current line, or of an
// ancestor line with a WAL position at or before the fork; else reset:
// every field.  `behind` > 0: the next that many syncs answer PT503.
function historyServer() {
  const srv = {
    sysid: '7391234567890123456', tli: 1, lsn: 0x3000000, version: 0, log: new Map(), vlsn: {}, forks: new Map(), calls: [], behind: 0,
    get line() { return `${srv.sysid}.${srv.tli}`; },
    token() { return `${srv.line}.${srv.lsn.toString(16).toUpperCase()}`; },
    write(fields) {
      srv.version++;
      srv.lsn += 0x100;
      const at = { version: srv.version, lsn: srv.lsn };
      srv.vlsn[srv.version] = srv.lsn;
      for (const [f, value] of Object.entries(fields)) srv.log.set(f, { value, ...at });
      return { type: 'roasting_toggle', version: srv.version, fields: Object.keys(fields).map((f) => f), data: nest(fields), history: srv.line };
    },
    failover(keep) {
      // the new timeline starts where the standby's replay stopped: before the first lost commit
      const forkLsn = keep === srv.version ? srv.lsn : srv.vlsn[keep + 1] - 1;
      srv.forks.set(srv.line, forkLsn);
      srv.tli++;
      srv.version = keep;
      srv.lsn = forkLsn + 0x10;
      for (const [f, c] of [...srv.log]) if (c.version > keep) srv.log.set(f, { value: `lost-${f}`, version: keep, lsn: forkLsn });
    },
    sync(from, history) {
      srv.calls.push([from, history]);
      if (srv.behind > 0) {
        srv.behind--;
        throw Object.assign(new Error('the server has not replayed the cursor yet'), { code: 'PT503' });
      }
      let same = history === null ? from <= srv.version : false;
      if (history !== null) {
        const [sysid, tli, lsn] = history.split('.');
        const line = `${sysid}.${tli}`;
        if (line === srv.line) same = from <= srv.version;
        else if (srv.forks.has(line) && lsn !== undefined && parseInt(lsn, 16) <= srv.forks.get(line)) same = true;
      }
      const since = same ? from : 0;
      const changes = [...srv.log].filter(([, c]) => c.version > since)
        .map(([f, c]) => change(f, c.value, c.version)).sort((a, b) => a.version - b.version);
      return { changes, cursor: srv.version, history: srv.token(), reset: !same, lastSyncedAt: 't' };
    },
  };
  return srv;
}
const nest = (fields) => {
  const out = {};
  for (const [f, v] of Object.entries(fields)) {
    const [sec, k] = f.split('.');
    (out[sec] ??= {})[k] = v;
  }
  return out;
};

function historyDevice(srv, { cursor = 0, history = null } = {}) {
  const sent = [];
  const stats = newStats();
  const waits = [];
  const failures = [];
  const dev = new Device({
    userId: U,
    cursor,
    history,
    emit: (event, payload) => sent.push([event, payload]),
    disconnect: () => sent.push(['disconnect']),
    sync: async (from, h) => {
      await tick();
      return srv.sync(from, h);
    },
    stats,
    log: silent,
    metrics: { ...noopMetrics, syncFailure: (code) => failures.push(code), catchup: (cause) => failures.push(`catchup:${cause}`) },
    wait: async (ms) => { waits.push(ms); await tick(); },
  });
  return { dev, sent, stats, waits, failures };
}
const noopMetrics = { stateUpdate() {}, catchup() {}, sync() {}, syncFailure() {}, delivered() {} };

test('history: the device syncs with its history and holds the answer\'s', async () => {
  const srv = historyServer();
  srv.write({ 'roasting.enabled': true });
  const h = srv.token();
  srv.write({ 'roasting.roast_level': 4 });
  const { dev, sent } = historyDevice(srv, { cursor: 1, history: h });
  await dev.sync('connect');
  assert.deepEqual(srv.calls, [[1, h]]);
  assert.deepEqual(sent, [['state_sync', { changes: [change('roasting.roast_level', 4, 2)], cursor: 2, history: srv.token(), reset: false }]]);
  assert.equal(dev.history, srv.token());
  // a bare cursor syncs with null
  const b = historyDevice(srv, { cursor: 2 });
  await b.dev.sync('connect');
  assert.deepEqual(srv.calls.at(-1), [2, null]);
  assert.equal(b.dev.history, srv.token());
});

test('history: a relayed state_update carries the payload\'s history, which the device then holds', async () => {
  const srv = historyServer();
  srv.write({ 'roasting.enabled': true });
  const { dev, sent } = historyDevice(srv, { cursor: 1, history: srv.token() });
  await dev.sync('connect');
  sent.length = 0;
  const m = srv.write({ 'roasting.enabled': false });
  dev.notify(m);
  assert.deepEqual(sent, [['state_update', { type: m.type, data: m.data, version: 2, fields: ['roasting.enabled'], history: srv.line }]]);
  assert.equal(dev.history, srv.line, 'without a WAL position: the payload has none');
  // one without a history (before 0.5.0): the device's loses its WAL position
  const d2 = historyDevice(srv, { cursor: 2, history: srv.token() });
  d2.dev.answered = true;
  d2.dev.notify({ ...srv.write({ 'roasting.enabled': true }), history: undefined });
  assert.equal(d2.sent[0][1].history, undefined);
  assert.equal(d2.dev.history, srv.line);
});

test('history: a failover that reissued the device\'s versions: the notification is not relayed nor dropped, the device is reset', async () => {
  const srv = historyServer();
  for (let i = 1; i <= 5; i++) srv.write({ 'roasting.roast_level': i });
  const { dev, sent, stats, failures } = historyDevice(srv, { cursor: 5, history: srv.token() });
  await dev.sync('connect');
  sent.length = 0;
  failures.length = 0;
  srv.failover(3);              // versions 4 and 5 are lost
  const m4 = srv.write({ 'roasting.enabled': false });   // another 4
  assert.equal(m4.version, 4);
  dev.notify(m4);               // at or below the cursor, but of another line
  await dev.running;
  assert.equal(stats.catchups.history, 1);
  assert.equal(stats.relayed, 0);
  assert.deepEqual(failures, ['catchup:history']);
  assert.equal(sent.length, 1);
  const [event, msg] = sent[0];
  assert.equal(event, 'state_sync');
  assert.equal(msg.reset, true);
  assert.equal(msg.cursor, 4);
  assert.equal(msg.history, srv.token());
  assert.deepEqual(msg.changes.map((c) => c.field).sort(), ['roasting.enabled', 'roasting.roast_level'], 'every field');
  assert.deepEqual([dev.cursor, dev.history], [4, srv.token()]);
  // the next one of the new line is relayed
  dev.notify(srv.write({ 'roasting.enabled': true }));
  assert.deepEqual(sent.at(-1).slice(0, 1), ['state_update']);
  assert.equal(dev.cursor, 5);
});

test('history: a failover that kept the device\'s cursor: no reset, and the new history is sent even with nothing new', async () => {
  const srv = historyServer();
  srv.write({ 'roasting.roast_level': 1 });
  const { dev, sent } = historyDevice(srv, { cursor: 1, history: srv.token() });
  await dev.sync('connect');
  sent.length = 0;
  srv.write({ 'roasting.roast_level': 2 });
  srv.failover(2);              // every version kept, a new timeline
  dev.sync('reconnect');        // the LISTEN connection came back
  await dev.running;
  assert.deepEqual(sent, [['state_sync', { changes: [change('roasting.roast_level', 2, 2)], cursor: 2, history: srv.token(), reset: false }]]);
  sent.length = 0;
  srv.failover(2);
  await dev.sync('reconnect');
  assert.deepEqual(sent, [['state_sync', { changes: [], cursor: 2, history: srv.token(), reset: false }]], 'a new line is news');
  sent.length = 0;
  srv.write({ 'roasting.roast_level': 3 });
  srv.lsn += 0x1000;
  dev.cursor = 3;               // as if relayed: same line, with a WAL position
  await dev.sync('reconnect');
  assert.deepEqual(sent, [], 'only a later WAL position on the same line: nothing to say');
  dev.history = historyLine(dev.history);
  await dev.sync('reconnect');
  assert.deepEqual(sent, [], 'nor where there was none: a relay\'s history still holds for its cursor');
  assert.equal(dev.history, historyLine(srv.token()));
});

test('history: an announcement of another line during a sync makes it go on until it reaches that line', async () => {
  const srv = historyServer();
  srv.write({ 'roasting.roast_level': 1 });
  srv.write({ 'roasting.roast_level': 2 });
  const { dev, sent } = historyDevice(srv, { cursor: 2, history: srv.token() });
  await dev.sync('connect');
  sent.length = 0;
  const running = dev.sync('reconnect');   // starts on the old line
  srv.failover(1);
  const m = srv.write({ 'roasting.enabled': false });
  dev.notify(m);
  assert.equal(dev.wantLine, srv.line);
  await running;
  await dev.running;
  assert.equal(dev.history.startsWith(`${srv.line}.`), true);
  assert.equal(dev.cursor, 2);
  assert.equal(sent.at(-1)[1].reset, true);
});

test('history: an announcement of a lost line is dropped by the first sync on the line that replaced it, not waited for', async () => {
  const srv = historyServer();
  for (let i = 1; i <= 3; i++) srv.write({ 'roasting.roast_level': i });
  const { dev, sent } = historyDevice(srv, { cursor: 3, history: srv.token() });
  await dev.sync('connect');
  sent.length = 0;
  const oldLine = srv.line;
  const m4 = srv.write({ 'persona.identity': 'x' });     // announced, withheld: a catch-up
  delete m4.data.persona;
  srv.failover(3);              // ... and lost
  dev.notify(m4);
  assert.equal(dev.wantLine, oldLine);
  await dev.running;
  assert.equal(srv.calls.length, 2, `one catch-up, not ${srv.calls.length - 1}`);
  assert.deepEqual([dev.cursor, dev.want, dev.wantLine, dev.behind()], [3, 3, srv.line, false]);
  // its cursor survived the fork: no reset, the new line is news
  assert.deepEqual(sent, [['state_sync', { changes: [], cursor: 3, history: srv.token(), reset: false }]]);
  assert.equal(dev.history, srv.token());
  // a late announcement of the lost line: one sync, then nothing to wait for
  dev.notify({ ...m4, version: 5 });
  await dev.running;
  assert.equal(srv.calls.length, 3);
  assert.equal(dev.behind(), false);
});

test('history: supersedes() orders lines of one cluster by timeline; another cluster\'s answer wins', () => {
  assert.equal(supersedes('7.2', '7.1'), true);
  assert.equal(supersedes('7.1', '7.2'), false);
  assert.equal(supersedes('7.10', '7.9'), true);
  assert.equal(supersedes('8.1', '7.3'), true);
});

test('PT503 (a standby behind the device\'s cursor): retried with backoff, counted, never a refusal nor "no changes"', async () => {
  const srv = historyServer();
  srv.write({ 'roasting.roast_level': 1 });
  const { dev, sent, waits, failures, stats } = historyDevice(srv, { cursor: 1, history: srv.token() });
  srv.behind = 3;
  await dev.sync('connect');
  assert.deepEqual(failures, ['catchup:connect', 'PT503', 'PT503', 'PT503']);
  assert.equal(stats.syncFailures, 3);
  assert.equal(waits.length, 3);
  assert.ok(waits[0] >= 80 && waits[0] <= 120 && waits[2] >= 320 && waits[2] <= 480, `${waits}`);
  assert.deepEqual(sent, [['state_sync', { changes: [], cursor: 1, history: srv.token(), reset: false }]]);
});

test('a closed device does nothing more', async () => {
  const { dev, sent, server } = setup({ cursor: 1 });
  dev.close();
  dev.notify(toggle(2));
  dev.notify(toggle(5));
  await dev.sync();
  dev.refuse('forbidden');
  assert.deepEqual(sent, []);
  assert.deepEqual(server.calls, []);
});

test('Devices routes by user and counts rooms', () => {
  const devices = new Devices();
  const got = [];
  const fake = (userId, name) => ({ userId, notify: (m) => got.push([name, m.version]), sync: () => got.push([name, 'sync']) });
  const a1 = fake(U, 'a1');
  const a2 = fake(U, 'a2');
  const b1 = fake('b2222222-2222-4222-8222-222222222222', 'b1');
  devices.add(a1);
  devices.add(a2);
  devices.add(b1);
  assert.deepEqual([devices.users, devices.size], [2, 3]);
  devices.notify(U, { version: 7 });
  devices.notify('c3333333-3333-4333-8333-333333333333', { version: 1 });
  assert.deepEqual(got, [['a1', 7], ['a2', 7]]);
  assert.equal(devices.syncAll(), 3);
  assert.equal(devices.remove(a1), false);
  assert.equal(devices.remove(a1), false);
  assert.equal(devices.remove(a2), true);
  assert.deepEqual([devices.users, devices.size], [1, 1]);
});

test('a broadcast (a shared change): every device catches up; only a device it moved is sent anything, timed from the broadcast', async () => {
  const delivered = [];
  const catchups = [];
  const metrics = { ...(await import('../../lib/metrics.js')).noMetrics,
    catchup: (c) => catchups.push(c), delivered: (e, s) => delivered.push([e, s]) };
  const moved = setup({ cursor: 0 });
  moved.write({ 'roasting.enabled': true });
  await moved.dev.sync('connect');
  const still = setup({ cursor: 0 });
  still.write({ 'roasting.enabled': true });
  await still.dev.sync('connect');
  moved.sent.length = 0;
  still.sent.length = 0;
  moved.dev.metrics = metrics;
  still.dev.metrics = metrics;
  const devices = new Devices();
  devices.add(moved.dev);
  devices.add(still.dev);
  // the extension settles the moved user's change in the user's own row,
  // at the first sync after the broadcast
  moved.write({ 'usage.monthly_roasts_limit': 150, 'usage.remaining_roasts': 150 });
  const at = performance.now();
  assert.equal(devices.syncAll('broadcast', at), 2);
  await moved.dev.running;
  await still.dev.running;
  assert.deepEqual(catchups, ['broadcast', 'broadcast']);
  assert.deepEqual(moved.sent, [['state_sync', { changes: [change('usage.monthly_roasts_limit', 150, 2), change('usage.remaining_roasts', 150, 2)],
    cursor: 2, history: null, reset: false }]]);
  assert.deepEqual(still.sent, [], 'nothing new for the other: nothing sent');
  assert.deepEqual(delivered.map(([e]) => e), ['state_sync'], 'the delivery is timed from the broadcast');
  assert.ok(delivered[0][1] >= 0);
  assert.equal(still.dev.since, null);
  // a second broadcast while a sync runs: the device runs once more, not once per broadcast
  moved.write({ 'organization.name': 'Renamed' });
  devices.syncAll('broadcast', performance.now());
  devices.syncAll('broadcast', performance.now());
  devices.syncAll('broadcast', performance.now());
  await moved.dev.running;
  assert.ok(moved.server.calls.length <= 4, `${moved.server.calls}`);
  assert.equal(moved.dev.cursor, 3);
});
