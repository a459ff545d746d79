// One state_sync for the devices of a user that ask the same thing at once.
//
// A broadcast (a shared change) catches every connected device up, and the
// devices of one user usually hold the same cursor: without this, 10 devices
// of a user are 10 identical queries, and 10,000 devices wait behind each
// other for the pool.  shared(key, run) joins a call of the same key that is
// still waiting for a slot of `slot` (the limiter) and so has not read
// anything yet: its answer is at least as new as the joiner's request, which
// is all a device may assume of a sync it asked for.  A call whose query has
// started is never joined (it may predate the change that made the device
// ask); the next one with that key waits for a slot of its own.
//
// The key must name everything the answer depends on: the user, the
// caller's role, the cursor and its history (socket.js).  An error is
// shared like an answer; each device retries on its own.
// onShare(): called for every call that joined another (a metric).
export function coalescer(slot, onShare = () => {}) {
  const waiting = new Map();   // key -> {promise, started} not yet started
  const shared = (key, run) => {
    const w = waiting.get(key);
    if (w !== undefined) {
      shared.stats.joined++;
      onShare();
      return w.promise;
    }
    const entry = { started: false, promise: null };
    entry.promise = slot(() => {
      entry.started = true;
      if (waiting.get(key) === entry) waiting.delete(key);
      return run();
    });
    // (slot() runs it at once when a slot is free)
    if (!entry.started) waiting.set(key, entry);
    shared.stats.queries++;
    return entry.promise;
  };
  shared.stats = { queries: 0, joined: 0 };
  shared.waiting = () => waiting.size;
  return shared;
}
