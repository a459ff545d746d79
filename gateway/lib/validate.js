// Parsing what devices send: cursors, channels, the HTTP `since`, patch
// messages.  Pure functions; nothing here touches the database.
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
