// Prometheus metrics (prom-client), served as text at GET /metrics.
//
// The other modules report through the methods of the object createMetrics()
// returns (noMetrics does nothing, for tests and callers that do not care).
// Labels take a few fixed values only: never a user id, a token, a claim or
// anything of a payload.
import client from 'prom-client';

const { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } = client;

// Why a device was sent a state_sync: the five causes of decide() (a
// notification that could not be relayed as it was), plus 'connect' (the
// answer to a device's cursor when it connects), 'reconnect' (every
// device, once the LISTEN connection is up again) and 'broadcast' (every
// device, for an operator's change of a shared row).
export const CATCHUP_CAUSES = Object.freeze(['gap', 'withheld', 'resync', 'malformed', 'history', 'connect', 'reconnect', 'broadcast']);
// The broadcasts counted by type (anything else: 'other').
export const BROADCAST_LABELS = Object.freeze(['plan_limits', 'organization', 'other']);
export const ROUTES = Object.freeze(['/healthz', '/metrics', '/api/state/full', '/api/state/sync']);
export const REFUSAL_CODES = Object.freeze(['unauthorized', 'forbidden', 'bad_request', 'unavailable']);
const SQLSTATE_RE = /^[0-9A-Z]{5}$/;

// Delivery latency buckets, seconds: a relay takes microseconds, a catch-up
// a state_sync round trip, a lagging one its retries.
const DELIVERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const noMetrics = Object.freeze({
  stateUpdate() {},
  catchup() {},
  sync() {},
  syncShared() {},
  syncFailure() {},
  httpBehind() {},
  delivered() {},
  patch() {},
  http() {},
  listenReconnect() {},
  refusedConnection() {},
  broadcast() {},
  track() {},
});

// A patch's outcome as a label: 'ok', or the SQLSTATE-shaped code of its
// ack (PT409, 42501, 22023, 08006, ...), else 'other'.
export const patchLabel = (code) => (code === 'ok' || (typeof code === 'string' && SQLSTATE_RE.test(code)) ? code : 'other');
export const routeLabel = (path) => (ROUTES.includes(path) ? path : 'other');

// defaults: also prom-client's process and Node.js metrics (RSS, CPU,
// event loop lag, heap, handles).
export function createMetrics({ defaults = true, prefix = 'roastr_gateway_' } = {}) {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const source = { devices: () => 0, users: () => 0, listenUp: () => 0 };

  // Gauges read at each scrape.
  new Gauge({
    name: `${prefix}devices`, help: 'Devices (Socket.IO connections) connected to this gateway', registers,
    collect() { this.set(source.devices()); },
  });
  new Gauge({
    name: `${prefix}users`, help: 'Users (rooms) with at least one device connected to this gateway', registers,
    collect() { this.set(source.users()); },
  });
  new Gauge({
    name: `${prefix}listen_up`, help: '1 while the LISTEN connection is up and every channel is LISTENed, else 0', registers,
    collect() { this.set(source.listenUp()); },
  });
  const stateUpdates = new Counter({
    name: `${prefix}state_updates_total`, help: 'Notifications relayed to a device as state_update, as they were', registers,
  });
  const catchups = new Counter({
    name: `${prefix}catchups_total`, registers, labelNames: ['cause'],
    help: 'state_syncs started for a device, by cause: gap, withheld, resync, malformed, history (a notification not relayed as it was; ' +
      'history: of another history than the device\'s cursor, after a failover or restore), ' +
      'connect (a device connected), reconnect (the LISTEN connection came up again), ' +
      'broadcast (an operator changed a shared row: a plan\'s limit, an organization)',
  });
  const broadcasts = new Counter({
    name: `${prefix}broadcasts_total`, registers, labelNames: ['type'],
    help: 'Broadcasts received on roastr_state_broadcast (an operator\'s change of a shared row), by type: plan_limits, organization, other; ' +
      'each catches every device up',
  });
  const syncs = new Counter({ name: `${prefix}state_syncs_total`, help: 'state_syncs run for devices (one per device, shared or not)', registers });
  const syncsShared = new Counter({
    name: `${prefix}state_syncs_shared_total`, registers,
    help: 'state_syncs of a device answered by the query of another device of the same user, role, cursor and history that was still waiting for the pool (no query of their own)',
  });
  const syncFailures = new Counter({
    name: `${prefix}state_sync_failures_total`, help: 'state_sync queries that failed (retried with backoff, or the device let go)', registers,
  });
  const syncBehind = new Counter({
    name: `${prefix}state_sync_behind_total`, registers, labelNames: ['via'],
    help: 'state_sync answered PT503, a standby that had not replayed the device\'s cursor yet, by via: socket (a catch-up, retried ' +
      'with backoff; also in state_sync_failures_total) or http (GET /api/state/sync answered 503)',
  });
  const patches = new Counter({
    name: `${prefix}patches_total`, registers, labelNames: ['code'],
    help: "patch events over the socket by the ack's outcome: ok, or its code (PT409, 42501, 22023, PT402, PT404, PT401, 53400, 08006, ...)",
  });
  const http = new Counter({
    name: `${prefix}http_requests_total`, registers, labelNames: ['route', 'status'],
    help: 'HTTP requests answered by the gateway (not Socket.IO\'s), by route (/healthz, /metrics, /api/state/full, /api/state/sync, other) and status',
  });
  const delivery = new Histogram({
    name: `${prefix}delivery_seconds`, registers, labelNames: ['event'], buckets: DELIVERY_BUCKETS,
    help: 'Seconds from a notification\'s arrival on the LISTEN connection to the state_update (relayed) or state_sync (caught up) ' +
      'that delivered it to a device. Payloads carry no commit time, so this does not include commit -> NOTIFY -> arrival',
  });
  const listenReconnects = new Counter({
    name: `${prefix}listen_reconnects_total`, help: 'Times the LISTEN connection was lost and established again', registers,
  });
  const refused = new Counter({
    name: `${prefix}connections_refused_total`, registers, labelNames: ['code'],
    help: 'Socket.IO connections refused, by connect_error code (unauthorized, forbidden, bad_request, unavailable)',
  });

  // Every label value of a fixed set is exported from the start (at 0), so
  // rate() and absence alerts work before the first event.
  for (const c of CATCHUP_CAUSES) catchups.labels(c).inc(0);
  for (const t of BROADCAST_LABELS) broadcasts.labels(t).inc(0);
  for (const c of REFUSAL_CODES) refused.labels(c).inc(0);
  for (const e of ['state_update', 'state_sync']) delivery.zero({ event: e });
  patches.labels('ok').inc(0);
  for (const v of ['socket', 'http']) syncBehind.labels(v).inc(0);

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    // where the gauges read from: {devices(), users(), listenUp()}
    track(from) { Object.assign(source, from); },
    stateUpdate() { stateUpdates.inc(); },
    catchup(cause) { if (CATCHUP_CAUSES.includes(cause)) catchups.labels(cause).inc(); },
    sync() { syncs.inc(); },
    syncShared() { syncsShared.inc(); },
    // code: the error's SQLSTATE; PT503 is also counted apart
    syncFailure(code) {
      syncFailures.inc();
      if (code === 'PT503') syncBehind.labels('socket').inc();
    },
    // GET /api/state/sync answered PT503
    httpBehind() { syncBehind.labels('http').inc(); },
    delivered(event, seconds) {
      if ((event === 'state_update' || event === 'state_sync') && Number.isFinite(seconds) && seconds >= 0) delivery.labels(event).observe(seconds);
    },
    patch(code) { patches.labels(patchLabel(code)).inc(); },
    http(path, status) { http.labels(routeLabel(path), String(status)).inc(); },
    listenReconnect() { listenReconnects.inc(); },
    refusedConnection(code) { refused.labels(REFUSAL_CODES.includes(code) ? code : 'other').inc(); },
    broadcast(type) { broadcasts.labels(BROADCAST_LABELS.includes(type) && type !== 'other' ? type : 'other').inc(); },
  };
}
