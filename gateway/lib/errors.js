// What a device is told when the database says no, or cannot be reached.
// Pure functions.

// Not worth an answer of its own: the connection, the server or the
// transaction failed, not the request.  Nothing was committed, or the
// outcome is unknown (a lost COMMIT): the device retries with the same
// mutation_id, which makes either case safe.
export const UNAVAILABLE = '08006';

const SQLSTATE_RE = /^[0-9A-Z]{5}$/;
// connection exceptions, insufficient resources, operator intervention
// (shutdown, crash, cannot connect now, query canceled), serialization
// failure, deadlock
const TRANSIENT_RE = /^(08|53|57P0[1-4]|57014|40001|40P01)/;

export function isTransient(err) {
  if (err?.phase === 'connect') return true;    // the pool could not log in
  const code = err?.code;
  // Not a SQLSTATE: a socket error (ECONNRESET), a lost connection or a
  // pool timeout (pg gives those no code), or a fault of ours.  Node's
  // system errors carry errno and syscall, and some of their codes look
  // like SQLSTATEs (EPIPE, EPERM, EBADF): those are the connection too.
  if (typeof code !== 'string' || !SQLSTATE_RE.test(code)) return true;
  if (typeof err.errno === 'number' || typeof err.syscall === 'string') return true;
  return TRANSIENT_RE.test(code);
}

// A DETAIL that is JSON (PT409's {"code": "E_CONFLICT", ...}) as the value
// it encodes; any other DETAIL as it is.
export function parseDetail(detail) {
  if (typeof detail !== 'string') return undefined;
  const t = detail.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.parse(detail);
    } catch {
      // not JSON after all
    }
  }
  return detail;
}

// {code, message[, detail]} for an error from the database (or from getting
// to it).
export function errorBody(err, unavailableMessage = 'the database could not be reached; retry') {
  if (isTransient(err)) return { code: UNAVAILABLE, message: unavailableMessage };
  const body = { code: err.code, message: err.message };
  const detail = parseDetail(err.detail);
  if (detail !== undefined) body.detail = detail;
  return body;
}

// The HTTP status of a code, as PostgREST maps the extension's SQLSTATEs.
export function httpStatus(code) {
  switch (code) {
    case 'PT401': return 401;
    case 'PT402': return 402;
    case '42501': return 403;
    case 'PT404': return 404;
    case 'PT409': return 409;
    case UNAVAILABLE: return 503;
    case 'PT503': return 503;     // a standby behind the client's cursor: retry shortly
    case '428C9': case '0A000': return 400;
    default: return typeof code === 'string' && code.startsWith('22') ? 400 : 500;
  }
}
