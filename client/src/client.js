// createStateClient: the device's copy of a user's global state.
//
// What the client holds:
//   server    - the server's state as far as this device knows it: a value
//               and a version per field, the cursor (every version up to
//               the cursor is in it, none after) and the history the
//               cursor belongs to (an opaque token from the server, 0.5.0;
//               null when the server gave none);
//   queue     - local writes not yet confirmed, in order; the first may be
//               in flight.  One write is sent at a time.
//   awaiting  - confirmed writes whose version the cursor has not reached
//               yet (the server has them, this device's copy not yet);
//   conflicts - fields where the user's value lost to someone else's.
// What it shows (`state`): server + awaiting + queue, in that order, with
// the local-only `ui` section.
//
// Rules (README.md, "How writes work"):
//   - A write is sent with base_version = the cursor at its first send and
//     retried after a network failure with the same mutation_id and base
//     (the server applies it at most once).  Until then, server changes to
//     its fields that the user had not seen are conflicts found here; after
//     that, the server finds them (PT409).
//   - A write waits while a confirmed write to one of its fields has a
//     version above the cursor, so that it is never based on a version
//     older than the device's own write (it would conflict with itself).
//   - Persona text never goes to storage: writes of it are kept apart and
//     in memory only.
import { FIELDS, UI_DEFAULTS, covers, flatten, isField, isPersonaText, isUserField, nest, same } from './fields.js';
import { StateError, classify, conflictDetail } from './errors.js';
import { memoryStorage } from './storage.js';

// "<system id>.<timeline>" of a history token: two tokens of one line
// number the same versions.  The client compares lines only (a WAL
// position at the end moves with every read); it never parses further.
const historyLine = (h) => {
  if (typeof h !== 'string') return null;
  const dot = h.indexOf('.', h.indexOf('.') + 1);
  return dot < 0 ? h : h.slice(0, dot);
};
const sameLine = (a, b) => historyLine(a) === historyLine(b);

const FORMAT = 1;

// Shown by state_full, never by state_sync: it never changes.
const UNVERSIONED = ['auth.userId'];

const noop = () => {};
const handled = (p) => {
  p.catch(noop);
  return p;
};

function deferred() {
  let resolve;
  let reject;
  const promise = handled(new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  }));
  return { promise, resolve, reject };
}

// crypto.randomUUID, or the same from getRandomValues where randomUUID is
// missing (browsers outside secure contexts).
function randomUUID() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Reuse the previous object of each section whose values did not change,
// so that selectors (React, Zustand) see stable references.
function share(prev, next) {
  if (!prev) return next;
  let changed = false;
  const out = {};
  for (const k of Object.keys(next)) {
    const a = prev[k];
    const b = next[k];
    if (a === b || (a && b && typeof a === 'object' && typeof b === 'object'
      && Object.keys(a).length === Object.keys(b).length && Object.keys(b).every((x) => same(a[x], b[x])))) {
      out[k] = a;
    } else {
      out[k] = b;
      changed = true;
    }
  }
  return changed || Object.keys(prev).length !== Object.keys(next).length ? out : prev;
}

export function createStateClient({
  transport,
  storage = memoryStorage(),
  key = 'roastr_state',
  retryMinMs = 250,
  retryMaxMs = 10000,
  settleDelayMs,
  uuid = randomUUID,
  now = () => new Date(),
  timers = globalThis,
  random = Math.random,
} = {}) {
  if (!transport || typeof transport.start !== 'function') throw new TypeError('createStateClient: a transport is required');

  // ---- what the client holds ----
  const server = { values: {}, versions: {}, cursor: 0, history: null, lastSyncedAt: null };
  let hydrated = false;      // a sync from 0 (or a reset) was applied in this session: persona text is known
  let hydrateFromCursor = false; // next hydration pull asks from the cursor (tells "server behind" from "stale")
  let queue = [];
  let awaiting = [];
  let ownVersions = {};      // field -> version of this device's latest confirmed write of it
  let conflicts = [];
  let ui = { ...UI_DEFAULTS };
  let link = { online: false, writable: false, via: null };
  let inFlight = null;
  let pulling = false;
  let pullAgain = false;
  let loaded = false;
  let closed = false;
  let lastError = null;
  let retryTimer = null;
  let retryAttempts = 0;
  let pullTimer = null;
  let pullFailures = 0;
  let fullTimer = null;
  let fullFailures = 0;
  let fullPending = false;
  let settleTimer = null;
  let waitForSync = false;   // a write waits for the sync that corrects the cursor
  let state = null;
  let status = null;
  let unsavedKey = '';
  const listeners = new Set();
  const events = new Map();

  const emit = (name, arg) => {
    for (const fn of events.get(name) ?? []) {
      try {
        fn(arg);
      } catch (err) {
        queueMicrotask(() => { throw err; });
      }
    }
  };

  // ---- writes ----
  function newWrite(changes, { baseCursor, minBase = 0, memoryOnly, id = uuid(), d = deferred(), carried = [] }) {
    return { id, changes, baseCursor, minBase, base: null, sent: false, memoryOnly, d, carried, rebases: 0 };
  }
  const fieldsOf = (w) => Object.keys(w.changes);

  // ---- what is shown ----
  function compute() {
    const values = { ...server.values };
    // An open conflict shows the server's value, the newest known: a PT409
    // tells it before the sync that brings it.
    for (const c of conflicts) {
      if (c.serverKnown && c.serverVersion > (server.versions[c.field] ?? 0)) values[c.field] = c.server;
    }
    for (const a of awaiting) Object.assign(values, a.changes);
    for (const w of queue) Object.assign(values, w.changes);
    const next = nest(values);
    next.ui = ui;
    next._meta = { version: server.cursor, lastSyncedAt: server.lastSyncedAt, conflictResolution: conflicts.length > 0 ? 'pending' : 'none' };
    state = share(state, next);
    const unsaved = unsavedPersona();
    const st = {
      state: !link.online ? 'offline'
        : (pulling || queue.length > 0 || awaiting.length > 0 || !hydrated) ? 'syncing' : 'online',
      online: link.online,
      via: link.via,
      pending: queue.length,
      conflicts: conflicts.length,
      lastSyncedAt: server.lastSyncedAt,
      cursor: server.cursor,
      ready: hydrated,
      unsavedPersona: unsaved,
      error: lastError,
    };
    status = share(status, st);
    const k = unsaved.join(',');
    if (k !== unsavedKey) {
      unsavedKey = k;
      emit('unsavedPersona', unsaved);
    }
  }

  function unsavedPersona() {
    const s = new Set();
    for (const w of queue) if (w.memoryOnly) for (const f of fieldsOf(w)) s.add(f);
    for (const c of conflicts) if (isPersonaText(c.field)) s.add(c.field);
    return FIELDS.filter((f) => s.has(f));
  }

  let lastState = null;
  let lastStatus = null;
  function commit() {
    compute();
    persist();
    if (state !== lastState || status !== lastStatus) {
      lastState = state;
      lastStatus = status;
      for (const fn of [...listeners]) {
        try {
          fn(state, status);
        } catch (err) {
          queueMicrotask(() => { throw err; });
        }
      }
      emit('change', { state, status });
    }
  }

  // ---- storage ----
  let saving = false;
  let dirty = false;
  let saved = Promise.resolve();
  function snapshot() {
    const strip = (obj) => Object.fromEntries(Object.entries(obj).filter(([f]) => !isPersonaText(f)));
    const w2 = (w) => ({ id: w.id, changes: w.changes, baseCursor: w.baseCursor, minBase: w.minBase, base: w.base, sent: w.sent });
    return {
      format: FORMAT,
      cursor: server.cursor,
      history: server.history,
      lastSyncedAt: server.lastSyncedAt,
      values: strip(server.values),
      versions: strip(server.versions),
      queue: queue.filter((w) => !w.memoryOnly).map(w2),
      awaiting: awaiting.filter((a) => !a.memoryOnly).map((a) => ({ id: a.id, changes: a.changes, version: a.version, base: a.base })),
      ownVersions,
      conflicts: conflicts.filter((c) => !isPersonaText(c.field)),
      ui,
    };
  }
  function persist() {
    if (!loaded) return;
    dirty = true;
    if (saving) return;
    saving = true;
    saved = (async () => {
      while (dirty) {
        dirty = false;
        try {
          await storage.set(key, JSON.stringify(snapshot()));
        } catch (err) {
          emit('error', { code: 'STORAGE', message: `could not save: ${err.message}`, error: err });
        }
      }
      saving = false;
    })();
  }

  async function flushSaves() {
    while (saving) await saved;
  }

  async function load() {
    let snap = null;
    try {
      const raw = await storage.get(key);
      snap = raw ? JSON.parse(raw) : null;
    } catch (err) {
      emit('error', { code: 'STORAGE', message: `could not load: ${err.message}`, error: err });
    }
    if (snap && snap.format === FORMAT) {
      Object.assign(server.values, snap.values);
      Object.assign(server.versions, snap.versions);
      server.cursor = snap.cursor;
      server.history = typeof snap.history === 'string' ? snap.history : null;
      server.lastSyncedAt = snap.lastSyncedAt;
      const restored = (snap.queue ?? []).map((w) => Object.assign(
        newWrite(w.changes, { baseCursor: w.baseCursor, minBase: w.minBase, memoryOnly: false, id: w.id }),
        { base: w.base, sent: w.sent }));
      for (const w of queue) w.baseCursor = Math.max(w.baseCursor, server.cursor); // written before the load
      queue = restored.concat(queue);
      awaiting = snap.awaiting ?? [];
      ownVersions = snap.ownVersions ?? {};
      conflicts = (snap.conflicts ?? []).concat(conflicts.filter((c) => !(snap.conflicts ?? []).some((x) => x.field === c.field)));
      ui = { ...UI_DEFAULTS, ...snap.ui, ...uiBeforeLoad };
    }
    loaded = true;
    commit();
  }
  let uiBeforeLoad = {};

  // ---- server changes ----
  // then: run before the writes are looked at again (a new history line).
  function applyServer(changes, cursor, lastSyncedAt, then = null) {
    for (const c of changes) {
      if (!c || !isField(c.field)) continue;
      server.values[c.field] = c.value;
      server.versions[c.field] = Number.isSafeInteger(c.version) ? c.version : cursor;
    }
    server.cursor = Math.max(server.cursor, cursor);
    server.lastSyncedAt = lastSyncedAt ?? now().toISOString();
    then?.();
    afterServerChange();
  }

  function afterServerChange() {
    awaiting = awaiting.filter((a) => a.version > server.cursor);
    detectConflicts();
    refreshConflicts();
    commit();
    scheduleSettle();
    pump();
    readUnversioned();
  }

  // A field state_full shows but no state_sync reports (auth.userId: it
  // never changes, so it has no version) is read once, after a whole sync,
  // from the transport's state_full.  It is kept (and stored) like the rest.
  function readUnversioned() {
    if (!hydrated || fullPending || fullTimer || closed || !link.online || typeof transport.full !== 'function') return;
    const missing = FIELDS.filter((f) => !Object.hasOwn(server.values, f));
    if (missing.length === 0) return;
    fullPending = true;
    transport.full().then((data) => {
      fullPending = false;
      fullFailures = 0;
      if (closed) return;
      for (const [f, value] of flatten(data)) if (missing.includes(f) && !Object.hasOwn(server.values, f)) server.values[f] = value;
      commit();
    }, () => {
      fullPending = false;
      if (closed) return;
      fullTimer = timers.setTimeout(() => {
        fullTimer = null;
        readUnversioned();
      }, backoff(++fullFailures));
    });
  }

  // A notification names every field whose value changed at its version,
  // derived ones included (0.4.0); it is merged when it is the next version
  // and carries every value it names.  A gap, or a field named without its
  // value (persona text, personal values, the organization), is a pull.
  function onUpdate(msg) {
    const { data, version, fields, history } = msg ?? {};
    // Of another history than the cursor's (a failover or a restore under
    // this device): its version number may have been handed out again, so
    // "at or below the cursor" and "cursor + 1" mean nothing; pull (with
    // the history, the server tells).
    if (typeof history === 'string' && server.history !== null && !sameLine(history, server.history)) {
      requestSync();
      return;
    }
    if (!Number.isSafeInteger(version) || version <= server.cursor) return;
    if (version !== server.cursor + 1 || !covers(data, fields)) {
      requestSync();
      return;
    }
    // A notification's history has no WAL position: the cursor is now of
    // that line (one held from before no longer bounds what it saw).
    server.history = typeof history === 'string' ? history : historyLine(server.history);
    applyServer(flatten(data).map(([field, value]) => ({ field, value, version })), version, null);
  }

  // msg: {changes, cursor, history, reset, lastSyncedAt} and, from the
  // transport, `since` (the cursor it answers) and `fromHistory` (the
  // history sent with it), when known.
  function onSync(msg) {
    const { changes, cursor, reset, since, lastSyncedAt, fromHistory } = msg ?? {};
    if (!Array.isArray(changes) || !Number.isSafeInteger(cursor)) return;
    waitForSync = false;
    const history = typeof msg.history === 'string' ? msg.history : null;
    let onLine = null;
    if (reset === true || (Number.isSafeInteger(since) && cursor < since)) {
      doReset(changes, cursor, lastSyncedAt, history);
      return;
    }
    if (history !== null && server.history !== null && !sameLine(history, server.history)) {
      // The server is on another line than the cursor held here.  From 0
      // it is every field: a reset.  From a cursor, the server found that
      // cursor of that history in its own, and nothing more: it answers
      // this device only if that is exactly the cursor and history held
      // here (versions this device got since, of the old line, may be
      // lost); else pull again, with them.
      if (since === 0) {
        doReset(changes, cursor, lastSyncedAt, history);
        return;
      }
      if (fromHistory !== server.history || since !== server.cursor) {
        requestSync();
        return;
      }
      // Found: the versions up to the cursor are common to both lines.
      // Above it, this device's confirmed writes were of the old line,
      // which the new one may lack: judged again and sent again (as at a
      // reset), and the versions of its own writes above it forgotten.
      const before = { values: { ...server.values }, versions: { ...server.versions }, own: ownVersions, cursor: server.cursor };
      onLine = () => {
        ownVersions = Object.fromEntries(Object.entries(before.own).filter(([, v]) => v <= before.cursor));
        rejudge(new Set(requeueAwaiting()), before, server.cursor);
      };
    }
    if (Number.isSafeInteger(since) && since > server.cursor) {
      requestSync();         // it starts after versions this device never saw
      return;
    }
    if (cursor < server.cursor) {
      if (since === 0 && !hydrated) hydrateFromCursor = true;
      return;                // older than what is here
    }
    if (since === 0) hydrated = true;
    server.history = history;
    applyServer([...changes].sort((a, b) => (a.version ?? 0) - (b.version ?? 0)), cursor, lastSyncedAt, onLine);
  }

  // The server's history changed (failover, restore) and the cursor held
  // here is not in it (reset: true): its state (every field) replaces the
  // one held here.  What this device wrote that the new history may lack
  // (confirmed writes the cursor had not reached, every unconfirmed write)
  // cannot keep its base: that version number may now name another state.
  // So each is judged again against the new state, as if the user had just
  // written it having seen the state held before the reset: a field whose
  // new value is neither the one the user saw nor the write's own is a
  // conflict (the user decides, as for any conflict); the rest is sent
  // (again) on the new cursor, with its mutation_id, so a write the new
  // history kept is answered "already used" and never applied twice.  The
  // write in flight keeps its request; if it fails, it is judged then.
  function doReset(changes, cursor, lastSyncedAt, history = null) {
    const before = { values: server.values, versions: server.versions, own: ownVersions };
    server.values = {};
    server.versions = {};
    for (const c of changes) {
      if (!c || !isField(c.field)) continue;
      server.values[c.field] = c.value;
      server.versions[c.field] = Number.isSafeInteger(c.version) ? c.version : cursor;
    }
    // auth.userId has no version, so no sync reports it; the user is the
    // same on every history line: keep what was read.
    for (const f of UNVERSIONED) if (Object.hasOwn(before.values, f) && !Object.hasOwn(server.values, f)) server.values[f] = before.values[f];
    server.cursor = cursor;
    server.history = history;
    server.lastSyncedAt = lastSyncedAt ?? now().toISOString();
    hydrated = true;
    ownVersions = {};
    conflicts = conflicts.map((c) => ({ ...c, serverVersion: Math.min(c.serverVersion, cursor) }));
    emit('reset', { cursor, history });
    requeueAwaiting();
    rejudge(new Set(queue), before, cursor);
    afterServerChange();
  }

  // Confirmed writes the cursor has not reached go back into the queue,
  // after the write in flight, as sent with their base; returns them.
  function requeueAwaiting() {
    const again = awaiting.map((a) => Object.assign(
      newWrite(a.changes, { baseCursor: a.base ?? server.cursor, memoryOnly: a.memoryOnly, id: a.id }), { base: a.base, sent: true }));
    awaiting = [];
    const head = inFlight ? [queue[0]] : [];
    queue = head.concat(again, queue.slice(head.length));
    return again;
  }

  // Judge the queued writes in `writes` again against the server state held
  // now, as if written by a user who saw `before` ({values, versions, own}
  // held before): a field whose value now is neither the write's nor the
  // one the user saw (at or below the write's base, or this device's own)
  // is a conflict.  Only the first write of a field is judged: later ones
  // build on it.  Each judged write is sent again on `cursor`; the one in
  // flight is judged when it fails (judgeAfterReset).
  function rejudge(writes, before, cursor) {
    const judged = new Set();
    const stale = new Map();
    for (const w of queue) {
      if (!writes.has(w)) {
        for (const f of fieldsOf(w)) judged.add(f);
        continue;
      }
      const seenAt = w.sent ? w.base : w.baseCursor;
      const fs = [];
      for (const f of fieldsOf(w)) {
        if (judged.has(f)) continue;
        judged.add(f);
        if (same(server.values[f], w.changes[f])) continue;
        const v = before.versions[f];
        const seen = Object.hasOwn(before.values, f) && v !== undefined && (v <= seenAt || before.own[f] === v);
        if (seen && same(server.values[f], before.values[f])) continue;
        fs.push(f);
      }
      stale.set(w, fs);
    }
    for (const [w, fs] of stale) {
      if (w === inFlight) w.afterReset = fs;
      else Object.assign(w, { sent: false, base: null, baseCursor: cursor, minBase: 0 });
    }
    for (const [w, fs] of stale) {
      if (w === inFlight) continue;
      for (const f of fs) if (f in w.changes) raiseConflict(f, queue.indexOf(w), w.changes[f], server.values[f], server.versions[f] ?? cursor, true);
    }
  }

  // The write that was in flight at a reset, failed since: it is sent
  // again on the new cursor, less the fields the reset made conflicts.
  function judgeAfterReset(w) {
    const fs = w.afterReset;
    delete w.afterReset;
    Object.assign(w, { sent: false, base: null, baseCursor: server.cursor, minBase: 0 });
    for (const f of fs) {
      if (f in w.changes && !same(server.values[f], w.changes[f])) {
        raiseConflict(f, queue.indexOf(w), w.changes[f], server.values[f], server.versions[f] ?? server.cursor, true);
      }
    }
    dropEmpty();
  }

  // Unsent writes: a server change to one of their fields that the user had
  // not seen when writing, not made by this device, to another value, is a
  // conflict.  A field an earlier write of this device also sets is left to
  // that write (the server judges it, or the sync shows it as this device's).
  function detectConflicts() {
    for (let i = 0; i < queue.length; i++) {
      const w = queue[i];
      if (w.sent) continue;
      for (const f of fieldsOf(w)) {
        const v = server.versions[f];
        if (v === undefined || v <= w.baseCursor || ownVersions[f] === v) continue;
        if (queue.slice(0, i).some((e) => f in e.changes) || awaiting.some((a) => f in a.changes)) continue;
        if (same(server.values[f], w.changes[f])) continue;
        raiseConflict(f, i, w.changes[f], server.values[f], v, true);
      }
    }
    dropEmpty();
  }

  // A conflict on field f: the user's latest value for it (the unsent
  // writes from index `from` on lose it) against the server's.
  function raiseConflict(f, from, mine, serverValue, serverVersion, known) {
    for (let j = from; j < queue.length; j++) {
      const u = queue[j];
      if (u.sent || !(f in u.changes)) continue;
      mine = u.changes[f];
      delete u.changes[f];
      u.lost = (u.lost ?? []).concat(f);
    }
    const old = conflicts.find((c) => c.field === f);
    const c = { id: old?.id ?? uuid(), field: f, mine, server: serverValue, serverVersion, serverKnown: known };
    conflicts = conflicts.filter((x) => x !== old).concat(c);
    emit('conflict', c);
    return c;
  }

  function dropEmpty() {
    queue = queue.filter((w) => {
      if (w === inFlight || fieldsOf(w).length > 0) return true;
      const err = new StateError('PT409', `conflict on ${(w.lost ?? []).join(', ')}`, { field: w.lost?.[0] ?? null });
      err.conflicts = conflicts.filter((c) => (w.lost ?? []).includes(c.field));
      w.d.reject(err);
      return false;
    });
  }

  // Conflicts follow the server: its newer value replaces the one shown;
  // one that now equals the user's value has nothing left to decide.
  function refreshConflicts() {
    conflicts = conflicts.flatMap((c) => {
      const v = server.versions[c.field];
      if (v === undefined || server.cursor < c.serverVersion) return [c];
      if (v < c.serverVersion && c.serverKnown) return [c];
      const n = { ...c, server: server.values[c.field], serverVersion: Math.max(v, c.serverVersion), serverKnown: true };
      if (same(n.server, n.mine)) {
        emit('resolved', { conflict: n, choice: 'server' });
        return [];
      }
      return [same(n.server, c.server) && n.serverVersion === c.serverVersion && c.serverKnown ? c : n];
    });
  }

  // ---- pulling syncs ----
  function requestSync() {
    if (closed || !loaded) return;
    if (pulling) {
      pullAgain = true;
      return;
    }
    if (!link.online || pullTimer) return;
    pulling = true;
    pullAgain = false;
    const since = hydrated || hydrateFromCursor ? server.cursor : 0;
    const fromHistory = since > 0 ? server.history : null;
    hydrateFromCursor = false;
    commit();
    transport.sync(since, fromHistory).then((res) => {
      pulling = false;
      pullFailures = 0;
      waitForSync = false;
      if (!retryTimer) lastError = null;
      if (closed) return;
      onSync({ ...res, since, fromHistory });
      if (pullAgain || !hydrated) requestSync();
      commit();
      pump();
    }, (err) => {
      pulling = false;
      if (closed) return;
      lastError = { code: err?.code ?? 'NETWORK', message: err?.message ?? String(err) };
      pullFailures++;
      pullTimer = timers.setTimeout(() => {
        pullTimer = null;
        requestSync();
      }, backoff(pullFailures));
      commit();
    });
  }

  // A confirmed write whose version the cursor has not reached: the
  // notification usually brings it; if not, pull.
  function scheduleSettle() {
    if (settleTimer || !awaiting.some((a) => a.version > server.cursor)) return;
    const delay = settleDelayMs ?? transport.settleDelayMs ?? 300;
    settleTimer = timers.setTimeout(() => {
      settleTimer = null;
      if (awaiting.some((a) => a.version > server.cursor)) requestSync();
    }, delay);
  }

  function backoff(n) {
    const base = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(n - 1, 16));
    return Math.round(base * (0.8 + random() * 0.4));
  }

  // ---- sending ----
  function pump() {
    if (inFlight || closed || !loaded || retryTimer || waitForSync || !link.writable) return;
    if (queue[0] && !queue[0].sent) {
      // the last look before the base is fixed: what the server changed
      // since the user wrote this is a conflict now or never
      detectConflicts();
      refreshConflicts();
      commit();
      if (!queue[0]) return;
    }
    const w = queue[0];
    if (!w) return;
    if (!w.sent) {
      const fs = fieldsOf(w);
      if (awaiting.some((a) => a.version > server.cursor && fs.some((f) => f in a.changes))) {
        scheduleSettle();
        return;
      }
      w.base = Math.max(server.cursor, w.minBase);
      w.sent = true;
    }
    inFlight = w;
    commit();
    const req = { changes: { ...w.changes }, base_version: w.base, mutation_id: w.id };
    // The base and "sent" are in storage before the request leaves: after a
    // reload the write is retried exactly as sent.
    const ready = w.memoryOnly ? Promise.resolve() : flushSaves();
    ready.then(() => transport.patch(req)).then((res) => settle(w, res, null), (err) => settle(w, null, err));
  }

  function settle(w, res, err) {
    inFlight = null;
    if (closed) return;
    if (queue[0] !== w) {
      pump();
      return;
    }
    if (!err && (!res || !Number.isSafeInteger(res.version))) err = new StateError('NETWORK', 'malformed answer to patch');
    if (!err) applied(w, res);
    else failed(w, err);
    commit();
    pump();
  }

  function applied(w, res) {
    delete w.afterReset;
    if (typeof res.history === 'string' && server.history !== null && !sameLine(res.history, server.history)) {
      // Confirmed on another history than the one held here: whether the
      // server's history keeps it is not known until this device's is
      // settled.  Sent again after a sync, with its mutation_id (a server
      // that has it answers from its record, or "already used").
      Object.assign(w, { sent: false, base: null, baseCursor: server.cursor, minBase: 0 });
      waitForSync = true;
      requestSync();
      return;
    }
    queue.shift();
    retryAttempts = 0;
    lastError = null;
    const fields = Array.isArray(res.applied) ? res.applied : fieldsOf(w);
    for (const f of fields) ownVersions[f] = Math.max(ownVersions[f] ?? 0, res.version);
    if (res.version > server.cursor) {
      awaiting.push({ id: w.id, changes: w.changes, version: res.version, base: w.base, memoryOnly: w.memoryOnly });
      scheduleSettle();
    }
    const out = { version: res.version, applied: fields, conflicts: w.carried };
    w.d.resolve(out);
    emit('confirmed', { mutationId: w.id, changes: w.changes, ...out });
  }

  function failed(w, err) {
    const code = err?.code;
    const kind = classify(code);
    const baseGone = code === '22023' && /base version .* newer than the current version/.test(err.message ?? '');
    if (w.afterReset && (kind === 'retry' || baseGone)) {
      // it was in flight at a reset: not applied (or unknown); judge it
      // against the new history before it goes again
      judgeAfterReset(w);
      if (queue[0] !== w) return;    // every field became a conflict
    }
    delete w.afterReset;
    if (kind === 'retry') {
      lastError = { code: code ?? 'NETWORK', message: err?.message ?? String(err) };
      if (code === 'AUTH') emit('auth', err);
      retryAttempts++;
      retryTimer = timers.setTimeout(() => {
        retryTimer = null;
        pump();
      }, backoff(retryAttempts));
      return;
    }
    if (kind === 'conflict') {
      const d = conflictDetail(err.detail);
      if (d) {
        conflicted(w, d);
        return;
      }
    }
    // A base the server does not have (its history changed): the call
    // recorded nothing, so the write gets a new base after a sync.
    if (baseGone && w.rebases < 3) {
      w.rebases++;
      w.sent = false;
      w.base = null;
      waitForSync = true;
      requestSync();
      return;
    }
    queue.shift();
    if (code === '22023' && /mutation_id .* already used/.test(err.message ?? '')) {
      // An earlier attempt was applied (its record differs from this one):
      // the sync shows what it did.
      w.d.resolve({ version: null, applied: [], conflicts: w.carried });
      requestSync();
      return;
    }
    const error = err instanceof StateError ? err : new StateError(code ?? 'ERROR', err?.message);
    w.d.reject(error);
    emit('error', { code: error.code, message: error.message, field: error.field, mutationId: w.id, changes: w.changes, error });
  }

  function conflicted(w, d) {
    queue.shift();
    const lost = new Set(d.conflicts.map((c) => c.field));
    const raised = [];
    for (const c of d.conflicts) {
      if (!isField(c.field)) continue;
      const mine = w.changes[c.field];
      raised.push(raiseConflict(c.field, 0, mine, isPersonaText(c.field) ? null : c.server_value,
        Number.isSafeInteger(c.server_version) ? c.server_version : d.server_version, !isPersonaText(c.field)));
    }
    const rest = Object.fromEntries(Object.entries(w.changes).filter(([f]) => !lost.has(f)));
    if (Object.keys(rest).length > 0) {
      queue.unshift(newWrite(rest, { baseCursor: w.baseCursor, memoryOnly: w.memoryOnly, d: w.d, carried: w.carried.concat(raised) }));
    } else {
      const err = new StateError('PT409', `conflict on ${[...lost].join(', ')}`, { detail: d, field: [...lost][0] ?? null });
      err.conflicts = raised;
      w.d.reject(err);
    }
    dropEmpty();
    refreshConflicts();
    requestSync();
  }

  // ---- the transport ----
  const handlers = {
    cursor: () => (hydrated ? server.cursor : 0),
    // the history of that cursor (null: none known, or the cursor is 0)
    history: () => (hydrated && server.cursor > 0 ? server.history : null),
    onUpdate: (msg) => {
      if (!closed && loaded) onUpdate(msg);
    },
    onSync: (msg) => {
      if (!closed && loaded) {
        onSync(msg);
        if (!hydrated) requestSync();
      }
    },
    onStatus: (s) => {
      if (closed) return;
      const wasWritable = link.writable;
      link = { online: !!s.online, writable: !!s.writable, via: s.via ?? null };
      if (s.error) lastError = { code: s.error, message: s.message ?? s.error };
      if (link.writable && !wasWritable && retryTimer) {
        timers.clearTimeout(retryTimer);
        retryTimer = null;
      }
      if (link.online && pullTimer) {
        timers.clearTimeout(pullTimer);
        pullTimer = null;
      }
      commit();
      if (link.online && (pullAgain || waitForSync || awaiting.length > 0)) requestSync();
      pump();
      readUnversioned();
    },
    onAuthError: (err) => emit('auth', err),
  };

  const loading = load().then(() => {
    if (!closed) transport.start(handlers);
  });

  // ---- the API ----
  function patch(changes) {
    if (closed) return handled(Promise.reject(new StateError('CLOSED', 'the client is closed')));
    if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) {
      return handled(Promise.reject(new StateError('22023', 'changes must be an object of field paths')));
    }
    const entries = Object.entries(changes);
    for (const [f] of entries) {
      let err = null;
      if (!isField(f)) err = new StateError('22023', `unknown field "${f}"`, { field: f });
      else if (!isUserField(f)) err = new StateError('42501', `permission denied to write field "${f}"`, { field: f });
      if (err) {
        emit('error', { code: err.code, message: err.message, field: f, mutationId: null, changes, error: err });
        return handled(Promise.reject(err));
      }
    }
    if (entries.length === 0) return Promise.resolve({ version: server.cursor, applied: [], conflicts: [] });
    // A new value for a field in conflict decides that conflict.
    let seen = server.cursor;
    for (const [f] of entries) {
      const c = conflicts.find((x) => x.field === f);
      if (!c) continue;
      seen = Math.max(seen, c.serverVersion);
      conflicts = conflicts.filter((x) => x !== c);
      emit('resolved', { conflict: c, choice: 'value' });
    }
    const persona = entries.filter(([f]) => isPersonaText(f));
    const other = entries.filter(([f]) => !isPersonaText(f));
    const writes = [];
    for (const [part, memoryOnly] of [[other, false], [persona, true]]) {
      if (part.length === 0) continue;
      writes.push(newWrite(Object.fromEntries(part), { baseCursor: seen, minBase: seen > server.cursor ? seen : 0, memoryOnly }));
    }
    queue.push(...writes);
    commit();
    pump();
    if (writes.length === 1) return writes[0].d.promise;
    return handled(Promise.allSettled(writes.map((w) => w.d.promise)).then((rs) => {
      const bad = rs.find((r) => r.status === 'rejected');
      if (bad) throw bad.reason;
      return {
        version: Math.max(...rs.map((r) => r.value.version)),
        applied: rs.flatMap((r) => r.value.applied),
        conflicts: rs.flatMap((r) => r.value.conflicts),
      };
    }));
  }

  function resolve(conflict, choice) {
    const c = conflicts.find((x) => x.id === conflict?.id) ?? conflicts.find((x) => x.field === (conflict?.field ?? conflict));
    if (!c) return handled(Promise.reject(new StateError('NOT_FOUND', 'no such conflict')));
    conflicts = conflicts.filter((x) => x !== c);
    emit('resolved', { conflict: c, choice: choice === 'mine' || choice === 'server' ? choice : 'value' });
    if (choice === 'server') {
      commit();
      return Promise.resolve({ version: server.cursor, applied: [], conflicts: [] });
    }
    const value = choice === 'mine' ? c.mine
      : (choice !== null && typeof choice === 'object' && Object.hasOwn(choice, 'value')) ? choice.value : choice;
    const w = newWrite({ [c.field]: value }, { baseCursor: c.serverVersion, minBase: c.serverVersion, memoryOnly: isPersonaText(c.field) });
    queue.push(w);
    commit();
    pump();
    return w.d.promise;
  }

  function setUi(partial) {
    if (partial === null || typeof partial !== 'object') throw new TypeError('setUi: an object is expected');
    ui = { ...ui, ...partial };
    if (!loaded) uiBeforeLoad = { ...uiBeforeLoad, ...partial };
    commit();
  }

  async function close() {
    if (closed) return;
    await loading.catch(noop);
    closed = true;
    for (const t of [retryTimer, pullTimer, settleTimer, fullTimer]) if (t) timers.clearTimeout(t);
    if (status.unsavedPersona.length > 0) emit('unsavedPersona', status.unsavedPersona);
    persist();
    await saved;
    await transport.close?.();
    const err = new StateError('CLOSED', 'the client was closed; the write stays queued in storage');
    for (const w of queue) w.d.reject(err);
  }

  // For window 'beforeunload': asks the browser to confirm leaving while
  // persona text is unsaved (it is never in storage, so it would be lost).
  function beforeUnload(event) {
    if (!status || status.unsavedPersona.length === 0) return undefined;
    const msg = 'Unsaved persona text will be lost.';
    event?.preventDefault?.();
    if (event) event.returnValue = msg;
    return msg;
  }
  function installBeforeUnload(target = globalThis) {
    target.addEventListener('beforeunload', beforeUnload);
    return () => target.removeEventListener('beforeunload', beforeUnload);
  }

  compute();
  return {
    get state() { return state; },
    get status() { return status; },
    get conflicts() { return conflicts; },
    // Writes not yet in the state this device has from the server, oldest
    // first: queued (`sent`: at least once) and confirmed (`version`).
    get pending() {
      return awaiting.map((a) => ({ mutationId: a.id, changes: a.changes, sent: true, version: a.version, seen: null }))
        .concat(queue.map((w) => ({ mutationId: w.id, changes: w.changes, sent: w.sent, version: null, seen: w.baseCursor })));
    },
    loaded: loading,
    patch,
    resolve,
    setUi,
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    on(name, fn) {
      if (!events.has(name)) events.set(name, new Set());
      events.get(name).add(fn);
      return () => events.get(name).delete(fn);
    },
    sync: () => requestSync(),
    flush: flushSaves,
    beforeUnload,
    installBeforeUnload,
    close,
  };
}
