// One connected device's cursor and the history it belongs to: relay a
// notification as it is, or catch the device up with state_sync from its
// cursor.  No I/O here: the caller hands in what to emit and how to sync.
import { performance } from 'node:perf_hooks';
import { backoff } from './backoff.js';
import { noMetrics } from './metrics.js';
import { historyLine, isHistory } from './validate.js';

// Why a notification became a state_sync instead of a state_update (the
// counters of /healthz, catchups.*).
export const CAUSES = Object.freeze(['gap', 'withheld', 'resync', 'malformed', 'history']);

const DROP = Object.freeze({ action: 'drop' });
const RELAY = Object.freeze({ action: 'relay' });
const CATCHUP = Object.freeze(Object.fromEntries(CAUSES.map((cause) => [cause, Object.freeze({ action: 'catchup', cause })])));

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// What to do with notification `msg` (the parsed payload, or null when it
// did not parse) for a device that holds version `cursor` of history
// `history` (a token, or null when the device's cursor is a bare one):
//
//   {action: 'relay'}   send it as state_update; the device is then at
//                       msg.version of msg.history.  Only when its version
//                       is cursor + 1 and it names at least one field, each
//                       with its value in `data` ("usage.remaining_roasts"
//                       -> data.usage.remaining_roasts): then it is all
//                       that changed at that version (the extension names
//                       every field state_sync(u, version - 1) returns).
//   {action: 'drop'}    its version is at or below the cursor: on the
//                       device already.
//   {action: 'catchup', cause}   state_sync from the cursor instead:
//     history   the payload's history ("<system id>.<timeline>", from the
//               library after 0.8.0) is not the line of the device's: the
//               server failed over or was
//               restored under the device, and its version numbers may
//               have been handed out again to other changes, so neither
//               "at or below the cursor" nor "cursor + 1" means anything.
//               Checked before the version: a reissued version at or below
//               the cursor must not be dropped.
//     gap       the version is beyond cursor + 1.  A transaction that wrote
//               several statements moves the version by more than one in its
//               one notification, and a lost notification looks the same.
//     resync    the payload was too large for NOTIFY and only says so.
//     withheld  a named field has no value in `data` (persona text and
//               personal values never travel in a payload), or no field is
//               named at all (an operator's change of a plan's limit: a
//               version whose changes the payload does not carry).
//     malformed the payload is not JSON, its version is not a safe positive
//               integer, its history is there but not a token, `fields` is
//               missing or not a list of "section.key" strings, or `data` is
//               not an object.  Nothing in it can be trusted, so the change
//               log answers.
// A payload without `history` (a library up to 0.8.0), or a device
// without one (a bare cursor), is judged on the version alone, as before.
//
// The cursor never moves on an announcement the gateway cannot deliver in
// full: every doubt is a catch-up (one indexed read, a few fields).
export function decide(msg, cursor, history = null) {
  if (!isObject(msg) || !Number.isSafeInteger(msg.version) || msg.version < 1) return CATCHUP.malformed;
  if (msg.history !== undefined && msg.history !== null) {
    if (!isHistory(msg.history)) return CATCHUP.malformed;
    if (history !== null && historyLine(msg.history) !== historyLine(history)) return CATCHUP.history;
  }
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

// Whether a state_sync answer that moved nothing must still be sent, for
// its history: the device's is of another line (a failover that kept the
// device's cursor: from now on the device's cursor is of the new line).  A
// WAL position alone is no news: the one the device holds (or its absence)
// still holds for its cursor.
function historyNews(held, answer) {
  return answer !== null && historyLine(held) !== historyLine(answer);
}

// Whether a state_sync answered on history line `answer` ("sysid.tli")
// makes announcements of line `announced` moot: a later timeline of the
// same cluster (a promotion or a restore left the announced line, and the
// versions announced on it after the fork were lost), or another cluster
// (a restore into a new one: the server answering is the one there is).
// An earlier timeline of the same cluster is a server that has not caught
// up yet (a standby before its promotion reached it): the announcement
// stands.
export function supersedes(answer, announced) {
  const [as, at] = answer.split('.');
  const [ns, nt] = announced.split('.');
  return as !== ns || Number(at) > Number(nt);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MAX_SYNC_LAG_TRIES = 20;

// One connected device.  `cursor` is the version the device is known to
// hold and `history` the history that version belongs to (a token, or null
// for a bare cursor): the ones it connected with, then those of the last
// state_update or state_sync it was sent (Socket.IO delivers in order on
// one connection; a device that loses the connection reconnects with its
// own).
//
//   emit(event, payload)   send to the device ('state_update', 'state_sync',
//                          'gateway_error')
//   disconnect()           end the connection
//   sync(from, history)    run state_sync from a cursor of a history with
//                          the device's claims: {changes, cursor, history,
//                          reset} (history and reset: 0.5.0)
//   stats                  counters to bump: relayed, syncs, syncFailures,
//                          catchups[cause]
//   metrics                metrics.js: the same events, and each delivery's
//                          latency from the notification's arrival
export class Device {
  constructor({ userId, cursor, history = null, emit, disconnect, sync, stats, log, metrics = noMetrics, retryCapMs = 5000, wait = sleep }) {
    Object.assign(this, { userId, cursor, history, emit, disconnect, stats, log, metrics, retryCapMs, wait });
    this.syncFrom = sync;
    this.since = null;      // arrival (performance.now()) of the oldest notification not yet delivered
    this.want = 0;          // highest version announced by a notification
    this.wantLine = null;   // the history line ("sysid.tli") of those announcements, when they named one
    this.syncing = false;
    this.dirty = false;     // a sync was asked for while one was running
    this.closed = false;
    this.answered = false;  // the connect-time state_sync was sent
  }

  // Whether an announced version is not on the device yet: one of its line
  // beyond the cursor, or any of another line than the device's.
  behind() {
    if (this.want === 0) return false;
    const line = historyLine(this.history);
    if (this.wantLine !== null && line !== null && this.wantLine !== line) return true;
    return this.cursor < this.want;
  }

  // The rule is decide(): a notification is relayed only when it is all that
  // changed at cursor + 1 of the device's history; anything else, including
  // a payload that cannot be trusted, becomes a state_sync from the cursor.
  // While a sync runs, `want` makes it go on until it has reached every
  // version announced meanwhile, and `dirty` runs it again for an
  // announcement without a usable version or of another history.
  // `at`: when the notification arrived (performance.now()).
  notify(msg, at = performance.now()) {
    if (this.closed) return;
    const d = decide(msg, this.cursor, this.history);
    if (d.action === 'drop') return;
    const v = msg?.version;
    const line = d.cause === 'malformed' ? null : historyLine(msg?.history ?? null);
    if (line !== null && line !== this.wantLine) {
      // a new line: what was announced on the old one no longer counts
      this.wantLine = line;
      this.want = v;
    } else if (Number.isSafeInteger(v) && (d.cause === 'history' || v > this.cursor)) {
      this.want = Math.max(this.want, v);
    }
    if (d.cause === 'history' || !(Number.isSafeInteger(v) && v > this.cursor)) this.dirty = true;
    if (this.syncing) {
      this.since ??= at;      // the running sync delivers it
      return;
    }
    if (d.action === 'relay') {
      const update = { type: msg.type, data: msg.data, version: msg.version, fields: msg.fields };
      if (typeof msg.history === 'string') update.history = msg.history;
      this.emit('state_update', update);
      this.cursor = msg.version;
      // The payload's history has no WAL position: the device's cursor is
      // now of that line only (and a WAL position held from before no
      // longer bounds every commit it saw).
      this.history = typeof msg.history === 'string' ? msg.history : historyLine(this.history);
      this.stats.relayed++;
      this.metrics.stateUpdate();
      this.metrics.delivered('state_update', (performance.now() - at) / 1000);
      return;
    }
    this.stats.catchups[d.cause]++;
    this.since ??= at;
    this.sync(d.cause);
  }

  // Catch up from the cursor (at connect, after a LISTEN reconnection, for
  // a notification that cannot be relayed, or for a broadcast of a shared
  // change).  Returns the running sync.  cause: counted in the metrics
  // (metrics.js CATCHUP_CAUSES); at: when the notification that asked for
  // it arrived (performance.now()), for the delivery latency of what it
  // brings.
  sync(cause, at) {
    if (cause) this.metrics.catchup(cause);
    if (at !== undefined) this.since ??= at;
    this.dirty = true;
    if (!this.syncing) this.running = this._run();
    return this.running;
  }

  async _run() {
    this.syncing = true;
    let failures = 0;
    let lag = 0;
    try {
      while (!this.closed && (this.dirty || this.behind())) {
        this.dirty = false;
        const from = this.cursor;
        const fromHistory = this.history;
        let res;
        try {
          this.stats.syncs++;
          this.metrics.sync();
          res = await this.syncFrom(from, fromHistory);
        } catch (err) {
          this.stats.syncFailures++;
          this.metrics.syncFailure(err?.code);
          if (err.code === '42501' || err.code === 'PT404' || err.code?.startsWith?.('22')) {
            // The database will not let this device read the state (no
            // such user, grants changed, a cursor or history it rejects):
            // let it go.
            this.refuse(err.code === 'PT404' ? 'no_state' : err.code === '42501' ? 'forbidden' : 'bad_request');
            return;
          }
          // PT503: a standby that has not replayed the device's cursor yet
          // (the gateway's queries may go to one); it will have soon.
          if (err.code === 'PT503') this.log.info('state_sync: the server is behind the device, will retry', { user: this.userId });
          else this.log.warn('state_sync failed, will retry', { user: this.userId, err: err?.message, code: err?.code });
          this.dirty = true;
          await this.wait(backoff(failures++, this.retryCapMs));
          continue;
        }
        failures = 0;
        if (this.closed) return;
        const history = typeof res.history === 'string' ? res.history : null;
        const reset = res.reset === true;
        let sent = false;
        if (!this.answered || reset || res.changes.length > 0 || res.cursor !== from || historyNews(fromHistory, history)) {
          // After a reset the changes are every field: the device replaces
          // its state with them.
          this.emit('state_sync', { changes: res.changes, cursor: res.cursor, history, reset });
          this.answered = true;
          sent = true;
          this.history = history;
        }
        this.cursor = res.cursor;
        const answered = historyLine(history);
        if (this.wantLine !== null && answered !== null && this.wantLine !== answered &&
            supersedes(answered, this.wantLine)) {
          // What was announced on the line the server left will never show:
          // the device now holds the server's line.
          this.want = this.cursor;
          this.wantLine = answered;
        }
        const behind = this.behind();
        if (this.since !== null && !this.dirty && !behind) {
          // Everything announced so far is on the device now.
          if (sent) this.metrics.delivered('state_sync', (performance.now() - this.since) / 1000);
          this.since = null;
        }
        if (behind && !sent) {
          // A notification named a version this snapshot did not show yet;
          // it cannot stay invisible for long.
          if (++lag > MAX_SYNC_LAG_TRIES) {
            this.log.warn('state_sync stays behind an announced version', { user: this.userId, cursor: this.cursor, announced: this.want });
            this.want = this.cursor;
            this.wantLine = historyLine(this.history);
            break;
          }
          await this.wait(10 * lag);
        } else {
          lag = 0;
        }
      }
    } finally {
      this.syncing = false;
      if (!this.dirty && !this.behind()) this.since = null;
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

  // Every device catches up from its cursor; returns how many.  at: when
  // the notification that asked for it arrived, if one did.
  syncAll(cause, at) {
    let n = 0;
    for (const set of this.byUser.values()) for (const d of set) { d.sync(cause, at); n++; }
    return n;
  }

  get users() { return this.byUser.size; }

  get size() {
    let n = 0;
    for (const set of this.byUser.values()) n += set.size;
    return n;
  }
}
