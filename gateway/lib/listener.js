// The one PostgreSQL connection that LISTENs for every device.
//
// per-user mode: LISTEN "user:<id>" when a user's first device arrives,
//   UNLISTEN when the last one leaves.
// shared mode:   LISTEN roastr_state once; payloads carry user_id, and those
//   of users with no device here are dropped in the gateway.
// Both modes also LISTEN roastr_state_broadcast: one notification for an
// operator's change of a shared row (a plan's limit, an organization) that
// moves many users at once (extension 0.7.0), emitted as 'broadcast'; the
// server then catches every device up through state_sync, which settles
// each affected user's change in the user's own row.
//
// When the connection is lost it is reopened with exponential backoff, every
// channel still in use is LISTENed again, and 'ready' is emitted with
// {reconnected: true}: notifications sent meanwhile are gone, so the server
// then brings every device up to date through state_sync.
//
// Before a new connection is used it is checked (preflight.js): its login
// role may be no more than DB_ROLE, and it must not go through a
// transaction pooler (LISTEN needs a session).  A refusal at the first
// connection is emitted as 'refused' (the server exits); at a reconnection
// it is logged as an error and retried with backoff.  The heartbeat also
// checks that the connection's server process has not changed.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { errFields } from './log.js';
import { backoff } from './backoff.js';
import { isUuid } from './validate.js';
import { checkLoginRole, detectPooler, loginRoleError, poolerError, PreflightError } from './preflight.js';

const { escapeIdentifier } = pg;
const SHARED_CHANNEL = 'roastr_state';
export const BROADCAST_CHANNEL = 'roastr_state_broadcast';
// The broadcasts the extension sends (README, "Notifications"); an unknown
// type (a later extension) is a broadcast all the same.
export const BROADCAST_TYPES = Object.freeze(['plan_limits', 'organization']);
const BATCH = 500;                      // LISTEN statements per round trip on reconnect
const HEARTBEAT_TIMEOUT_MS = 5000;

export const userChannel = (userId) => `user:${userId}`;

export class Listener extends EventEmitter {
  // newClient(): an unconnected pg.Client for the LISTEN connection (tests
  // hand in fakes); by default one of cfg.listenPg.
  constructor(cfg, log, { newClient } = {}) {
    super();
    this.cfg = cfg;
    this.log = log;
    this.newClient = newClient ?? (() => new pg.Client({ ...(cfg.listenPg ?? cfg.pg), application_name: 'roastr_state_gateway_listen', keepAlive: true, connectionTimeoutMillis: 10000 }));
    this.mode = cfg.listenMode;
    this.users = new Map();     // user id -> devices connected here
    this.listening = new Map(); // per-user: user id -> promise of its LISTEN
    this.client = null;         // usable connection, null while down
    this.ready = false;         // connected and every channel LISTENed
    this.stopped = false;
    this.attempt = 0;
    this.timer = null;
    this.everReady = false;     // a first connection passed its checks
    this.stats = { connects: 0, lost: 0, refused: 0, received: 0, routed: 0, malformed: 0, broadcasts: 0 };
  }

  start() {
    this.heartbeat = setInterval(() => this._heartbeat(), this.cfg.heartbeatMs).unref();
    this._connect();
  }

  async stop() {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    this.ready = false;
    if (c) await c.end().catch(() => {});
  }

  status() {
    return {
      mode: this.mode,
      connected: this.ready,
      channels: this.mode === 'shared' ? (this.ready ? 1 : 0) : (this.ready ? this.users.size : 0),
      broadcast_channel: this.ready,
      ...this.stats,
    };
  }

  // A device of userId arrived.  Resolves once its notifications are being
  // received (or at once while the connection is down: the reconnection
  // will LISTEN and catch everyone up).
  acquire(userId) {
    const n = (this.users.get(userId) ?? 0) + 1;
    this.users.set(userId, n);
    if (this.mode === 'shared') return Promise.resolve();
    if (n === 1) {
      const p = this._exec(`LISTEN ${escapeIdentifier(userChannel(userId))}`);
      this.listening.set(userId, p);
      return p;
    }
    return this.listening.get(userId) ?? Promise.resolve();
  }

  release(userId) {
    const n = (this.users.get(userId) ?? 0) - 1;
    if (n > 0) {
      this.users.set(userId, n);
      return;
    }
    this.users.delete(userId);
    this.listening.delete(userId);
    if (this.mode === 'per-user') this._exec(`UNLISTEN ${escapeIdentifier(userChannel(userId))}`);
  }

  // Commands on the connection run one at a time, in the order issued, so
  // LISTEN, UNLISTEN, LISTEN of one channel ends up listening.
  _run(client, sql) {
    const p = client.queue.then(() => client.query(sql));
    client.queue = p.catch(() => {});
    return p;
  }

  // A failure here means the connection is going away; the 'error'/'end'
  // handlers deal with that.
  _exec(sql) {
    const c = this.client;
    if (!c) return Promise.resolve(false);
    return this._run(c, sql).then(() => true, (err) => {
      this.log.warn('listen command failed', errFields(err));
      return false;
    });
  }

  async _connect() {
    if (this.stopped) return;
    const client = this.newClient();
    client.queue = Promise.resolve();
    client.on('error', (err) => this._lost(client, err));
    client.on('end', () => this._lost(client, null));
    client.on('notification', (msg) => this._onNotification(msg));
    try {
      await client.connect();
      if (this.stopped || client.dead) throw new Error('connection closed');
      await this._preflight(client);
      if (this.stopped || client.dead) throw new Error('connection closed');
      this.client = client;
      await this._run(client, `LISTEN ${escapeIdentifier(BROADCAST_CHANNEL)}`);
      if (this.mode === 'shared') {
        await this._run(client, `LISTEN ${SHARED_CHANNEL}`);
      } else {
        // Channels are read batch by batch at send time: a user who left
        // meanwhile is skipped, one who arrived LISTENed through acquire().
        const users = [...this.users.keys()];
        for (let i = 0; i < users.length; i += BATCH) {
          const sql = users.slice(i, i + BATCH).filter((u) => this.users.has(u))
            .map((u) => `LISTEN ${escapeIdentifier(userChannel(u))}`).join('; ');
          if (sql) await this._run(client, sql);
        }
      }
    } catch (err) {
      if (err instanceof PreflightError && !client.dead) {
        this.stats.refused++;
        if (!this.everReady) {
          // At start: a matter of configuration; the server exits.
          client.dead = true;
          client.end().catch(() => {});
          this.emit('refused', err);
          return;
        }
        this.log.error('listen connection refused, will retry', { kind: err.kind, reason: err.message, ...err.details });
        this._lost(client, err, { quiet: true });
        return;
      }
      this._lost(client, err);
      return;
    }
    const reconnected = this.stats.connects > 0;
    this.stats.connects++;
    this.attempt = 0;
    this.everReady = true;
    this.ready = true;
    this.log.info('listen connection ready', { mode: this.mode, channels: this.status().channels, reconnected });
    this.emit('ready', { reconnected });
  }

  // The connection's login role, then whether it is a session of its own.
  // Throws PreflightError when it must not be used.
  async _preflight(client) {
    const { dbRole, allowPrivilegedLoginRole } = this.cfg;
    const role = await checkLoginRole(client, dbRole, { needMember: false });
    if (role.problems.length > 0) {
      const err = loginRoleError('LISTEN', role, dbRole);
      if (!allowPrivilegedLoginRole) throw err;
      this.log.warn('ALLOW_PRIVILEGED_LOGIN_ROLE: using a LISTEN connection whose login role has more than it needs', { reason: err.message, ...err.details });
    }
    const probe = await detectPooler(client, async () => {
      const other = this.newClient();
      other.on('error', () => {});
      await other.connect();
      return other;
    });
    if (probe.pooler) throw poolerError(probe.pooler);
    if (!probe.compared) this.log.warn('could not open a second connection to compare with; pooler detection used one connection only');
    client.pid = probe.pid;
  }

  _lost(client, err, { quiet = false } = {}) {
    if (client.dead) return;
    client.dead = true;
    client.end().catch(() => {});
    if (this.client === client) {
      this.client = null;
      this.ready = false;
      this.stats.lost++;
      if (!quiet) this.log.warn('listen connection lost', errFields(err ?? new Error('connection ended')));
      this.emit('down');
    } else if (!this.stopped && !quiet) {
      this.log.warn('listen connection failed', errFields(err ?? new Error('connection ended')));
    }
    if (this.stopped) return;
    // 100 ms, 200 ms, ... capped (5 s by default), with ±20 % jitter so a
    // fleet of gateways does not reconnect in lockstep.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), backoff(this.attempt++, this.cfg.reconnectMaxMs));
  }

  // A silently dead network (no RST) would otherwise go unnoticed until TCP
  // keepalive gives up; a query that does not come back is a lost connection.
  async _heartbeat() {
    const c = this.client;
    if (!c || !this.ready) return;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('heartbeat timed out')), HEARTBEAT_TIMEOUT_MS);
    });
    try {
      const res = await Promise.race([this._run(c, 'SELECT pg_backend_pid() AS pid'), timeout]);
      const pid = Number(res?.rows?.[0]?.pid);
      if (c.pid !== undefined && pid !== c.pid) {
        // One connection, another server process: only a pooler does that.
        const err = poolerError(`the server process of the LISTEN connection changed from pid ${c.pid} to ${pid}`);
        this.stats.refused++;
        this.log.error('listen connection refused, will retry', { kind: err.kind, reason: err.message, ...err.details });
        this._lost(c, err, { quiet: true });
      }
    } catch (err) {
      this._lost(c, err);
      c.connection?.stream?.destroy();
    } finally {
      clearTimeout(timer);
    }
  }

  _onNotification({ channel, payload }) {
    const at = performance.now();          // for the delivery latency
    this.stats.received++;
    const r = route(this.mode, channel, payload);
    if (r === null) return;                 // not a channel of ours
    if (r.broadcast !== undefined) {
      // A shared change: every device here may be moved by it.  Even one
      // that does not parse: catching up is always safe.
      this.stats.broadcasts++;
      if (r.broadcast === null) this.log.warn('malformed broadcast, catching every device up', { channel });
      this.emit('broadcast', r.broadcast, at);
      return;
    }
    if (r.userId === null) {
      // shared mode: a payload without a user id cannot reach anyone
      this.stats.malformed++;
      this.log.warn('malformed notification dropped', { channel });
      return;
    }
    if (!this.users.has(r.userId)) return;  // shared mode: nobody of this user is here
    this.stats.routed++;
    // A payload that did not parse, or lacks a usable version, still goes
    // to the user's devices (per-user mode: the channel names the user):
    // they catch up with state_sync rather than trust or ignore it.
    this.emit('notification', r.userId, r.msg, at);
  }
}

// Which user a notification is for: {userId, msg} (msg: the parsed payload,
// or null when it is not JSON), {userId: null} when it cannot be told (shared
// mode, no user id), {broadcast: msg} for a shared change (msg: the payload
// when it is a JSON object with a string type, else null), or null for a
// channel that is not ours.
export function route(mode, channel, payload) {
  let msg;
  try {
    msg = JSON.parse(payload);
  } catch {
    msg = null;
  }
  if (channel === BROADCAST_CHANNEL) {
    const ok = msg !== null && typeof msg === 'object' && !Array.isArray(msg) && typeof msg.type === 'string';
    return { broadcast: ok ? msg : null };
  }
  if (mode === 'shared') {
    if (channel !== SHARED_CHANNEL) return null;
    const userId = msg?.user_id;
    return isUuid(userId) ? { userId: userId.toLowerCase(), msg } : { userId: null };
  }
  if (!channel.startsWith('user:')) return null;
  return { userId: channel.slice(5), msg };
}
