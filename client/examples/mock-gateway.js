// A stand-in for the roastr_state gateway, for the tests and the example
// page: the protocol of the gateway (Socket.IO state_update / state_sync
// with the gateway's relay rule and the cursor's history, the `patch`
// event with its ack, GET /api/state/full and /api/state/sync) over the
// in-memory server model
// instead of PostgreSQL.  The token is the user id (no JWT here).
// Optionally serves the example page's files (static.js) on the same port.
import http from 'node:http';
import { Server } from 'socket.io';
import { staticFiles } from './static.js';
import { ServerModel } from '../test/support/model.js';

const complete = (msg) => Array.isArray(msg.fields) && msg.fields.every((f) => {
  const [sec, k] = f.split('.');
  const o = msg.data?.[sec];
  return o !== null && typeof o === 'object' && Object.hasOwn(o, k);
});

export function createMockGateway({ staticDir = null, refuseSockets = false, httpSync = true } = {}) {
  const users = new Map();   // user id -> {model, devices:Set}
  const user = (id) => {
    if (!users.has(id)) {
      const model = new ServerModel({ userId: id });
      const u = { model, devices: new Set() };
      model.onNotify((msg) => {
        for (const d of u.devices) relay(u, d, msg);
      });
      users.set(id, u);
    }
    return users.get(id);
  };
  // seen: the cursor and history of every connect and HTTP sync, {via, cursor, history}
  const ctl = { refuseSockets, httpSync, seen: [] };
  const line = (h) => (typeof h === 'string' ? h.split('.').slice(0, 2).join('.') : null);
  const files = staticDir ? staticFiles(staticDir) : null;

  // The gateway's rule: state_update at cursor + 1 of the device's history
  // when complete, else a state_sync from the device's cursor and history
  // (a notification of another history always).
  function relay(u, d, msg) {
    if (d.history !== null && line(msg.history) !== line(d.history)) return syncDevice(u, d);
    if (msg.version <= d.cursor) return;
    if (msg.version === d.cursor + 1 && complete(msg)) {
      d.socket.emit('state_update', { type: msg.type, data: msg.data, version: msg.version, fields: msg.fields, history: msg.history });
      d.cursor = msg.version;
      d.history = msg.history;
    } else {
      syncDevice(u, d);
    }
  }
  function syncDevice(u, d, first = false) {
    const r = u.model.sync(d.cursor, d.history);
    if (first || r.reset || r.changes.length > 0 || r.cursor !== d.cursor || line(r.history) !== line(d.history)) {
      d.socket.emit('state_sync', { changes: r.changes, cursor: r.cursor, history: r.history, reset: r.reset });
      d.history = r.history;
    }
    d.cursor = r.cursor;
  }

  const bearer = (req) => /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? null;
  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/healthz') return json(res, 200, { status: 'ok', mock: true });
    // What the service does in real life (consume_roasts, a Polar webhook,
    // another device), for the example page's buttons.
    if (url.pathname.startsWith('/mock/') && req.method === 'POST') {
      const token = bearer(req);
      if (!token) return json(res, 401, { error: 'missing token' });
      const m = user(token).model;
      try {
        if (url.pathname === '/mock/consume') return json(res, 200, m.consume(Number(url.searchParams.get('n') ?? 1)));
        if (url.pathname === '/mock/plan') return json(res, 200, m.patch({ changes: { 'subscription.plan': url.searchParams.get('plan') } }, { service: true, by: 'service' }));
        if (url.pathname === '/mock/patch') {
          return json(res, 200, m.patch({ changes: JSON.parse(url.searchParams.get('changes') ?? '{}') }, { by: 'other' }));
        }
      } catch (e) {
        return json(res, 400, { code: e.code, message: e.message });
      }
      return json(res, 404, { error: 'not found' });
    }
    if (url.pathname.startsWith('/api/state/')) {
      const token = bearer(req);
      if (!token) return json(res, 401, { success: false, error: { code: 'unauthorized', message: 'missing token' } });
      if (!ctl.httpSync) return json(res, 503, { success: false, error: { code: 'unavailable', message: 'off' } });
      const u = user(token);
      if (url.pathname === '/api/state/full') return json(res, 200, { success: true, data: u.model.full() });
      if (url.pathname === '/api/state/sync') {
        const since = Number(url.searchParams.get('since') ?? 0);
        const history = url.searchParams.get('history');
        if (!Number.isSafeInteger(since) || since < 0) return json(res, 400, { success: false, error: { code: '22023', message: 'cursor must not be negative' } });
        ctl.seen.push({ via: 'http', cursor: since, history });
        try {
          return json(res, 200, { success: true, ...u.model.sync(since, history) });
        } catch (e) {
          return json(res, 400, { success: false, error: { code: e.code, message: e.message } });
        }
      }
      return json(res, 404, { success: false, error: { code: 'not_found', message: 'not found' } });
    }
    if (files?.(req, res)) return;
    json(res, 404, { error: 'not found' });
  });

  const io = new Server(server, { serveClient: false, cors: { origin: true } });
  io.use((socket, next) => {
    const { token, cursor = 0, history = null } = socket.handshake.auth ?? {};
    const refuse = (code, message) => next(Object.assign(new Error(message), { data: { code } }));
    if (ctl.refuseSockets) return refuse('unavailable', 'database unavailable, retry later');
    if (typeof token !== 'string' || token === '' || token === 'bad') return refuse('unauthorized', 'invalid token');
    if (!Number.isSafeInteger(cursor) || cursor < 0) return refuse('bad_request', 'cursor must be a non-negative integer');
    if (history !== null && !(typeof history === 'string' && /^[0-9]+\.[0-9]+(\.[0-9A-F]+)?$/.test(history))) return refuse('bad_request', 'history must be the history token of the cursor, as the server sent it');
    ctl.seen.push({ via: 'socket', cursor, history });
    socket.data = { userId: token, cursor, history };
    next();
  });
  io.on('connection', (socket) => {
    const u = user(socket.data.userId);
    const d = { socket, cursor: socket.data.cursor, history: socket.data.history };
    u.devices.add(d);
    socket.on('disconnect', () => u.devices.delete(d));
    socket.on('patch', (req, ack) => {
      if (typeof ack !== 'function') return;
      try {
        ack(u.model.patch({ changes: req?.changes, base_version: req?.base_version ?? null, mutation_id: req?.mutation_id ?? null }));
      } catch (e) {
        ack({ code: e.code ?? 'XX000', message: e.message, detail: e.detail ? JSON.parse(e.detail) : null });
      }
    });
    syncDevice(u, d, true);
  });

  return {
    server,
    io,
    user,
    ctl,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve) => server.listen(port, host, () => resolve(`http://${host}:${server.address().port}`)));
    },
    disconnectAll() {
      io.disconnectSockets(true);
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections?.();
        io.close(() => resolve());
      });
    },
  };
}
