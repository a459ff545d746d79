// One connected device's cursor: relay a notification as it is, or catch the
// device up with state_sync from its cursor.  No I/O here: the caller hands
// in what to emit and how to sync.
import { performance } from 'node:perf_hooks';
import { backoff } from './backoff.js';
import { noMetrics } from './metrics.js';

// Why a notification became a state_sync instead of a state_update (the
// counters of /healthz, catchups.*).
export const CAUSES = Object.freeze(['gap', 'withheld', 'resync', 'malformed']);

const DROP = Object.freeze({ action: 'drop' });
const RELAY = Object.freeze({ action: 'relay' });
const CATCHUP = Object.freeze(Object.fromEntries(CAUSES.map((cause) => [cause, Object.freeze({ action: 'catchup', cause })])));

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// What to do with notification `msg` (the parsed payload, or null when it
// did not parse) for a device that holds version `cursor`:
//
//   {action: 'relay'}   send it as state_update; the device is then at
//                       msg.version.  Only when its version is cursor + 1
//                       and it names at least one field, each with its
//                       value in `data` ("usage.remaining_roasts" ->
//                       data.usage.remaining_roasts): then it is all that
//                       changed at that version (the extension names every
//                       field state_sync(u, version - 1) returns).
//   {action: 'drop'}    its version is at or below the cursor: on the
//                       device already.
//   {action: 'catchup', cause}   state_sync from the cursor instead:
//     gap       the version is beyond cursor + 1.  A transaction that wrote
//               several statements moves the version by more than one in its
//               one notification, and a lost notification looks the same.
//     resync    the payload was too large for NOTIFY and only says so.
//     withheld  a named field has no value in `data` (persona text and
//               personal values never travel in a payload), or no field is
//               named at all (an operator's change of a plan's limit: a
//               version whose changes the payload does not carry).
//     malformed the payload is not JSON, its version is not a safe positive
//               integer, `fields` is missing or not a list of "section.key"
//               strings, or `data` is not an object.  Nothing in it can be
//               trusted, so the change log answers.
//
// The cursor never moves on an announcement the gateway cannot deliver in
// full: every doubt is a catch-up (one indexed read, a few fields).
export function decide(msg, cursor) {
  if (!isObject(msg) || !Number.isSafeInteger(msg.version) || msg.version < 1) return CATCHUP.malformed;
  if (msg.version <= cursor) return DROP;
  if (msg.type === 'resync') return CATCHUP.resync;
  if (msg.version !== cursor + 1) return CATCHUP.gap;
  if (!Array.isArray(msg.fields) || !isObject(msg.data)) return CATCHUP.malformed;
  const paths = [];
  for (const f of msg.fields) {
    const dot = typeof f === 'string' ? f.indexOf('.') : -1;
    if (dot <= 0 || dot === f.length - 1) return CATCHUP.malformed;
    paths.push([f.slice(0, dot), f.slice(dot + 1)]);
  }
  if (paths.length === 0) return CATCHUP.withheld;
  for (const [section, key] of paths) {
    const values = Object.hasOwn(msg.data, section) ? msg.data[section] : undefined;
    if (!isObject(values) || !Object.hasOwn(values, key)) return CATCHUP.withheld;
  }
  return RELAY;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MAX_SYNC_LAG_TRIES = 20;

// One connected device.  `cursor` is the version the device is known to
// hold: the one it connected with, then the last state_update or state_sync
// it was sent (Socket.IO delivers in order on one connection; a device that
// loses the connection reconnects with its own cursor).
//
//   emit(event, payload)   send to the device ('state_update', 'state_sync',
//                          'gateway_error')
//   disconnect()           end the connection
//   sync(from)             run state_sync from a cursor with the device's
//                          claims: {changes, cursor}
//   stats                  counters to bump: relayed, syncs, syncFailures,
//                          catchups[cause]
//   metrics                metrics.js: the same events, and each delivery's
//                          latency from the notification's arrival
export class Device {
  constructor({ userId, cursor, emit, disconnect, sync, stats, log, metrics = noMetrics, retryCapMs = 5000, wait = sleep }) {
    Object.assign(this, { userId, cursor, emit, disconnect, stats, log, metrics, retryCapMs, wait });
    this.syncFrom = sync;
    this.since = null;      // arrival (performance.now()) of the oldest notification not yet delivered
    this.want = 0;          // highest version announced by a notification
    this.syncing = false;
    this.dirty = false;     // a sync was asked for while one was running
    this.closed = false;
    this.answered = false;  // the connect-time state_sync was sent
  }

  // The rule is decide(): a notification is relayed only when it is all that
  // changed at cursor + 1; anything else, including a payload that cannot be
  // trusted, becomes a state_sync from the cursor.  While a sync runs,
  // `want` makes it go on until it has reached every version announced
  // meanwhile, and `dirty` runs it again for an announcement without a
  // usable version.
  // `at`: when the notification arrived (performance.now()).
  notify(msg, at = performance.now()) {
    if (this.closed) return;
    const d = decide(msg, this.cursor);
    if (d.action === 'drop') return;
    const v = msg?.version;
    if (Number.isSafeInteger(v) && v > this.cursor) this.want = Math.max(this.want, v);
    else this.dirty = true;
    if (this.syncing) {
      this.since ??= at;      // the running sync delivers it
      return;
    }
    if (d.action === 'relay') {
      this.emit('state_update', { type: msg.type, data: msg.data, version: msg.version, fields: msg.fields });
      this.cursor = msg.version;
      this.stats.relayed++;
      this.metrics.stateUpdate();
      this.metrics.delivered('state_update', (performance.now() - at) / 1000);
      return;
    }
    this.stats.catchups[d.cause]++;
    this.since ??= at;
    this.sync(d.cause);
  }

  // Catch up from the cursor (at connect, after a LISTEN reconnection, or
  // for a notification that cannot be relayed).  Returns the running sync.
  // cause: counted in the metrics (metrics.js CATCHUP_CAUSES).
  sync(cause) {
    if (cause) this.metrics.catchup(cause);
    this.dirty = true;
    if (!this.syncing) this.running = this._run();
    return this.running;
  }

  async _run() {
    this.syncing = true;
    let failures = 0;
    let lag = 0;
    try {
      while (!this.closed && (this.dirty || this.cursor < this.want)) {
        this.dirty = false;
        const from = this.cursor;
        let res;
        try {
          this.stats.syncs++;
          this.metrics.sync();
          res = await this.syncFrom(from);
        } catch (err) {
          this.stats.syncFailures++;
          this.metrics.syncFailure();
          if (err.code === '42501' || err.code === 'PT404' || err.code?.startsWith?.('22')) {
            // The database will not let this device read the state (no
            // such user, grants changed, a cursor it rejects): let it go.
            this.refuse(err.code === 'PT404' ? 'no_state' : err.code === '42501' ? 'forbidden' : 'bad_request');
            return;
          }
          this.log.warn('state_sync failed, will retry', { user: this.userId, err: err?.message, code: err?.code });
          this.dirty = true;
          await this.wait(backoff(failures++, this.retryCapMs));
          continue;
        }
        failures = 0;
        if (this.closed) return;
        let sent = false;
        if (!this.answered || res.changes.length > 0 || res.cursor !== from) {
          this.emit('state_sync', { changes: res.changes, cursor: res.cursor });
          this.answered = true;
          sent = true;
        }
        this.cursor = res.cursor;
        if (this.since !== null && !this.dirty && this.cursor >= this.want) {
          // Everything announced so far is on the device now.
          if (sent) this.metrics.delivered('state_sync', (performance.now() - this.since) / 1000);
          this.since = null;
        }
        if (this.cursor < this.want && res.cursor === from) {
          // A notification named a version this snapshot did not show yet;
          // it cannot stay invisible for long.
          if (++lag > MAX_SYNC_LAG_TRIES) {
            this.log.warn('state_sync stays behind an announced version', { user: this.userId, cursor: this.cursor, announced: this.want });
            this.want = this.cursor;
            break;
          }
          await this.wait(10 * lag);
        } else {
          lag = 0;
        }
      }
    } finally {
      this.syncing = false;
      if (!this.dirty && this.cursor >= this.want) this.since = null;
    }
  }

  // Tell the device why, then end its connection.
  refuse(code) {
    if (this.closed) return;
    this.emit('gateway_error', { code });
    this.disconnect();
  }

  close() {
    this.closed = true;
  }
}

// The devices connected here, by user: notifications are routed to them.
export class Devices {
  constructor() {
    this.byUser = new Map();  // user id -> Set<Device>
  }

  add(dev) {
    let set = this.byUser.get(dev.userId);
    if (!set) this.byUser.set(dev.userId, (set = new Set()));
    set.add(dev);
  }

  // True when it was the user's last device here.
  remove(dev) {
    const set = this.byUser.get(dev.userId);
    if (!set?.delete(dev)) return false;
    if (set.size > 0) return false;
    this.byUser.delete(dev.userId);
    return true;
  }

  notify(userId, msg, at) {
    for (const d of this.byUser.get(userId) ?? []) d.notify(msg, at);
  }

  // Every device catches up from its cursor; returns how many.
  syncAll(cause) {
    let n = 0;
    for (const set of this.byUser.values()) for (const d of set) { d.sync(cause); n++; }
    return n;
  }

  get users() { return this.byUser.size; }

  get size() {
    let n = 0;
    for (const set of this.byUser.values()) n += set.size;
    return n;
  }
}
