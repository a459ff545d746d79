// The Socket.IO side: who may connect (token, channel, the database's
// authorize_channel), and a Device per connection.
import { AuthError } from './auth.js';
import { Device } from './device.js';
import { errFields } from './log.js';
import { parseChannel, parseCursor } from './validate.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

// A connect_error for the client: err.message plus err.data.code.
function refusal(code, message) {
  const err = new Error(message);
  err.data = { code };
  return err;
}

// deps: verify (auth.js), db (db.js), listener (acquire/release), devices
// (device.js Devices), stats (counters), log, cfg, syncSlot (limiter).
export function attachSockets(io, { verify, db, listener, devices, stats, log, cfg, syncSlot }) {
  // Authentication and authorization, before the connection is accepted.
  io.use(async (socket, next) => {
    const auth = socket.handshake.auth ?? {};
    const refuse = (code, message, fields = {}) => {
      stats.refused++;
      log.info('connection refused', { reason: message, ...fields });
      next(refusal(code, message));
    };
    let id;
    try {
      id = await verify(auth.token);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      return refuse('unauthorized', err.message, err.jose ? { jose: err.jose } : {});
    }
    const ch = parseChannel(auth.channel, id.sub);
    if (!ch) return refuse('bad_request', 'channel must be user:<uuid>');
    const cursor = parseCursor(auth.cursor);
    if (cursor === null) return refuse('bad_request', 'cursor must be a non-negative integer');

    let ok;
    try {
      ok = await db.authorizeChannel(id.claims, ch.channel);
    } catch (err) {
      if (err.code !== '42501') {
        log.warn('authorize_channel failed', errFields(err));
        return refuse('unavailable', 'database unavailable, retry later');
      }
      ok = false; // e.g. EXECUTE revoked: the database says no
    }
    if (!ok) return refuse('forbidden', 'not authorized for this channel', { sub: id.sub, channel: ch.channel });
    socket.data = { userId: ch.userId, channel: ch.channel, claims: id.claims, cursor, exp: id.exp };
    next();
  });

  io.on('connection', async (socket) => {
    const { userId, channel, claims, cursor, exp } = socket.data;
    const dev = new Device({
      userId,
      cursor,
      emit: (event, payload) => socket.emit(event, payload),
      disconnect: () => socket.disconnect(true),
      sync: (from) => syncSlot(() => db.stateSync(claims, userId, from)),
      stats,
      log,
      retryCapMs: cfg.reconnectMaxMs,
    });
    devices.add(dev);
    socket.join(channel);
    log.info('device connected', { user: userId, socket: socket.id, cursor });

    // The token's expiry ends the connection; the client reconnects with a
    // fresh token and its cursor.
    const expiry = setTimeout(() => dev.refuse('token_expired'),
      Math.max(0, Math.min(exp * 1000 - Date.now(), MAX_TIMER_MS)));

    socket.on('disconnect', (reason) => {
      dev.close();
      clearTimeout(expiry);
      devices.remove(dev);
      listener.release(userId);
      log.info('device disconnected', { user: userId, socket: socket.id, reason });
    });

    // LISTEN first, then read: a change committed after the sync's snapshot
    // is then certain to be notified.
    await listener.acquire(userId);
    dev.sync();
  });
}
