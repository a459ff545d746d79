// gatewayTransport: the roastr_state gateway (gateway/README.md).
//   push    Socket.IO: state_update, state_sync (from the cursor and its
//           history the device connects with, auth {token, cursor, history};
//           reset: true when the cursor's history is not the server's)
//   write   socket.emit('patch', {changes, base_version, mutation_id}, ack)
//   pull    GET /api/state/sync?since=N&history=H (also the fallback when
//           the socket cannot connect: polled until the socket is back)
// `io` is socket.io-client's io (passed in, so this file imports nothing).
import { StateError, networkError } from './errors.js';

export function gatewayTransport({
  url,
  token,
  io,
  httpUrl = url,
  fetch = globalThis.fetch?.bind(globalThis),
  pollMs = 15000,
  fallbackAfterMs = 3000,
  ackTimeoutMs = 10000,
  reconnectMinMs = 500,
  reconnectMaxMs = 30000,
  socketOptions = {},
} = {}) {
  if (typeof io !== 'function') throw new TypeError("gatewayTransport: pass socket.io-client's io");
  if (!url) throw new TypeError('gatewayTransport: url is required');
  const getToken = async () => (typeof token === 'function' ? token() : token);
  const base = String(httpUrl).replace(/\/+$/, '');

  let h = null;
  let socket = null;
  let closed = false;
  let socketUp = false;
  let httpUp = false;
  let error = null;
  let authCursor = 0;
  let authHistory = null;
  let gwCursor = null;     // what the gateway believes this device holds
  let gwHistory = null;    // ... and the history of that cursor
  let pollTimer = null;
  let fallbackTimer = null;
  let reconnectTimer = null;
  let refusals = 0;

  const report = () => h?.onStatus({
    online: socketUp || httpUp,
    writable: socketUp,
    via: socketUp ? 'socket' : httpUp ? 'http' : null,
    error,
  });

  async function get(path) {
    let res;
    try {
      res = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${await getToken()}` } });
    } catch (err) {
      throw networkError(`gateway unreachable: ${err.message}`, err);
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (res.status === 401) throw new StateError('AUTH', body?.error?.message ?? 'token refused', { status: 401 });
    if (!res.ok || !body || body.success === false) {
      const code = body?.error?.code ?? (res.status >= 500 || res.status === 0 ? 'NETWORK' : `HTTP_${res.status}`);
      throw new StateError(code, body?.error?.message ?? `HTTP ${res.status}`, { status: res.status, detail: body?.error?.detail ?? null });
    }
    return body;
  }

  // history: the token of the cursor `since`, or null (a bare cursor).
  async function sync(since, history = null) {
    const h = typeof history === 'string' ? `&history=${encodeURIComponent(history)}` : '';
    const body = await get(`/api/state/sync?since=${encodeURIComponent(since)}${h}`);
    return {
      changes: body.changes,
      cursor: body.cursor,
      history: typeof body.history === 'string' ? body.history : null,
      reset: body.reset === true,
      lastSyncedAt: body.lastSyncedAt ?? null,
    };
  }

  // While the socket is down: poll, so the device still follows the server.
  function startFallback() {
    if (closed || socketUp || pollTimer || fallbackTimer) return;
    fallbackTimer = setTimeout(() => {
      fallbackTimer = null;
      poll();
    }, fallbackAfterMs);
  }
  async function poll() {
    if (closed || socketUp) return;
    const since = h.cursor();
    const fromHistory = since > 0 ? (h.history?.() ?? null) : null;
    try {
      const res = await sync(since, fromHistory);
      if (closed || socketUp) return;
      httpUp = true;
      h.onSync({ ...res, since, fromHistory });
    } catch (err) {
      httpUp = false;
      if (err.code === 'AUTH') h.onAuthError?.(err);
    }
    if (closed || socketUp) return;
    report();
    pollTimer = setTimeout(() => {
      pollTimer = null;
      poll();
    }, pollMs);
  }
  function stopFallback() {
    clearTimeout(pollTimer);
    clearTimeout(fallbackTimer);
    pollTimer = null;
    fallbackTimer = null;
    httpUp = false;
  }

  // Socket.IO retries a lost transport by itself, but not a refused
  // connection (connect_error with a code) nor one the server ended.
  function reconnectLater() {
    if (closed || reconnectTimer) return;
    refusals++;
    const delay = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(refusals - 1, 10)) * (0.8 + Math.random() * 0.4);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      if (!closed && !socket.connected) socket.connect();
    }, delay);
  }

  return {
    name: 'gateway',
    settleDelayMs: 300,
    start(handlers) {
      h = handlers;
      socket = io(url, {
        transports: ['websocket'],
        ...socketOptions,
        auth: (cb) => {
          authCursor = h.cursor();
          authHistory = authCursor > 0 ? (h.history?.() ?? null) : null;
          const auth = (t) => cb({ token: t, cursor: authCursor, ...(authHistory !== null ? { history: authHistory } : {}) });
          getToken().then(auth, () => auth(''));
        },
      });
      socket.on('connect', () => {
        socketUp = true;
        refusals = 0;
        error = null;
        gwCursor = authCursor;
        gwHistory = authHistory;
        stopFallback();
        report();
      });
      socket.on('state_update', (msg) => {
        if (Number.isSafeInteger(msg?.version) && (gwCursor === null || msg.version > gwCursor)) gwCursor = msg.version;
        // as the gateway: the payload's history, or the line of the one before
        gwHistory = typeof msg?.history === 'string' ? msg.history : (gwHistory?.split('.').slice(0, 2).join('.') ?? null);
        h.onUpdate(msg);
      });
      socket.on('state_sync', (msg) => {
        // The gateway syncs from the cursor it believes the device holds:
        // the connect cursor, then the last version it sent on this
        // connection (Socket.IO keeps order on one connection).
        const since = Number.isSafeInteger(msg?.since) ? msg.since : gwCursor;
        const fromHistory = gwHistory;
        if (Number.isSafeInteger(msg?.cursor)) gwCursor = msg.cursor;
        gwHistory = typeof msg?.history === 'string' ? msg.history : null;
        h.onSync({ ...msg, since: msg?.reset === true ? undefined : since, fromHistory });
      });
      socket.on('gateway_error', ({ code } = {}) => {
        error = code ?? 'gateway_error';
        if (code === 'token_expired') h.onAuthError?.(new StateError('AUTH', 'token expired'));
      });
      socket.on('disconnect', (reason) => {
        socketUp = false;
        gwCursor = null;
        gwHistory = null;
        report();
        startFallback();
        if (reason === 'io server disconnect') reconnectLater();
      });
      socket.on('connect_error', (err) => {
        socketUp = false;
        error = err?.data?.code ?? 'unreachable';
        if (error === 'unauthorized') h.onAuthError?.(new StateError('AUTH', err.message));
        report();
        startFallback();
        if (err?.data?.code) reconnectLater();
      });
      report();
      startFallback();
    },
    patch(req) {
      if (!socketUp || !socket?.connected) return Promise.reject(networkError('not connected to the gateway'));
      return new Promise((resolve, reject) => {
        socket.timeout(ackTimeoutMs).emit('patch', req, (err, res) => {
          if (err) reject(new StateError('TIMEOUT', 'no answer from the gateway'));
          else if (!res || typeof res !== 'object') reject(networkError('malformed answer to patch'));
          else if (res.code) reject(new StateError(res.code, res.message, { detail: res.detail ?? res.details ?? null, hint: res.hint ?? null }));
          else resolve(res);
        });
      });
    },
    sync,
    async full() {
      return (await get('/api/state/full')).data;
    },
    close() {
      closed = true;
      stopFallback();
      clearTimeout(reconnectTimer);
      socket?.close();
      socketUp = false;
    },
  };
}
