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

  return {
    port: int('PORT', 8080, 0, 65535),
    host: env.HOST || undefined,
    // pg reads PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD... itself when
    // there is no connection string.
    pg: env.DATABASE_URL ? { connectionString: env.DATABASE_URL } : {},
    poolMax: int('PG_POOL_MAX', 10, 1, 1000),
    jwtKey: key,
    jwtAudience: env.JWT_AUDIENCE || undefined,
    dbRole: env.DB_ROLE || 'authenticated',
    listenMode: oneOf('LISTEN_MODE', 'per-user', MODES),
    logLevel: oneOf('LOG_LEVEL', 'info', Object.keys(LEVELS)),
    reconnectMaxMs: int('RECONNECT_MAX_MS', 5000, 100, 600000),
    heartbeatMs: int('HEARTBEAT_MS', 15000, 1000, 3600000),
    corsOrigin: env.CORS_ORIGIN ? env.CORS_ORIGIN.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
  };
}
