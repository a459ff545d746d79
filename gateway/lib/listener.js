// The one PostgreSQL connection that LISTENs for every device.
//
// per-user mode: LISTEN "user:<id>" when a user's first device arrives,
//   UNLISTEN when the last one leaves.
// shared mode:   LISTEN roastr_state once; payloads carry user_id, and those
//   of users with no device here are dropped in the gateway.
//
// When the connection is lost it is reopened with exponential backoff, every
// channel still in use is LISTENed again, and 'ready' is emitted with
// {reconnected: true}: notifications sent meanwhile are gone, so the server
// then brings every device up to date through state_sync.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { errFields } from './log.js';
import { backoff } from './backoff.js';
import { isUuid } from './validate.js';

const { escapeIdentifier } = pg;
const SHARED_CHANNEL = 'roastr_state';
const BATCH = 500;                      // LISTEN statements per round trip on reconnect
const HEARTBEAT_TIMEOUT_MS = 5000;

export const userChannel = (userId) => `user:${userId}`;

export class Listener extends EventEmitter {
  constructor(cfg, log) {
    super();
    this.cfg = cfg;
    this.log = log;
    this.mode = cfg.listenMode;
    this.users = new Map();     // user id -> devices connected here
    this.listening = new Map(); // per-user: user id -> promise of its LISTEN
    this.client = null;         // usable connection, null while down
    this.ready = false;         // connected and every channel LISTENed
    this.stopped = false;
    this.attempt = 0;
    this.timer = null;
    this.stats = { connects: 0, lost: 0, received: 0, routed: 0, malformed: 0 };
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
    const client = new pg.Client({ ...this.cfg.pg, application_name: 'roastr_state_gateway_listen', keepAlive: true });
    client.queue = Promise.resolve();
    client.on('error', (err) => this._lost(client, err));
    client.on('end', () => this._lost(client, null));
    client.on('notification', (msg) => this._onNotification(msg));
    try {
      await client.connect();
      if (this.stopped || client.dead) throw new Error('connection closed');
      this.client = client;
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
      this._lost(client, err);
      return;
    }
    const reconnected = this.stats.connects > 0;
    this.stats.connects++;
    this.attempt = 0;
    this.ready = true;
    this.log.info('listen connection ready', { mode: this.mode, channels: this.status().channels, reconnected });
    this.emit('ready', { reconnected });
  }

  _lost(client, err) {
    if (client.dead) return;
    client.dead = true;
    client.end().catch(() => {});
    if (this.client === client) {
      this.client = null;
      this.ready = false;
      this.stats.lost++;
      this.log.warn('listen connection lost', errFields(err ?? new Error('connection ended')));
      this.emit('down');
    } else if (!this.stopped) {
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
      await Promise.race([this._run(c, 'SELECT 1'), timeout]);
    } catch (err) {
      this._lost(c, err);
      c.connection?.stream?.destroy();
    } finally {
      clearTimeout(timer);
    }
  }

  _onNotification({ channel, payload }) {
    this.stats.received++;
    const r = route(this.mode, channel, payload);
    if (r === null) return;                 // not a channel of ours
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
    this.emit('notification', r.userId, r.msg);
  }
}

// Which user a notification is for: {userId, msg} (msg: the parsed payload,
// or null when it is not JSON), {userId: null} when it cannot be told (shared
// mode, no user id), or null for a channel that is not ours.
export function route(mode, channel, payload) {
  let msg;
  try {
    msg = JSON.parse(payload);
  } catch {
    msg = null;
  }
  if (mode === 'shared') {
    if (channel !== SHARED_CHANNEL) return null;
    const userId = msg?.user_id;
    return isUuid(userId) ? { userId: userId.toLowerCase(), msg } : { userId: null };
  }
  if (!channel.startsWith('user:')) return null;
  return { userId: channel.slice(5), msg };
}
