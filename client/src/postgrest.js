// postgrestTransport: the extension's functions straight through PostgREST
// (Supabase), shaped like supabase-js's rpc:
//   POST /rest/v1/rpc/patch       {"user_id":null,"changes":{…},"base_version":N,"mutation_id":"…"}
//   POST /rest/v1/rpc/state_sync  {"user_id":null,"since":N[,"history":"…"]}
//   POST /rest/v1/rpc/state_full  {}
// (POST: both reads are VOLATILE.)  PostgREST has no push: state_sync is
// polled every pollMs, unless `push` (a gatewayTransport) brings changes.
import { StateError, networkError } from './errors.js';

const BY_STATUS = { 409: 'PT409', 403: '42501', 402: 'PT402', 400: '22023', 404: 'PT404' };

// A PostgREST error body ({code, message, details, hint}) as a StateError
// with the same code the gateway would give.
export function postgrestError(status, body) {
  const code = body && typeof body.code === 'string' && body.code !== '' ? body.code : null;
  const message = body?.message ?? `HTTP ${status}`;
  const opts = { detail: body?.details ?? null, hint: body?.hint ?? null, status };
  if (status === 401 || (code && code.startsWith('PGRST3'))) return new StateError('AUTH', message, opts);
  if (code) return new StateError(code, message, opts);
  if (BY_STATUS[status]) return new StateError(BY_STATUS[status], message, opts);
  return new StateError('NETWORK', message, opts);
}

export function postgrestTransport({
  supabase = null,
  url,
  apikey,
  token,
  fetch = globalThis.fetch?.bind(globalThis),
  schema = null,
  pollMs = 30000,
  push = null,
} = {}) {
  if (!supabase && !(url && apikey)) throw new TypeError('postgrestTransport: pass {supabase} or {url, apikey, token}');
  const getToken = async () => (typeof token === 'function' ? token() : token);
  const base = url ? String(url).replace(/\/+$/, '') : null;

  async function rpc(fn, args) {
    if (supabase) {
      const q = schema ? supabase.schema(schema) : supabase;
      let out;
      try {
        out = await q.rpc(fn, args);
      } catch (err) {
        throw networkError(`PostgREST unreachable: ${err.message}`, err);
      }
      if (out.error) throw postgrestError(out.status ?? 0, out.error);
      return out.data;
    }
    const headers = { apikey, Authorization: `Bearer ${(await getToken()) ?? apikey}`, 'Content-Type': 'application/json' };
    if (schema) headers['Content-Profile'] = schema;
    let res;
    try {
      res = await fetch(`${base}/rest/v1/rpc/${fn}`, { method: 'POST', headers, body: JSON.stringify(args) });
    } catch (err) {
      throw networkError(`PostgREST unreachable: ${err.message}`, err);
    }
    const text = await res.text();
    let body = null;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      body = null;
    }
    if (!res.ok) throw postgrestError(res.status, body);
    return body;
  }

  let h = null;
  let closed = false;
  let pushUp = false;
  let httpUp = false;
  let pollTimer = null;
  const report = () => h?.onStatus({ online: pushUp || httpUp, writable: true, via: pushUp ? 'socket+rest' : 'rest' });

  // history: the token of the cursor `since` (0.5.0), sent only when there
  // is one (PostgREST picks state_sync(uuid, bigint, text) by its
  // arguments).  A server without that function (PGRST202: before 0.5.0)
  // is asked with the bare cursor.
  async function sync(since, history = null) {
    let r;
    if (typeof history === 'string') {
      try {
        r = await rpc('state_sync', { user_id: null, since, history });
      } catch (err) {
        if (err.code !== 'PGRST202') throw err;
      }
    }
    r ??= await rpc('state_sync', { user_id: null, since });
    return {
      changes: r.changes,
      cursor: r.cursor,
      history: typeof r.history === 'string' ? r.history : null,
      reset: r.reset === true,
      lastSyncedAt: r.lastSyncedAt ?? null,
    };
  }

  async function poll() {
    pollTimer = null;
    if (closed || pushUp) return;
    const since = h.cursor();
    const fromHistory = since > 0 ? (h.history?.() ?? null) : null;
    try {
      const res = await sync(since, fromHistory);
      httpUp = true;
      if (!closed && !pushUp) h.onSync({ ...res, since, fromHistory });
    } catch (err) {
      httpUp = false;
      if (err.code === 'AUTH') h.onAuthError?.(err);
    }
    if (closed) return;
    report();
    if (!pushUp) pollTimer = setTimeout(poll, pollMs);
  }

  return {
    name: 'postgrest',
    get settleDelayMs() {
      return pushUp ? 300 : 0;
    },
    start(handlers) {
      h = handlers;
      report();
      if (push) {
        push.start({
          ...handlers,
          onStatus: (s) => {
            pushUp = !!s.online && s.via === 'socket';
            if (pushUp) {
              clearTimeout(pollTimer);
              pollTimer = null;
            } else if (!pollTimer && !closed) {
              pollTimer = setTimeout(poll, 0);
            }
            report();
          },
        });
      }
      if (!pushUp) poll();
    },
    async patch(req) {
      const r = await rpc('patch', { user_id: null, changes: req.changes, base_version: req.base_version, mutation_id: req.mutation_id });
      httpUp = true;
      return r;
    },
    sync,
    full: () => rpc('state_full', {}),
    close() {
      closed = true;
      clearTimeout(pollTimer);
      push?.close();
    },
  };
}
