// How a device keeps its copy of the state up to date from the gateway's
// events: the recipe of the gateway's README, as code.  Start from
// state_full (GET /api/state/full, or roastr_state.state_full through your
// API), connect with cursor = state._meta.version and history =
// state._meta.history (0.5.0; keep both, they go together), then:
//
//   socket.on('state_update', (m) => applyUpdate(state, m));
//   socket.on('state_sync', (m) => applySync(state, m));
//
// The state then equals state_full at state._meta.version (but for
// _meta.lastSyncedAt, which is the time of a read, and the WAL position at
// the end of _meta.history, which moves with every read).  test/e2e.js holds a
// device to exactly that after every kind of change.

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const SECTION_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

// data is shaped like state_full: objects merge, anything else replaces.
export function deepMerge(target, source) {
  for (const [k, v] of Object.entries(source)) {
    if (SECTION_KEYS.has(k)) continue;
    if (isObject(v) && isObject(target[k])) deepMerge(target[k], v);
    else target[k] = isObject(v) ? deepMerge({}, v) : v;
  }
  return target;
}

// "roasting.enabled" -> state.roasting.enabled.  The organization is null
// when there is none (state_full says organization: null; a sync gives its
// four fields as null).
export function setPath(state, field, value) {
  const dot = field.indexOf('.');
  const section = field.slice(0, dot);
  if (dot <= 0 || SECTION_KEYS.has(section)) return;
  if (!isObject(state[section])) state[section] = {};
  state[section][field.slice(dot + 1)] = value;
}

function meta(state) {
  if (!isObject(state._meta)) state._meta = {};
  return state._meta;
}

// state_update {type, data, version, fields, history}: everything that
// changed at `version`, values in `data`; the cursor is then of `history`.
export function applyUpdate(state, { data, version, history }) {
  deepMerge(state, data);
  meta(state).version = version;
  if (typeof history === 'string') meta(state).history = history;
  return state;
}

// state_sync {changes, cursor, history, reset}: every field changed after
// the cursor the device connected with (or last got), with its latest
// value.  reset: true (the server's history is not the cursor's: a
// failover or a restore lost versions the device had, and handed their
// numbers out again): `changes` holds every field state_sync reports, so
// setting them all replaces the state (what the device had of them is not
// to be merged with, nor kept).
export function applySync(state, { changes, cursor, history }) {
  for (const { field, value } of changes) setPath(state, field, value);
  if (isObject(state.organization) && state.organization.id === null) state.organization = null;
  meta(state).version = cursor;
  if (history !== undefined) meta(state).history = history;
  return state;
}
