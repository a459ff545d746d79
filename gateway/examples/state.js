// How a device keeps its copy of the state up to date from the gateway's
// events: the recipe of the gateway's README, as code.  Start from
// state_full (GET /api/state/full, or roastr_state.state_full through your
// API), connect with cursor = state._meta.version, then:
//
//   socket.on('state_update', (m) => applyUpdate(state, m));
//   socket.on('state_sync', (m) => applySync(state, m));
//
// The state then equals state_full at state._meta.version (but for
// _meta.lastSyncedAt, which is the time of a read).  test/e2e.js holds a
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

// state_update {type, data, version, fields}: everything that changed at
// `version`, values in `data`.
export function applyUpdate(state, { data, version }) {
  deepMerge(state, data);
  meta(state).version = version;
  return state;
}

// state_sync {changes, cursor}: every field changed after the cursor the
// device connected with (or last got), with its latest value.
export function applySync(state, { changes, cursor }) {
  for (const { field, value } of changes) setPath(state, field, value);
  if (isObject(state.organization) && state.organization.id === null) state.organization = null;
  meta(state).version = cursor;
  return state;
}
