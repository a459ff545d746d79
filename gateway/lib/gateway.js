// The gateway: Socket.IO server, device authentication and authorization,
// relaying of notifications with the gap rule, catch-up through state_sync,
// health endpoint.  server.js runs it; README.md describes the protocol.
import http from 'node:http';
import { Server } from 'socket.io';
import { jwtVerify, errors as joseErrors } from 'jose';
import { errFields } from './log.js';
import { Db } from './db.js';
import { Listener } from './listener.js';
import { decide, CAUSES } from './device.js';

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const UUID_RE = new RegExp(`^${UUID}$`, 'i');
const CHANNEL_RE = new RegExp(`^user:(${UUID})$`);
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_SYNC_LAG_TRIES = 20;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// At most n promises from fn() at once; the rest wait in line.
function limiter(n) {
  let active = 0;
  const queue = [];
  const next = () => {
    if (active >= n || queue.length === 0) return;
    active++;
    const { fn, resolve, reject } = queue.shift();
    fn().then(resolve, reject).finally(() => {
      active--;
      next();
    });
  };
  return (fn) => new Promise((resolve, reject) => {
    queue.push({ fn, resolve, reject });
    next();
  });
}

// A connect_error for the client: err.message plus err.data.code.
function refusal(code, message) {
  const err = new Error(message);
  err.data = { code };
  return err;
}

// Accepts a cursor as a non-negative integer or a string of digits.
function parseCursor(raw) {
  if (raw === undefined || raw === null) return 0;
  const n = typeof raw === 'string' && /^[0-9]{1,16}$/.test(raw) ? Number(raw) : raw;
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

export function createGateway(cfg, log) {
  const db = new Db(cfg, log);
  const listener = new Listener(cfg, log);
  const syncSlot = limiter(cfg.poolMax);
  const devices = new Map(); // user id -> Set<Device>
  const stats = { refused: 0, relayed: 0, syncs: 0, syncFailures: 0, catchups: Object.fromEntries(CAUSES.map((c) => [c, 0])) };

  // One connected socket.  `cursor` is the version the device is known to
  // hold: the one it connected with, then the last state_update or
  // state_sync it was sent (Socket.IO delivers in order on one connection;
  // a device that loses the connection reconnects with its own cursor).
  class Device {
    constructor(socket, userId, claims, cursor) {
      Object.assign(this, { socket, userId, claims, cursor });
      this.want = 0;          // highest version announced by a notification
      this.syncing = false;
      this.dirty = false;     // a sync was asked for while one was running
      this.closed = false;
      this.answered = false;  // the connect-time state_sync was sent
    }

    // The rule is decide() (device.js): a notification is relayed only when
    // it is all that changed at cursor + 1; anything else, including a
    // payload that cannot be trusted, becomes a state_sync from the cursor.
    // While a sync runs, `want` makes it go on until it has reached every
    // version announced meanwhile, and `dirty` runs it again for an
    // announcement without a usable version.
    notify(msg) {
      if (this.closed) return;
      const d = decide(msg, this.cursor);
      if (d.action === 'drop') return;
      const v = msg?.version;
      if (Number.isSafeInteger(v) && v > this.cursor) this.want = Math.max(this.want, v);
      else this.dirty = true;   // no usable version: sync (again) all the same
      if (this.syncing) return;
      if (d.action === 'relay') {
        this.socket.emit('state_update', { type: msg.type, data: msg.data, version: msg.version, fields: msg.fields });
        this.cursor = msg.version;
        stats.relayed++;
        return;
      }
      stats.catchups[d.cause]++;
      this.sync();
    }

    sync() {
      this.dirty = true;
      if (!this.syncing) this._run();
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
            stats.syncs++;
            res = await syncSlot(() => db.stateSync(this.claims, this.userId, from));
          } catch (err) {
            stats.syncFailures++;
            if (err.code === '42501' || err.code === 'PT404' || err.code?.startsWith('22')) {
              // The database will not let this device read the state (no
              // such user, grants changed, a cursor it rejects): let it go.
              this.refuse(err.code === 'PT404' ? 'no_state' : err.code === '42501' ? 'forbidden' : 'bad_request');
              return;
            }
            failures++;
            log.warn('state_sync failed, will retry', { user: this.userId, ...errFields(err) });
            this.dirty = true;
            await sleep(Math.min(100 * 2 ** failures, cfg.reconnectMaxMs));
            continue;
          }
          failures = 0;
          if (this.closed) return;
          if (!this.answered || res.changes.length > 0 || res.cursor !== from) {
            this.socket.emit('state_sync', { changes: res.changes, cursor: res.cursor });
            this.answered = true;
          }
          this.cursor = res.cursor;
          if (this.cursor < this.want && res.cursor === from) {
            // A notification named a version this snapshot did not show
            // yet; it cannot stay invisible for long.
            if (++lag > MAX_SYNC_LAG_TRIES) {
              log.warn('state_sync stays behind an announced version', { user: this.userId, cursor: this.cursor, announced: this.want });
              this.want = this.cursor;
              break;
            }
            await sleep(10 * lag);
          } else {
            lag = 0;
          }
        }
      } finally {
        this.syncing = false;
      }
    }

    refuse(code) {
      if (this.closed) return;
      this.socket.emit('gateway_error', { code });
      this.socket.disconnect(true);
    }
  }

  listener.on('notification', (userId, msg) => {
    for (const d of devices.get(userId) ?? []) d.notify(msg);
  });
  // Notifications sent while the connection was down are lost: every
  // device catches up from its cursor, now that the channels are LISTENed
  // again (so nothing can fall between the sync's snapshot and the LISTEN).
  // The same at the first connection, for devices that came before it.
  listener.on('ready', () => {
    let n = 0;
    for (const set of devices.values()) for (const d of set) { d.sync(); n++; }
    if (n > 0) log.info('catching up every device', { devices: n });
  });

  const httpServer = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      const body = health();
      res.writeHead(body.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
  });
  const io = new Server(httpServer, {
    serveClient: false,
    ...(cfg.corsOrigin ? { cors: { origin: cfg.corsOrigin } } : {}),
  });

  function health() {
    let n = 0;
    for (const set of devices.values()) n += set.size;
    const listen = listener.status();
    return {
      status: listen.connected ? 'ok' : 'degraded',
      listen,
      rooms: devices.size,
      devices: n,
      ...stats,
      rss_bytes: process.memoryUsage().rss,
      uptime_s: Math.round(process.uptime()),
    };
  }

  // Authentication and authorization, before the connection is accepted.
  io.use(async (socket, next) => {
    const auth = socket.handshake.auth ?? {};
    const refuse = (code, message, fields = {}) => {
      stats.refused++;
      log.info('connection refused', { reason: message, ...fields });
      next(refusal(code, message));
    };
    if (typeof auth.token !== 'string' || auth.token === '') return refuse('unauthorized', 'missing token');
    let payload;
    try {
      ({ payload } = await jwtVerify(auth.token, cfg.jwtKey, {
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'sub'],
        audience: cfg.jwtAudience,
      }));
    } catch (err) {
      return refuse('unauthorized', err instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token',
        { jose: err.code });
    }
    if (typeof payload.sub !== 'string' || !UUID_RE.test(payload.sub)) return refuse('unauthorized', 'sub is not a uuid');
    const channel = auth.channel ?? `user:${payload.sub.toLowerCase()}`;
    const m = typeof channel === 'string' ? CHANNEL_RE.exec(channel) : null;
    if (!m) return refuse('bad_request', 'channel must be user:<uuid>');
    const cursor = parseCursor(auth.cursor);
    if (cursor === null) return refuse('bad_request', 'cursor must be a non-negative integer');

    const claims = JSON.stringify(payload);
    let ok;
    try {
      ok = await db.authorizeChannel(claims, channel);
    } catch (err) {
      if (err.code !== '42501') {
        log.warn('authorize_channel failed', errFields(err));
        return refuse('unavailable', 'database unavailable, retry later');
      }
      ok = false; // e.g. EXECUTE revoked: the database says no
    }
    if (!ok) return refuse('forbidden', 'not authorized for this channel', { sub: payload.sub, channel });
    socket.data = { userId: m[1], channel, claims, cursor, exp: payload.exp };
    next();
  });

  io.on('connection', async (socket) => {
    const { userId, channel, claims, cursor, exp } = socket.data;
    const dev = new Device(socket, userId, claims, cursor);
    if (!devices.has(userId)) devices.set(userId, new Set());
    devices.get(userId).add(dev);
    socket.join(channel);
    log.info('device connected', { user: userId, socket: socket.id, cursor });

    // The token's expiry ends the connection; the client reconnects with a
    // fresh token and its cursor.
    const expiry = setTimeout(() => dev.refuse('token_expired'),
      Math.max(0, Math.min(exp * 1000 - Date.now(), MAX_TIMER_MS)));

    socket.on('disconnect', (reason) => {
      dev.closed = true;
      clearTimeout(expiry);
      const set = devices.get(userId);
      set.delete(dev);
      if (set.size === 0) devices.delete(userId);
      listener.release(userId);
      log.info('device disconnected', { user: userId, socket: socket.id, reason });
    });

    // LISTEN first, then read: a change committed after the sync's snapshot
    // is then certain to be notified.
    await listener.acquire(userId);
    dev.sync();
  });

  // Graceful stop: refuse new connections, disconnect every device (their
  // clients reconnect, to another instance, with their cursors), then close
  // the database connections.
  let closing = false;
  async function close() {
    if (closing) return;
    closing = true;
    const closed = io.close();
    httpServer.closeAllConnections?.();
    await closed;
    await listener.stop();
    await db.end();
  }

  function listen() {
    listener.start();
    return new Promise((resolve) => {
      httpServer.listen(cfg.port, cfg.host, () => {
        const { port } = httpServer.address();
        log.info('listening', { port, mode: cfg.listenMode });
        resolve(port);
      });
    });
  }

  return { listen, close, health };
}
