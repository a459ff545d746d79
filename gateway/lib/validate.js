// Parsing what devices send: cursors, histories, channels, the HTTP `since`
// and `history`, patch messages.  Pure functions; nothing here touches the database.
const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const UUID_RE = new RegExp(`^${UUID}$`);
const CHANNEL_RE = /^user:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const DIGITS_RE = /^[0-9]{1,16}$/;

export const isUuid = (s) => typeof s === 'string' && UUID_RE.test(s);
export const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// A cursor as a non-negative integer or a string of digits; missing is 0.
// null when it is anything else.
export function parseCursor(raw) {
  if (raw === undefined || raw === null) return 0;
  const n = typeof raw === 'string' && DIGITS_RE.test(raw) ? Number(raw) : raw;
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

// A history token (the history a cursor belongs to, from the extension's
// answers: "<system identifier>.<timeline>[.<WAL position hex>]").  Opaque
// to devices; the gateway checks its shape only, so that nothing else
// reaches the database or a log line.
export const HISTORY_MAX = 64;
const HISTORY_RE = /^[0-9]+\.[0-9]+(\.[0-9A-F]+)?$/;
export const isHistory = (s) => typeof s === 'string' && s.length <= HISTORY_MAX && HISTORY_RE.test(s);

// The history a device sends with its cursor: missing (undefined, null) is
// null (a bare cursor, as before 0.5.0); undefined when it is not a token.
export function parseHistory(raw) {
  if (raw === undefined || raw === null) return null;
  return isHistory(raw) ? raw : undefined;
}

// "<system identifier>.<timeline>" of a token: the part notifications and
// patch answers carry.  null for null.
export function historyLine(h) {
  if (typeof h !== 'string') return null;
  const dot = h.indexOf('.', h.indexOf('.') + 1);
  return dot < 0 ? h : h.slice(0, dot);
}

// The channel a device asks for (default: its own, user:<sub>), and the user
// it names; null when it is not "user:<uuid>" in lower case.  Whether the
// device may have it is the database's decision (authorize_channel).
export function parseChannel(raw, sub) {
  const channel = raw ?? `user:${String(sub).toLowerCase()}`;
  const m = typeof channel === 'string' ? CHANNEL_RE.exec(channel) : null;
  return m ? { channel, userId: m[1] } : null;
}

// GET /api/state/sync?since=N: the cursor, 0 when missing, null when it is
// not one non-negative integer.
export function parseSince(searchParams) {
  const all = searchParams.getAll('since');
  if (all.length === 0) return 0;
  if (all.length > 1 || !DIGITS_RE.test(all[0])) return null;
  const n = Number(all[0]);
  return Number.isSafeInteger(n) ? n : null;
}

// GET /api/state/sync?history=H: null when missing, undefined when it is
// not one token.
export function parseHistoryParam(searchParams) {
  const all = searchParams.getAll('history');
  if (all.length === 0) return null;
  if (all.length > 1) return undefined;
  return parseHistory(all[0]);
}

const PATCH_KEYS = new Set(['changes', 'base_version', 'mutation_id']);

// socket.emit('patch', {changes, base_version, mutation_id}, ack): the shape
// only (which fields and values are allowed is the extension's business).
// {ok: true, changes, baseVersion, mutationId} or {ok: false, message}.
export function validatePatch(msg) {
  const bad = (message) => ({ ok: false, message });
  if (!isObject(msg)) return bad('a patch is an object {changes, base_version, mutation_id}');
  for (const k of Object.keys(msg)) {
    if (!PATCH_KEYS.has(k)) return bad(`unknown key ${JSON.stringify(k.slice(0, 40))} in the patch (changes, base_version, mutation_id)`);
  }
  if (!isObject(msg.changes)) return bad('changes must be an object mapping field paths to values');
  const base = msg.base_version ?? null;
  if (base !== null && !(Number.isSafeInteger(base) && base >= 0)) return bad('base_version must be null or a non-negative integer');
  const mid = msg.mutation_id ?? null;
  if (mid !== null && !isUuid(mid)) return bad('mutation_id must be null or a uuid');
  return { ok: true, changes: msg.changes, baseVersion: base, mutationId: mid === null ? null : mid.toLowerCase() };
}
