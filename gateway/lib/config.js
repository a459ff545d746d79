// Configuration from the environment (see README.md).
const MODES = ['per-user', 'shared'];

function int(name, def, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}]`);
  return n;
}

export function loadConfig(env = process.env) {
  const secret = env.JWT_SECRET ?? '';
  if (secret.length === 0) throw new Error('JWT_SECRET is required');
  const key = env.JWT_SECRET_IS_BASE64 === 'true' ? Buffer.from(secret, 'base64') : Buffer.from(secret, 'utf8');
  if (key.length < 32) throw new Error('JWT_SECRET must be at least 32 bytes (as Supabase and PostgREST require)');

  const mode = env.LISTEN_MODE || 'per-user';
  if (!MODES.includes(mode)) throw new Error(`LISTEN_MODE must be one of ${MODES.join(', ')}`);

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
    listenMode: mode,
    logLevel: env.LOG_LEVEL || 'info',
    reconnectMaxMs: int('RECONNECT_MAX_MS', 5000, 100, 600000),
    heartbeatMs: int('HEARTBEAT_MS', 15000, 1000, 3600000),
    corsOrigin: env.CORS_ORIGIN ? env.CORS_ORIGIN.split(',').map((s) => s.trim()) : undefined,
  };
}
