// Configuration from the environment (see README.md), checked once at start:
// a bad value stops the gateway with a message naming the variable.
import { LEVELS } from './log.js';

const MODES = ['per-user', 'shared'];

export function loadConfig(env = process.env) {
  const int = (name, def, min, max) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = /^[0-9]+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  const oneOf = (name, def, allowed) => {
    const v = env[name] || def;
    if (!allowed.includes(v)) throw new Error(`${name} must be one of ${allowed.join(', ')}`);
    return v;
  };

  const secret = env.JWT_SECRET ?? '';
  if (secret.length === 0) throw new Error('JWT_SECRET is required');
  const base64 = oneOf('JWT_SECRET_IS_BASE64', 'false', ['true', 'false']) === 'true';
  const key = Buffer.from(secret, base64 ? 'base64' : 'utf8');
  if (key.length < 32) throw new Error('JWT_SECRET must be at least 32 bytes (as Supabase and PostgREST require)');

  // The LISTEN connection must be a session of its own (never through a
  // transaction pooler), while the per-device queries may use one: it can
  // be pointed elsewhere.  LISTEN_DATABASE_URL replaces everything;
  // LISTEN_PGHOST/LISTEN_PGPORT replace the host and port of the PG*
  // variables (with DATABASE_URL, give LISTEN_DATABASE_URL instead).
  const pgCfg = env.DATABASE_URL ? { connectionString: env.DATABASE_URL } : {};
  let listenPg = pgCfg;
  if (env.LISTEN_DATABASE_URL) {
    if (env.LISTEN_PGHOST || env.LISTEN_PGPORT) throw new Error('LISTEN_DATABASE_URL and LISTEN_PGHOST/LISTEN_PGPORT exclude each other');
    listenPg = { connectionString: env.LISTEN_DATABASE_URL };
  } else if (env.LISTEN_PGHOST || env.LISTEN_PGPORT) {
    if (env.DATABASE_URL) throw new Error('with DATABASE_URL, give the LISTEN connection as LISTEN_DATABASE_URL (not LISTEN_PGHOST/LISTEN_PGPORT)');
    listenPg = {};
    if (env.LISTEN_PGHOST) listenPg.host = env.LISTEN_PGHOST;
    if (env.LISTEN_PGPORT) listenPg.port = int('LISTEN_PGPORT', undefined, 1, 65535);
  }

  return {
    port: int('PORT', 8080, 0, 65535),
    host: env.HOST || undefined,
    // pg reads PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD... itself when
    // there is no connection string.
    pg: pgCfg,
    listenPg,
    poolMax: int('PG_POOL_MAX', 10, 1, 1000),
    jwtKey: key,
    jwtAudience: env.JWT_AUDIENCE || undefined,
    dbRole: env.DB_ROLE || 'authenticated',
    // true: a login role with more than DB_ROLE is only warned about
    // (README: "The database login").
    allowPrivilegedLoginRole: oneOf('ALLOW_PRIVILEGED_LOGIN_ROLE', 'false', ['true', 'false']) === 'true',
    listenMode: oneOf('LISTEN_MODE', 'per-user', MODES),
    logLevel: oneOf('LOG_LEVEL', 'info', Object.keys(LEVELS)),
    reconnectMaxMs: int('RECONNECT_MAX_MS', 5000, 100, 600000),
    heartbeatMs: int('HEARTBEAT_MS', 15000, 1000, 3600000),
    corsOrigin: env.CORS_ORIGIN ? env.CORS_ORIGIN.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
  };
}
