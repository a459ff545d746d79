// metrics.js: the Prometheus text, what moves each metric, bounded labels;
// and the modules that report to it (device, patch, HTTP).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { CATCHUP_CAUSES, createMetrics, patchLabel, routeLabel } from '../../lib/metrics.js';
import { Device, CAUSES } from '../../lib/device.js';
import { handlePatch } from '../../lib/socket.js';
import { createHttpHandler } from '../../lib/http.js';
import { createVerifier } from '../../lib/auth.js';

const U = 'a1111111-1111-4111-8111-111111111111';
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const tick = () => new Promise((r) => setImmediate(r));

// The value of one sample, e.g. value(text, 'roastr_gateway_catchups_total{cause="gap"}').
function value(text, sample) {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

test('a fresh registry: every metric, typed, with its fixed labels at 0', async () => {
  const m = createMetrics({ defaults: false });
  const text = await m.text();
  const types = Object.fromEntries(text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ').slice(2)));
  assert.deepEqual(types, {
    roastr_gateway_devices: 'gauge',
    roastr_gateway_users: 'gauge',
    roastr_gateway_listen_up: 'gauge',
    roastr_gateway_state_updates_total: 'counter',
    roastr_gateway_catchups_total: 'counter',
    roastr_gateway_state_syncs_total: 'counter',
    roastr_gateway_state_syncs_shared_total: 'counter',
    roastr_gateway_state_sync_failures_total: 'counter',
    roastr_gateway_state_sync_behind_total: 'counter',
    roastr_gateway_patches_total: 'counter',
    roastr_gateway_http_requests_total: 'counter',
    roastr_gateway_delivery_seconds: 'histogram',
    roastr_gateway_listen_reconnects_total: 'counter',
    roastr_gateway_connections_refused_total: 'counter',
    roastr_gateway_broadcasts_total: 'counter',
  });
  for (const cause of CATCHUP_CAUSES) assert.equal(value(text, `roastr_gateway_catchups_total{cause="${cause}"}`), 0, cause);
  assert.deepEqual(CATCHUP_CAUSES, [...CAUSES, 'connect', 'reconnect', 'broadcast']);
  for (const type of ['plan_limits', 'organization', 'other']) {
    assert.equal(value(text, `roastr_gateway_broadcasts_total{type="${type}"}`), 0, type);
  }
  for (const code of ['unauthorized', 'forbidden', 'bad_request', 'unavailable']) {
    assert.equal(value(text, `roastr_gateway_connections_refused_total{code="${code}"}`), 0);
  }
  assert.equal(value(text, 'roastr_gateway_patches_total{code="ok"}'), 0);
  assert.equal(value(text, 'roastr_gateway_state_sync_behind_total{via="socket"}'), 0);
  assert.equal(value(text, 'roastr_gateway_state_sync_behind_total{via="http"}'), 0);
  assert.equal(value(text, 'roastr_gateway_delivery_seconds_count{event="state_update"}'), 0);
  assert.equal(value(text, 'roastr_gateway_devices'), 0);
  // the latency's help says what it measures, and what it cannot
  assert.match(text, /# HELP roastr_gateway_delivery_seconds Seconds from a notification's arrival on the LISTEN connection .*carry no commit time/);
  assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
});

test('each report moves its metric', async () => {
  const m = createMetrics({ defaults: false });
  m.stateUpdate();
  m.stateUpdate();
  m.catchup('gap');
  m.catchup('withheld');
  m.catchup('connect');
  m.catchup('connect');
  m.catchup('history');
  m.sync();
  m.syncShared();
  m.syncShared();
  m.syncFailure();
  m.syncFailure('PT503');
  m.httpBehind();
  m.patch('ok');
  m.patch('PT409');
  m.patch('22023');
  m.http('/api/state/full', 200);
  m.http('/api/state/sync', 400);
  m.http('/healthz', 200);
  m.listenReconnect();
  m.refusedConnection('forbidden');
  m.catchup('broadcast');
  m.broadcast('plan_limits');
  m.broadcast('organization');
  m.broadcast('organization');
  m.broadcast('later');
  m.broadcast(undefined);
  m.delivered('state_update', 0.0002);
  m.delivered('state_sync', 0.03);
  m.track({ devices: () => 3, users: () => 2, listenUp: () => 1 });
  const text = await m.text();
  const expect = {
    roastr_gateway_state_updates_total: 2,
    'roastr_gateway_catchups_total{cause="gap"}': 1,
    'roastr_gateway_catchups_total{cause="withheld"}': 1,
    'roastr_gateway_catchups_total{cause="connect"}': 2,
    'roastr_gateway_catchups_total{cause="reconnect"}': 0,
    'roastr_gateway_catchups_total{cause="history"}': 1,
    'roastr_gateway_catchups_total{cause="broadcast"}': 1,
    'roastr_gateway_broadcasts_total{type="plan_limits"}': 1,
    'roastr_gateway_broadcasts_total{type="organization"}': 2,
    'roastr_gateway_broadcasts_total{type="other"}': 2,
    roastr_gateway_state_syncs_total: 1,
    roastr_gateway_state_syncs_shared_total: 2,
    roastr_gateway_state_sync_failures_total: 2,
    'roastr_gateway_state_sync_behind_total{via="socket"}': 1,
    'roastr_gateway_state_sync_behind_total{via="http"}': 1,
    'roastr_gateway_patches_total{code="ok"}': 1,
    'roastr_gateway_patches_total{code="PT409"}': 1,
    'roastr_gateway_patches_total{code="22023"}': 1,
    'roastr_gateway_http_requests_total{route="/api/state/full",status="200"}': 1,
    'roastr_gateway_http_requests_total{route="/api/state/sync",status="400"}': 1,
    'roastr_gateway_http_requests_total{route="/healthz",status="200"}': 1,
    roastr_gateway_listen_reconnects_total: 1,
    'roastr_gateway_connections_refused_total{code="forbidden"}': 1,
    'roastr_gateway_delivery_seconds_count{event="state_update"}': 1,
    'roastr_gateway_delivery_seconds_bucket{le="0.0005",event="state_update"}': 1,
    'roastr_gateway_delivery_seconds_count{event="state_sync"}': 1,
    'roastr_gateway_delivery_seconds_bucket{le="0.025",event="state_sync"}': 0,
    'roastr_gateway_delivery_seconds_bucket{le="0.05",event="state_sync"}': 1,
    roastr_gateway_devices: 3,
    roastr_gateway_users: 2,
    roastr_gateway_listen_up: 1,
  };
  for (const [sample, v] of Object.entries(expect)) assert.equal(value(text, sample), v, sample);
});

test('labels take fixed values only: no user id, token or payload ever becomes one', async () => {
  const m = createMetrics({ defaults: false });
  const token = 'eyJhbGciOiJIUzI1NiJ9.e30.x';
  m.catchup(U);
  m.patch(U);
  m.patch(token);
  m.http(`/api/state/${U}`, 404);
  m.http(`/x?token=${token}`, 404);
  m.refusedConnection(U);
  m.delivered(U, 1);
  m.delivered('state_update', NaN);
  const text = await m.text();
  assert.ok(!text.includes(U) && !text.includes(token) && !text.includes('eyJ'));
  assert.equal(value(text, 'roastr_gateway_patches_total{code="other"}'), 2);
  assert.equal(value(text, 'roastr_gateway_http_requests_total{route="other",status="404"}'), 2);
  assert.equal(value(text, 'roastr_gateway_connections_refused_total{code="other"}'), 1);
  assert.equal(value(text, 'roastr_gateway_delivery_seconds_count{event="state_update"}'), 0);
  assert.deepEqual([patchLabel('ok'), patchLabel('PT402'), patchLabel('08006'), patchLabel('pt409'), patchLabel(undefined)], ['ok', 'PT402', '08006', 'other', 'other']);
  assert.deepEqual([routeLabel('/metrics'), routeLabel('/api/state/full'), routeLabel('/socket.io/')], ['/metrics', '/api/state/full', 'other']);
});

test('prom-client\'s default metrics (RSS, CPU, event loop) are there; registries are independent', async () => {
  const a = createMetrics();
  const b = createMetrics();
  a.stateUpdate();
  const text = await a.text();
  assert.ok(value(text, 'process_resident_memory_bytes') > 0);
  assert.ok(value(text, 'process_cpu_user_seconds_total') >= 0);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  assert.equal(value(await b.text(), 'roastr_gateway_state_updates_total'), 0);
});

// A device reporting to a recording metrics object.
function recorder() {
  const calls = [];
  const rec = new Proxy({}, { get: (_, name) => (...args) => calls.push([name, ...args]) });
  return { rec, calls };
}
function device(metrics, { cursor = 4, version = 4, changes = [] } = {}) {
  const sent = [];
  const server = { version, changes };
  const dev = new Device({
    userId: U,
    cursor,
    emit: (event, payload) => sent.push([event, payload]),
    disconnect: () => {},
    sync: async (from) => {
      await tick();
      return { changes: server.changes.filter((c) => c.version > from), cursor: server.version };
    },
    stats: { relayed: 0, syncs: 0, syncFailures: 0, catchups: Object.fromEntries(CAUSES.map((c) => [c, 0])) },
    log: silent,
    metrics,
    wait: tick,
  });
  return { dev, sent, server };
}
const toggle = (version) => ({ type: 'roasting_toggle', version, fields: ['roasting.enabled'], data: { roasting: { enabled: false } } });

test('device: a relay is a state_update delivered from its arrival; a catch-up counts its cause and its state_sync delivery', async () => {
  const { rec, calls } = recorder();
  const { dev, server } = device(rec);
  await dev.sync('connect');
  assert.deepEqual(calls, [['catchup', 'connect'], ['sync']]);      // a connect delivers no notification
  calls.length = 0;
  const at = performance.now() - 50;                              // arrived 50 ms ago
  dev.notify(toggle(5), at);
  assert.deepEqual(calls.map(([n, e]) => [n, e]), [['stateUpdate', undefined], ['delivered', 'state_update']]);
  assert.ok(calls[1][2] >= 0.05 && calls[1][2] < 5, String(calls[1][2]));
  calls.length = 0;
  // a gap: caught up, delivered when the sync shows the announced version
  server.version = 7;
  server.changes = [{ field: 'roasting.enabled', value: true, version: 7, updated_at: 't' }];
  dev.notify(toggle(7), performance.now());
  dev.notify(toggle(7), performance.now());        // during the sync: no second catch-up
  await dev.running;
  assert.deepEqual(calls.map(([n, e]) => [n, e]), [['catchup', 'gap'], ['sync', undefined], ['delivered', 'state_sync']]);
  assert.equal(dev.cursor, 7);
  assert.equal(dev.since, null);
  // a forged announcement that brings nothing: a sync, no delivery
  calls.length = 0;
  dev.notify('not json', performance.now());
  await dev.running;
  assert.deepEqual(calls.map(([n]) => n), ['catchup', 'sync']);
  assert.equal(calls[0][1], 'malformed');
});

test('patch acks are counted by outcome', async () => {
  const { rec, calls } = recorder();
  const stats = { applied: 0, refused: 0, failed: 0 };
  const ok = { patch: async () => ({ version: 2, applied: ['roasting.enabled'] }) };
  const conflict = { patch: async () => { throw Object.assign(new Error('conflict'), { code: 'PT409', detail: '{}' }); } };
  const down = { patch: async () => { throw Object.assign(new Error('connection terminated'), {}); } };
  const dev = { claims: '{}', exp: Math.floor(Date.now() / 1000) + 60, userId: U };
  await handlePatch({ db: ok, log: silent, stats, metrics: rec }, dev, { changes: { 'roasting.enabled': true } });
  await handlePatch({ db: ok, log: silent, stats, metrics: rec }, dev, { changes: [] });
  await handlePatch({ db: conflict, log: silent, stats, metrics: rec }, dev, { changes: { 'roasting.enabled': true } });
  await handlePatch({ db: down, log: silent, stats, metrics: rec }, dev, { changes: { 'roasting.enabled': true } });
  await handlePatch({ db: ok, log: silent, stats, metrics: rec }, { ...dev, exp: 1 }, { changes: {} });
  assert.deepEqual(calls, [['patch', 'ok'], ['patch', '22023'], ['patch', 'PT409'], ['patch', '08006'], ['patch', 'PT401']]);
});

test('HTTP: GET /metrics serves the registry; every answer is counted by route and status', async () => {
  const m = createMetrics({ defaults: false });
  const server = http.createServer(createHttpHandler({
    verify: createVerifier({ jwtKey: Buffer.from('k'.repeat(32)) }), db: {}, stats: { full: 0, sync: 0, errors: 0 },
    metrics: m, log: silent, health: () => ({ status: 'ok' }),
  }));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/api/state/full`)).status, 401);
    assert.equal((await fetch(`${base}/nowhere/${U}`)).status, 404);
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.equal(value(text, 'roastr_gateway_http_requests_total{route="/healthz",status="200"}'), 1);
    assert.equal(value(text, 'roastr_gateway_http_requests_total{route="/api/state/full",status="401"}'), 1);
    assert.equal(value(text, 'roastr_gateway_http_requests_total{route="other",status="404"}'), 1);
    const again = await (await fetch(`${base}/metrics`)).text();
    assert.equal(value(again, 'roastr_gateway_http_requests_total{route="/metrics",status="200"}'), 1);
    assert.ok(!again.includes(U));
  } finally {
    await new Promise((r) => server.close(r));
  }
});
