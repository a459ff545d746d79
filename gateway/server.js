// roastr_state reference gateway: relays the extension's notifications to
// Socket.IO rooms "user:<id>", authorized by the database, with catch-up
// through state_sync; takes patches over the socket; serves the state API
// over HTTP.  Configuration comes from the environment; see README.md.
// Usage: JWT_SECRET=... PGHOST=... node server.js
//
// This file only wires the modules of lib/ together:
//   config    the environment, checked
//   log       JSON log lines
//   auth      JWT verification
//   db        queries with a device's claims, as PostgREST runs them
//   listener  the LISTEN connection (per-user or shared), reconnecting
//   device    each device's cursor: relay or catch up
//   socket    Socket.IO: handshake, devices, the patch event
//   http      /healthz, /metrics and /api/state/{full,sync}
//   metrics   Prometheus metrics (prom-client)
//   preflight the login role and the LISTEN session, checked at start
import http from 'node:http';
import { Server } from 'socket.io';
import { loadConfig } from './lib/config.js';
import { createLogger, errFields } from './lib/log.js';
import { createVerifier } from './lib/auth.js';
import { Db } from './lib/db.js';
import { Listener } from './lib/listener.js';
import { CAUSES, Devices } from './lib/device.js';
import { limiter } from './lib/limiter.js';
import { attachSockets } from './lib/socket.js';
import { createHttpHandler } from './lib/http.js';
import { loginRoleError, PreflightError, REFUSED_EXIT } from './lib/preflight.js';
import { backoff } from './lib/backoff.js';
import { createMetrics } from './lib/metrics.js';

let cfg;
try {
  cfg = loadConfig();
} catch (err) {
  process.stderr.write(`gateway: ${err.message}\n`);
  process.exit(2);
}
const log = createLogger(cfg.logLevel);
process.on('unhandledRejection', (err) => log.error('unhandled rejection', errFields(err)));

const stats = {
  refused: 0,
  relayed: 0,
  syncs: 0,
  syncFailures: 0,
  catchups: Object.fromEntries(CAUSES.map((c) => [c, 0])),
  patches: { applied: 0, refused: 0, failed: 0 },
  api: { full: 0, sync: 0, errors: 0 },
};
const db = new Db(cfg, log);
const listener = new Listener(cfg, log);
const devices = new Devices();
const verify = createVerifier(cfg);
const metrics = createMetrics();
metrics.track({ devices: () => devices.size, users: () => devices.users, listenUp: () => (listener.ready ? 1 : 0) });

function health() {
  const listen = listener.status();
  return {
    status: listen.connected ? 'ok' : 'degraded',
    listen,
    rooms: devices.users,
    devices: devices.size,
    ...stats,
    rss_bytes: process.memoryUsage().rss,
    uptime_s: Math.round(process.uptime()),
  };
}

listener.on('notification', (userId, msg, at) => devices.notify(userId, msg, at));
// An operator changed a shared row (a plan's limit, an organization): one
// notification for everyone it moves.  Which devices those are the gateway
// cannot tell without reading the database, so every device catches up
// from its cursor; each state_sync settles its user's change in that
// user's own row, and is empty (and not sent) for a device it does not
// move.  A device already syncing runs once more at most.
listener.on('broadcast', (msg, at) => {
  metrics.broadcast(msg?.type);
  const n = devices.syncAll('broadcast', at);
  log.info('broadcast: catching every device up', { type: msg?.type ?? null, devices: n });
});
// Notifications sent while the connection was down are lost: every device
// catches up from its cursor, now that the channels are LISTENed again (so
// nothing can fall between the sync's snapshot and the LISTEN).  The same at
// the first connection, for devices that came before it.
listener.on('ready', ({ reconnected }) => {
  if (reconnected) metrics.listenReconnect();
  const n = devices.syncAll('reconnect');
  if (n > 0) log.info('catching up every device', { devices: n });
});

const httpServer = http.createServer(createHttpHandler({ verify, db, health, stats: stats.api, metrics, log, corsOrigin: cfg.corsOrigin }));
const io = new Server(httpServer, {
  serveClient: false,
  ...(cfg.corsOrigin ? { cors: { origin: cfg.corsOrigin } } : {}),
});
attachSockets(io, { verify, db, listener, devices, stats, metrics, log, cfg, syncSlot: limiter(cfg.poolMax) });

// Graceful stop: refuse new connections, disconnect every device (their
// clients reconnect, to another instance, with their cursors), then close
// the database connections.
let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  log.info('shutting down', { signal });
  setTimeout(() => {
    log.error('shutdown timed out');
    process.exit(1);
  }, 10000).unref();
  const closed = io.close();
  httpServer.closeAllConnections?.();
  await closed;
  await listener.stop();
  await db.end();
  log.info('stopped');
  process.exit(0);
}
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));

// A refusal at start is a matter of configuration: say why and exit 3.
// (Nothing secret in the message: role names, pids.)
function refuse(err) {
  log.error('refusing to start', { kind: err.kind, reason: err.message, ...err.details });
  process.stderr.write(`gateway: refusing to start: ${err.message}\n`);
  process.exit(REFUSED_EXIT);
}

// Start: the query pool's login role is checked on one of its connections
// (waiting for the database with backoff if it does not answer yet), then
// the LISTEN connection is opened and checked (login role, no transaction
// pooler); only then does the gateway open its port.
async function start() {
  for (let attempt = 0; !stopping; attempt++) {
    try {
      const role = await db.checkLoginRole();
      if (role.problems.length > 0) {
        const err = loginRoleError('query', role, cfg.dbRole);
        if (!cfg.allowPrivilegedLoginRole) refuse(err);
        log.warn('ALLOW_PRIVILEGED_LOGIN_ROLE: using a login role that has more than it needs', { reason: err.message, ...err.details });
      } else {
        log.info('login role checked', { login: role.login, role: cfg.dbRole });
      }
      break;
    } catch (err) {
      if (err instanceof PreflightError) refuse(err);
      log.warn('the database did not answer the start-up check, will retry', errFields(err));
      await new Promise((r) => setTimeout(r, backoff(attempt, cfg.reconnectMaxMs)));
    }
  }
  if (stopping) return;
  listener.once('refused', refuse);
  const first = new Promise((resolve) => listener.once('ready', resolve));
  listener.start();
  await first;
  if (stopping) return;
  httpServer.listen(cfg.port, cfg.host, () => {
    const { port } = httpServer.address();
    log.info('listening', { port, mode: cfg.listenMode });
  });
}
start().catch((err) => {
  log.error('start failed', errFields(err));
  process.exit(1);
});
