// Parsing what devices send: cursors and channels.  Pure functions; nothing
// here touches the database.
const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const UUID_RE = new RegExp(`^${UUID}$`);
const CHANNEL_RE = /^user:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const DIGITS_RE = /^[0-9]{1,16}$/;

export const isUuid = (s) => typeof s === 'string' && UUID_RE.test(s);

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
