// The fields of a user's state, their dotted paths, and the conversions
// between the flat form the client keeps (path -> value) and the nested
// form of state_full ({roasting: {enabled: …}}).

export const SECTIONS = {
  auth: ['userId', 'email', 'name'],
  subscription: ['plan', 'status', 'trial_days_remaining', 'trial_ends_at', 'current_period_start',
    'current_period_end', 'polar_subscription_id', 'polar_customer_id', 'cancel_at_period_end'],
  persona: ['identity', 'intolerance', 'tolerance', 'embeddings_generated_at', 'embeddings_model'],
  roasting: ['enabled', 'roast_level', 'shield_level'],
  usage: ['monthly_roasts_used', 'monthly_roasts_limit', 'remaining_roasts', 'period_start', 'reset_date'],
  organization: ['id', 'name', 'slug', 'role'],
};

export const FIELDS = Object.freeze(Object.entries(SECTIONS).flatMap(([s, keys]) => keys.map((k) => `${s}.${k}`)));
const FIELD_SET = new Set(FIELDS);

// What a user may write with patch (the server refuses the rest).
export const USER_FIELDS = Object.freeze(['auth.name', 'roasting.enabled', 'roasting.roast_level',
  'roasting.shield_level', 'persona.identity', 'persona.intolerance', 'persona.tolerance']);
const USER_SET = new Set(USER_FIELDS);

// Persona text: never written to device storage.
export const PERSONA_TEXT = Object.freeze(['persona.identity', 'persona.intolerance', 'persona.tolerance']);
const PERSONA_SET = new Set(PERSONA_TEXT);

export const UI_DEFAULTS = Object.freeze({
  theme: 'auto', language: 'es', notifications_enabled: true, sidebar_collapsed: false,
});

export const isField = (f) => FIELD_SET.has(f);
export const isUserField = (f) => USER_SET.has(f);
export const isPersonaText = (f) => PERSONA_SET.has(f);

// Field values are JSON scalars; compare them as such.
export function same(a, b) {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a === 'object' || typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

// {field -> value} -> state_full's shape.  organization is null when every
// organization.* field is null or unknown.
export function nest(values) {
  const out = {};
  for (const [section, keys] of Object.entries(SECTIONS)) {
    const obj = {};
    let any = false;
    for (const k of keys) {
      const v = values[`${section}.${k}`];
      obj[k] = v === undefined ? null : v;
      if (obj[k] !== null) any = true;
    }
    out[section] = section === 'organization' && !any ? null : obj;
  }
  return out;
}

// The known fields present in `data` (shaped like state_full), as
// [field, value] pairs.  `data.organization === null` means every
// organization.* field is null.
export function flatten(data) {
  const out = [];
  if (data === null || typeof data !== 'object') return out;
  for (const [section, keys] of Object.entries(SECTIONS)) {
    if (!Object.hasOwn(data, section)) continue;
    const obj = data[section];
    if (obj === null) {
      if (section === 'organization') for (const k of keys) out.push([`${section}.${k}`, null]);
      continue;
    }
    if (typeof obj !== 'object') continue;
    for (const k of keys) if (Object.hasOwn(obj, k)) out.push([`${section}.${k}`, obj[k]]);
  }
  return out;
}

// Whether `data` holds a value for every field named in `fields`.
export function covers(data, fields) {
  if (!Array.isArray(fields) || fields.length === 0) return false;
  const have = new Set(flatten(data).map(([f]) => f));
  return fields.every((f) => have.has(f));
}

// The field a server error message names ('invalid value for field
// "roasting.roast_level"'), or null.
export function fieldInMessage(message) {
  if (typeof message !== 'string') return null;
  const m = /field "([a-z_]+\.[a-zA-Z_]+)"/.exec(message);
  if (m) return m[1];
  for (const f of FIELDS) if (message.includes(f)) return f;
  return null;
}
