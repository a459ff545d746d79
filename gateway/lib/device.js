// One connected device's cursor: relay a notification as it is, or catch the
// device up with state_sync from its cursor.  No I/O here: the caller hands
// in what to emit and how to sync.

// Why a notification became a state_sync instead of a state_update (the
// counters of /healthz, catchups.*).
export const CAUSES = Object.freeze(['gap', 'withheld', 'resync', 'malformed']);

const DROP = Object.freeze({ action: 'drop' });
const RELAY = Object.freeze({ action: 'relay' });
const CATCHUP = Object.freeze(Object.fromEntries(CAUSES.map((cause) => [cause, Object.freeze({ action: 'catchup', cause })])));

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// What to do with notification `msg` (the parsed payload, or null when it
// did not parse) for a device that holds version `cursor`:
//
//   {action: 'relay'}   send it as state_update; the device is then at
//                       msg.version.  Only when its version is cursor + 1
//                       and it names at least one field, each with its
//                       value in `data` ("usage.remaining_roasts" ->
//                       data.usage.remaining_roasts): then it is all that
//                       changed at that version (the extension names every
//                       field state_sync(u, version - 1) returns).
//   {action: 'drop'}    its version is at or below the cursor: on the
//                       device already.
//   {action: 'catchup', cause}   state_sync from the cursor instead:
//     gap       the version is beyond cursor + 1.  A transaction that wrote
//               several statements moves the version by more than one in its
//               one notification, and a lost notification looks the same.
//     resync    the payload was too large for NOTIFY and only says so.
//     withheld  a named field has no value in `data` (persona text and
//               personal values never travel in a payload), or no field is
//               named at all (an operator's change of a plan's limit: a
//               version whose changes the payload does not carry).
//     malformed the payload is not JSON, its version is not a safe positive
//               integer, `fields` is missing or not a list of "section.key"
//               strings, or `data` is not an object.  Nothing in it can be
//               trusted, so the change log answers.
//
// The cursor never moves on an announcement the gateway cannot deliver in
// full: every doubt is a catch-up (one indexed read, a few fields).
export function decide(msg, cursor) {
  if (!isObject(msg) || !Number.isSafeInteger(msg.version) || msg.version < 1) return CATCHUP.malformed;
  if (msg.version <= cursor) return DROP;
  if (msg.type === 'resync') return CATCHUP.resync;
  if (msg.version !== cursor + 1) return CATCHUP.gap;
  if (!Array.isArray(msg.fields) || !isObject(msg.data)) return CATCHUP.malformed;
  const paths = [];
  for (const f of msg.fields) {
    const dot = typeof f === 'string' ? f.indexOf('.') : -1;
    if (dot <= 0 || dot === f.length - 1) return CATCHUP.malformed;
    paths.push([f.slice(0, dot), f.slice(dot + 1)]);
  }
  if (paths.length === 0) return CATCHUP.withheld;
  for (const [section, key] of paths) {
    const values = Object.hasOwn(msg.data, section) ? msg.data[section] : undefined;
    if (!isObject(values) || !Object.hasOwn(values, key)) return CATCHUP.withheld;
  }
  return RELAY;
}
