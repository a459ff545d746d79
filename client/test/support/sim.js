// A deterministic simulation of devices, a gateway and the server model:
// virtual timers, a seeded random source, and a network whose every
// delivery is an explicit step, so a test can drop, duplicate, reorder and
// delay anything, disconnect and reload devices, and replay a seed.
import { ServerModel, ModelError } from './model.js';

// mulberry32: small, seedable.
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  next.chance = (p) => next() < p;
  return next;
}

// Virtual time: timers fire only when the test says so.
export class VirtualTimers {
  constructor() {
    this.now = 0;
    this.seq = 0;
    this.pending = new Map();
  }

  setTimeout(fn, ms = 0) {
    const id = ++this.seq;
    this.pending.set(id, { at: this.now + Math.max(0, ms), fn, id });
    return id;
  }

  clearTimeout(id) {
    this.pending.delete(id);
  }

  // Fire the earliest timer; false when none.
  fireNext() {
    let first = null;
    for (const t of this.pending.values()) if (!first || t.at < first.at || (t.at === first.at && t.id < first.id)) first = t;
    if (!first) return false;
    this.pending.delete(first.id);
    this.now = Math.max(this.now, first.at);
    first.fn();
    return true;
  }
}

// Let every promise chain that can run, run.
export const settle = () => new Promise((r) => setImmediate(r));

const complete = (msg) => Array.isArray(msg.fields) && msg.fields.length > 0 && msg.fields.every((f) => {
  const [sec, k] = f.split('.');
  const o = msg.data?.[sec];
  return o !== null && typeof o === 'object' && Object.hasOwn(o, k);
});

const netError = (m, code = 'NETWORK') => Object.assign(new Error(m), { code });
const line = (h) => (typeof h === 'string' ? h.split('.').slice(0, 2).join('.') : null);
const asClientError = (e) => (e instanceof ModelError ? Object.assign(new Error(e.message), { code: e.code, detail: e.detail }) : e);

export class Net {
  constructor({ random, model = new ServerModel() }) {
    this.random = random;
    this.model = model;
    this.notes = [];        // notifications on their way to the gateway
    this.conns = new Set();
    this.rpcs = [];         // requests in flight (patch, sync)
    this.devices = new Map();
    this.listenDown = false;    // after a failover, until the gateway's LISTEN connection is back
    this.senders = new Map();   // mutation_id -> device that sent it
    this.acked = new Map();     // device -> [{version, changes}] of the writes it was told were applied
    model.onNotify((msg) => {
      if (!this.listenDown) this.notes.push(msg);
    });
  }

  // A transport for one client instance of device `devId`.
  transport(devId) {
    const net = this;
    const t = {
      devId,
      handlers: null,
      conn: null,
      dead: false,
      settleDelayMs: 50,
      start(handlers) {
        t.handlers = handlers;
      },
      patch(req) {
        return net.call(t, 'patch', req);
      },
      sync(since, history = null) {
        return net.call(t, 'sync', { since, history });
      },
      full() {
        return net.call(t, 'full');
      },
      close() {
        t.dead = true;
        net.disconnect(t);
        // requests on the wire may still reach the server; their answers go nowhere
        for (const r of net.rpcs.filter((x) => x.t === t)) {
          if (r.kind === 'patch' && !r.done && net.random.chance(0.5)) net.process(r);
          r.lost = true;
        }
        net.rpcs = net.rpcs.filter((x) => x.t !== t);
      },
    };
    return t;
  }

  call(t, kind, arg) {
    return new Promise((resolve, reject) => {
      if (t.dead || !t.conn) {
        reject(netError('offline'));
        return;
      }
      if (kind === 'patch') this.senders.set(arg.mutation_id, t.devId);
      this.rpcs.push({ t, kind, arg, resolve, reject, done: false, result: null });
    });
  }

  // The server runs the request now.
  process(r) {
    try {
      const run = { patch: () => this.model.patch(r.arg), sync: () => this.model.sync(r.arg.since, r.arg.history), full: () => this.model.full() }[r.kind];
      r.result = { ok: run() };
    } catch (e) {
      r.result = { err: asClientError(e) };
    }
    r.done = true;
  }

  // Deliver an rpc's answer (running it first if needed).
  answer(r) {
    if (!r.done) this.process(r);
    this.rpcs = this.rpcs.filter((x) => x !== r);
    if (r.result.ok && r.kind === 'patch' && !r.t.dead) {
      if (!this.acked.has(r.t.devId)) this.acked.set(r.t.devId, []);
      this.acked.get(r.t.devId).push({ version: r.result.ok.version, changes: r.arg.changes });
    }
    if (r.result.ok) r.resolve(r.result.ok);
    else r.reject(r.result.err);
  }

  // code PT503: a standby that has not replayed the cursor yet (a sync).
  fail(r, code = 'NETWORK') {
    this.rpcs = this.rpcs.filter((x) => x !== r);
    r.reject(netError('request failed', code));
  }

  connect(t) {
    if (t.dead || t.conn || !t.handlers) return;
    const conn = { t, cursor: t.handlers.cursor(), history: t.handlers.history?.() ?? null, inbox: [] };
    t.conn = conn;
    this.conns.add(conn);
    this.gatewaySync(conn, true);
    t.handlers.onStatus({ online: true, writable: true, via: 'socket' });
  }

  disconnect(t) {
    if (!t.conn) return;
    this.conns.delete(t.conn);
    t.conn = null;
    for (const r of this.rpcs.filter((x) => x.t === t)) this.fail(r);
    if (!t.dead) t.handlers?.onStatus({ online: false, writable: false, via: null });
  }

  // The gateway's rules (gateway/lib/device.js): relay a notification as
  // state_update when it is of the device's history and its cursor + 1 and
  // complete, else sync from the device's cursor with its history.  `since`
  // (and the history it is of) goes with every state_sync that is no reset.
  gatewaySync(conn, first = false) {
    const r = this.model.sync(conn.cursor, conn.history);
    if (first || r.reset || r.changes.length > 0 || r.cursor !== conn.cursor || line(r.history) !== line(conn.history)) {
      conn.inbox.push({
        kind: 'sync', changes: r.changes, cursor: r.cursor, history: r.history, reset: r.reset,
        since: r.reset ? undefined : conn.cursor, fromHistory: conn.history,
      });
      conn.history = r.history;
    }
    conn.cursor = r.cursor;
  }

  // Now and then it relays one that names a field without its value (as a
  // relay that does not check would), or one of another history (a gateway
  // that does not look at histories): the client must see it and pull.
  gatewayNotify(msg) {
    for (const conn of this.conns) {
      const other = conn.history !== null && line(msg.history) !== line(conn.history);
      if (other && !this.random.chance(0.2)) {
        this.gatewaySync(conn);
        continue;
      }
      if (msg.version <= conn.cursor) continue;
      if (msg.version === conn.cursor + 1 && (complete(msg) || this.random.chance(0.2))) {
        conn.inbox.push({ kind: 'update', ...msg });
        conn.cursor = msg.version;
        conn.history = msg.history;
      } else {
        this.gatewaySync(conn);
      }
    }
  }

  // The gateway's LISTEN connection is back after a failover: every device
  // catches up from its cursor (now and then the gateway is late, and only
  // the next notification, of the new history, tells it).
  relisten() {
    if (!this.listenDown) return;
    this.listenDown = false;
    if (this.random.chance(0.7)) for (const conn of this.conns) this.gatewaySync(conn);
  }

  deliver(conn, i) {
    const [m] = conn.inbox.splice(i, 1);
    const h = conn.t.handlers;
    if (m.kind === 'update') h.onUpdate({ type: m.type, data: m.data, version: m.version, fields: m.fields, history: m.history });
    else h.onSync({ changes: m.changes, cursor: m.cursor, history: m.history, reset: m.reset, since: m.since, fromHistory: m.fromHistory });
  }

  // The server's history goes back to `snap` (a failover that lost the
  // last commits, a restore).  Nobody is told: the histories tell.  The
  // versions after `snap` will be handed out again to other changes.
  // Requests the old primary ran: half of the answers still get through
  // (a write the device is told was applied, that the new history lacks);
  // the rest are run again on the new one.  Notifications not yet relayed
  // are lost, and so are those of the new primary until the gateway's
  // LISTEN connection is back (relisten); devices stay connected, or
  // (gateway restarted too) are disconnected.
  restore(snap) {
    this.model.restore(snap);
    this.notes = [];
    for (const r of this.rpcs) if (!(r.done && this.random.chance(0.5))) r.done = false;
    this.listenDown = true;
    if (this.random.chance(0.3)) for (const conn of [...this.conns]) this.disconnect(conn.t);
  }
}
