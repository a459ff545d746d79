// The Socket.IO side: who may connect (token, channel, the database's
// authorize_channel), a Device per connection, and the `patch` event.
import { AuthError, expired } from './auth.js';
import { coalescer } from './coalesce.js';
import { Device } from './device.js';
import { errorBody, UNAVAILABLE } from './errors.js';
import { errFields } from './log.js';
import { noMetrics } from './metrics.js';
import { parseChannel, parseCursor, parseHistory, validatePatch } from './validate.js';

const MAX_TIMER_MS = 2 ** 31 - 1;
// Patches of one device run one at a time, in the order sent; beyond this
// many waiting, a patch is answered at once with 53400 (wait for the acks).
export const MAX_PENDING_PATCHES = 32;

// A connect_error for the client: err.message plus err.data.code.
function refusal(code, message) {
  const err = new Error(message);
  err.data = { code };
  return err;
}

// The ack of socket.emit('patch', msg, ack), for a device with `claims`
// (JSON text) and token expiry `exp`: {version, applied, history} on
// success (history: the token of the history the version belongs to, when
// the extension gives one), else
// {code, message[, detail]}.  The shape is checked before the database is
// asked; the database decides the rest (42501 service fields, 22023, PT409
// with its JSON detail, PT402, PT404).  08006: the database could not be
// reached or the outcome is unknown; retry with the same mutation_id.
// metrics: patch(outcome) is told 'ok' or the ack's code.
export async function handlePatch({ db, log, stats, metrics = noMetrics }, { claims, exp, userId }, msg) {
  const v = validatePatch(msg);
  if (!v.ok) {
    stats.refused++;
    metrics.patch('22023');
    return { code: '22023', message: v.message };
  }
  if (expired(exp)) {
    stats.refused++;
    metrics.patch('PT401');
    return { code: 'PT401', message: 'token expired' };
  }
  try {
    const r = await db.patch(claims, v.changes, v.baseVersion, v.mutationId);
    stats.applied++;
    metrics.patch('ok');
    return typeof r.history === 'string'
      ? { version: r.version, applied: r.applied, history: r.history }
      : { version: r.version, applied: r.applied };
  } catch (err) {
    const body = errorBody(err, 'the database could not be reached; retry with the same mutation_id');
    if (body.code === UNAVAILABLE) {
      stats.failed++;
      log.warn('patch failed', { user: userId, ...errFields(err) });
    } else {
      stats.refused++;
      log.info('patch refused', { user: userId, code: body.code });
    }
    metrics.patch(body.code);
    return body;
  }
}

// deps: verify (auth.js), db (db.js), listener (acquire/release), devices
// (device.js Devices), stats (counters), metrics (metrics.js), log, cfg,
// syncSlot (limiter).
export function attachSockets(io, { verify, db, listener, devices, stats, metrics = noMetrics, log, cfg, syncSlot }) {
  // identical state_syncs of one user's devices waiting for the pool share
  // one query (coalesce.js): a broadcast catches every device up at once
  const sharedSync = coalescer(syncSlot, () => metrics.syncShared());
  // Authentication and authorization, before the connection is accepted.
  io.use(async (socket, next) => {
    const auth = socket.handshake.auth ?? {};
    const refuse = (code, message, fields = {}) => {
      stats.refused++;
      metrics.refusedConnection(code);
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
    const history = parseHistory(auth.history);
    if (history === undefined) return refuse('bad_request', 'history must be the history token of the cursor, as the server sent it');

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
    socket.data = { userId: ch.userId, channel: ch.channel, claims: id.claims, role: id.role, cursor, history, exp: id.exp };
    next();
  });

  io.on('connection', async (socket) => {
    const { userId, channel, claims, role, cursor, history, exp } = socket.data;
    // what a sync's answer depends on besides the cursor: the user and the
    // caller's role (both from the verified token)
    const who = JSON.stringify([userId, role]);
    const dev = new Device({
      userId,
      cursor,
      history,
      emit: (event, payload) => socket.emit(event, payload),
      disconnect: () => socket.disconnect(true),
      sync: (from, fromHistory) => sharedSync(`${who}|${from}|${fromHistory}`,
        () => db.stateSync(claims, userId, from, fromHistory)),
      stats,
      log,
      metrics,
      retryCapMs: cfg.reconnectMaxMs,
    });
    devices.add(dev);
    socket.join(channel);
    log.info('device connected', { user: userId, socket: socket.id, cursor, history });

    // The token's expiry ends the connection; the client reconnects with a
    // fresh token and its cursor.
    const expiry = setTimeout(() => dev.refuse('token_expired'),
      Math.max(0, Math.min(exp * 1000 - Date.now(), MAX_TIMER_MS)));

    // A device's patches, one at a time in the order sent.
    let queue = Promise.resolve();
    let pending = 0;
    socket.on('patch', (msg, ack) => {
      if (typeof ack !== 'function') {
        log.info('patch without an ack ignored', { user: userId, socket: socket.id });
        return;
      }
      if (pending >= MAX_PENDING_PATCHES) {
        stats.patches.refused++;
        metrics.patch('53400');
        ack({ code: '53400', message: `more than ${MAX_PENDING_PATCHES} patches waiting; wait for their acks` });
        return;
      }
      pending++;
      queue = queue.then(() => handlePatch({ db, log, stats: stats.patches, metrics }, { claims, exp, userId }, msg))
        .catch((err) => {
          log.error('patch crashed', errFields(err));
          metrics.patch(UNAVAILABLE);
          return { code: UNAVAILABLE, message: 'the patch could not be run; retry with the same mutation_id' };
        })
        .then((answer) => { pending--; ack(answer); });
    });

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
    dev.sync('connect');
  });
}
