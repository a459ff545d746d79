// The HTTP side: GET /healthz, GET /metrics, and the state API of the app's design note
// for clients that do not keep a socket open:
//
//   GET /api/state/full               -> {success: true, data: <state_full>}
//   GET /api/state/sync?since=<cursor>[&history=<token>]
//                                      -> {success: true, changes, cursor, history, reset, lastSyncedAt}
//
// (history: the token the cursor came with; reset: true when it is not the
// server's history and `changes` holds every field, to replace the device's
// state with.  A standby that has not replayed the cursor yet answers PT503:
// HTTP 503 with Retry-After, as any unavailable database.)
//
// both with "Authorization: Bearer <the API's JWT>", run with the token's
// claims (db.js); errors are {success: false, error: {code, message}} with
// the status PostgREST would give the code.
import { AuthError, bearerToken } from './auth.js';
import { errorBody, httpStatus, UNAVAILABLE } from './errors.js';
import { errFields } from './log.js';
import { parseHistoryParam, parseSince } from './validate.js';
import { noMetrics } from './metrics.js';

const API = new Set(['/api/state/full', '/api/state/sync']);

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

const fail = (res, status, code, message, headers) => send(res, status, { success: false, error: { code, message } }, headers);

// deps: verify (auth.js), db (db.js: stateFull, stateSync), health() ->
// {status, ...}, stats (api counters), metrics (metrics.js: every answer
// counted by route and status; GET /metrics), log, corsOrigin (list or
// undefined).
export function createHttpHandler({ verify, db, health, stats, metrics = noMetrics, log, corsOrigin }) {
  function cors(req) {
    const origin = req.headers.origin;
    if (!corsOrigin || !origin || !(corsOrigin.includes(origin) || corsOrigin.includes('*'))) return {};
    return { 'access-control-allow-origin': origin, vary: 'Origin' };
  }

  async function api(req, res, path, query) {
    const headers = cors(req);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...headers,
        allow: 'GET, OPTIONS',
        ...(headers['access-control-allow-origin'] ? {
          'access-control-allow-methods': 'GET',
          'access-control-allow-headers': 'authorization',
          'access-control-max-age': '600',
        } : {}),
      });
      res.end();
      return;
    }
    if (req.method !== 'GET') {
      fail(res, 405, 'method_not_allowed', `${path} answers GET only`, { ...headers, allow: 'GET, OPTIONS' });
      return;
    }
    const t0 = Date.now();
    const what = path === '/api/state/full' ? 'full' : 'sync';
    let user;
    const done = (status, code) => {
      if (status >= 400) stats.errors++;
      else stats[what]++;
      const fields = { path, status, user, code, ms: Date.now() - t0 };
      if (status >= 500) log.warn('api request failed', fields);
      else if (status >= 400) log.info('api request refused', fields);
      else log.debug('api request', fields);
    };

    let id;
    try {
      id = await verify(bearerToken(req.headers.authorization));
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      const challenge = err.message === 'missing token' ? 'Bearer' : 'Bearer error="invalid_token"';
      fail(res, 401, 'PT401', err.message, { ...headers, 'www-authenticate': challenge });
      done(401, 'PT401');
      return;
    }
    user = id.sub;

    let since = 0;
    let history = null;
    if (what === 'sync') {
      since = parseSince(query);
      if (since === null) {
        fail(res, 400, '22023', 'since must be a non-negative integer cursor (the last cursor or _meta.version received)', headers);
        done(400, '22023');
        return;
      }
      history = parseHistoryParam(query);
      if (history === undefined) {
        fail(res, 400, '22023', 'history must be one history token, as the server sent it with the cursor', headers);
        done(400, '22023');
        return;
      }
    }

    let result;
    try {
      result = what === 'full' ? await db.stateFull(id.claims) : await db.stateSync(id.claims, null, since, history);
    } catch (err) {
      const body = errorBody(err, 'the database could not be reached; retry later');
      const status = httpStatus(body.code);
      if (body.code === UNAVAILABLE) log.warn('database unavailable for an api request', errFields(err));
      if (body.code === 'PT503') metrics.httpBehind();
      fail(res, status, body.code, body.message, status === 503 ? { ...headers, 'retry-after': '1' } : headers);
      done(status, body.code);
      return;
    }
    if (what === 'full') send(res, 200, { success: true, data: result }, headers);
    else {
      send(res, 200, {
        success: true,
        changes: result.changes,
        cursor: result.cursor,
        history: typeof result.history === 'string' ? result.history : null,
        reset: result.reset === true,
        lastSyncedAt: result.lastSyncedAt,
      }, headers);
    }
    done(200);
  }

  return function handle(req, res) {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
    res.once('finish', () => metrics.http(path, res.statusCode));
    if (path === '/metrics' && req.method === 'GET' && metrics.text) {
      metrics.text().then((text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(text);
      }, (err) => {
        log.error('metrics failed', errFields(err));
        fail(res, 500, 'XX000', 'internal error');
      });
      return;
    }
    if (path === '/healthz' && req.method === 'GET') {
      const body = health();
      send(res, body.status === 'ok' ? 200 : 503, body);
      return;
    }
    if (!API.has(path)) {
      fail(res, 404, 'not_found', 'no such endpoint');
      return;
    }
    api(req, res, path, query).catch((err) => {
      log.error('api request crashed', errFields(err));
      if (!res.headersSent) fail(res, 500, 'XX000', 'internal error');
      else res.destroy();
    });
  };
}
