// loadConfig(): the environment, checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config.js';

const SECRET = 'a'.repeat(32);

test('defaults', () => {
  const c = loadConfig({ JWT_SECRET: SECRET });
  assert.deepEqual({ ...c, jwtKey: c.jwtKey.toString() }, {
    port: 8080, host: undefined, pg: {}, listenPg: {}, poolMax: 10, jwtKey: SECRET, jwtAudience: undefined,
    dbRole: 'authenticated', allowPrivilegedLoginRole: false, listenMode: 'per-user', logLevel: 'info', reconnectMaxMs: 5000,
    heartbeatMs: 15000, corsOrigin: undefined,
  });
});

test('every variable is read from the environment given, not process.env', () => {
  const c = loadConfig({
    JWT_SECRET: SECRET, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: 'postgres://x@h/db', PG_POOL_MAX: '3',
    JWT_AUDIENCE: 'authenticated', DB_ROLE: 'app_user', LISTEN_MODE: 'shared', LOG_LEVEL: 'debug',
    RECONNECT_MAX_MS: '100', HEARTBEAT_MS: '1000', CORS_ORIGIN: 'https://a.example, https://b.example,',
  });
  assert.equal(c.port, 0);
  assert.equal(c.host, '127.0.0.1');
  assert.deepEqual(c.pg, { connectionString: 'postgres://x@h/db' });
  assert.equal(c.poolMax, 3);
  assert.equal(c.jwtAudience, 'authenticated');
  assert.equal(c.dbRole, 'app_user');
  assert.equal(c.listenMode, 'shared');
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.reconnectMaxMs, 100);
  assert.equal(c.heartbeatMs, 1000);
  assert.deepEqual(c.corsOrigin, ['https://a.example', 'https://b.example']);
});

test('the LISTEN connection: as the pool by default, or LISTEN_DATABASE_URL, or LISTEN_PGHOST/LISTEN_PGPORT', () => {
  const url = 'postgres://gw@pooler:6543/app';
  assert.deepEqual(loadConfig({ JWT_SECRET: SECRET, DATABASE_URL: url }).listenPg, { connectionString: url });
  const direct = 'postgres://gw@db:5432/app';
  const c = loadConfig({ JWT_SECRET: SECRET, DATABASE_URL: url, LISTEN_DATABASE_URL: direct });
  assert.deepEqual([c.pg, c.listenPg], [{ connectionString: url }, { connectionString: direct }]);
  // PG* for both, host and port replaced for LISTEN
  assert.deepEqual(loadConfig({ JWT_SECRET: SECRET, LISTEN_PGHOST: '/run/postgresql', LISTEN_PGPORT: '5432' }).listenPg, { host: '/run/postgresql', port: 5432 });
  assert.deepEqual(loadConfig({ JWT_SECRET: SECRET, LISTEN_PGHOST: 'db' }).listenPg, { host: 'db' });
  assert.throws(() => loadConfig({ JWT_SECRET: SECRET, LISTEN_PGPORT: '0' }), /^Error: LISTEN_PGPORT must be an integer in \[1, 65535\]/);
  assert.throws(() => loadConfig({ JWT_SECRET: SECRET, DATABASE_URL: url, LISTEN_PGHOST: 'db' }), /give the LISTEN connection as LISTEN_DATABASE_URL/);
  assert.throws(() => loadConfig({ JWT_SECRET: SECRET, LISTEN_DATABASE_URL: direct, LISTEN_PGPORT: '5432' }), /exclude each other/);
});

test('ALLOW_PRIVILEGED_LOGIN_ROLE is true or false', () => {
  assert.equal(loadConfig({ JWT_SECRET: SECRET, ALLOW_PRIVILEGED_LOGIN_ROLE: 'true' }).allowPrivilegedLoginRole, true);
  assert.throws(() => loadConfig({ JWT_SECRET: SECRET, ALLOW_PRIVILEGED_LOGIN_ROLE: '1' }), /ALLOW_PRIVILEGED_LOGIN_ROLE must be one of true, false/);
});

test('the JWT secret is required and at least 32 bytes', () => {
  assert.throws(() => loadConfig({}), /JWT_SECRET is required/);
  assert.throws(() => loadConfig({ JWT_SECRET: '' }), /JWT_SECRET is required/);
  assert.throws(() => loadConfig({ JWT_SECRET: 'a'.repeat(31) }), /at least 32 bytes/);
  assert.equal(loadConfig({ JWT_SECRET: 'é'.repeat(16) }).jwtKey.length, 32);   // bytes, not characters
});

test('a base64 secret is decoded, and its decoded length counts', () => {
  const raw = Buffer.alloc(32, 7);
  assert.deepEqual(loadConfig({ JWT_SECRET: raw.toString('base64'), JWT_SECRET_IS_BASE64: 'true' }).jwtKey, raw);
  assert.throws(() => loadConfig({ JWT_SECRET: Buffer.alloc(31).toString('base64'), JWT_SECRET_IS_BASE64: 'true' }), /at least 32 bytes/);
  assert.throws(() => loadConfig({ JWT_SECRET: SECRET, JWT_SECRET_IS_BASE64: 'yes' }), /JWT_SECRET_IS_BASE64 must be one of true, false/);
});

test('LISTEN_MODE and LOG_LEVEL are checked', () => {
  assert.throws(() => loadConfig({ JWT_SECRET: SECRET, LISTEN_MODE: 'per_user' }), /LISTEN_MODE must be one of per-user, shared/);
  assert.throws(() => loadConfig({ JWT_SECRET: SECRET, LOG_LEVEL: 'verbose' }), /LOG_LEVEL must be one of debug, info, warn, error/);
});

test('integers are checked against their ranges', () => {
  const bad = [
    ['PORT', '65536'], ['PORT', '-1'], ['PORT', '80.5'], ['PORT', 'http'], ['PORT', '1e3'], ['PORT', '0x50'],
    ['PG_POOL_MAX', '0'], ['PG_POOL_MAX', '1001'],
    ['RECONNECT_MAX_MS', '99'], ['RECONNECT_MAX_MS', '600001'],
    ['HEARTBEAT_MS', '999'], ['HEARTBEAT_MS', '3600001'],
  ];
  for (const [name, value] of bad) {
    assert.throws(() => loadConfig({ JWT_SECRET: SECRET, [name]: value }), new RegExp(`^Error: ${name} must be an integer in \\[`), `${name}=${value}`);
  }
  assert.equal(loadConfig({ JWT_SECRET: SECRET, PORT: '' }).port, 8080);   // empty is unset
  assert.equal(loadConfig({ JWT_SECRET: SECRET, PORT: '65535' }).port, 65535);
});
