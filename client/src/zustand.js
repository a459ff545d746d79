// A Zustand store that follows a state client: the state sections, the
// local `ui`, `status` and `conflicts`, plus the client's actions.  Sections
// that did not change keep their objects, so selectors stay cheap.
import { createStore } from 'zustand/vanilla';

let latest = null;

export function createRoastrStore(client) {
  const pick = () => ({ ...client.state, status: client.status, conflicts: client.conflicts });
  const store = createStore(() => ({
    ...pick(),
    client,
    patch: (changes) => client.patch(changes),
    resolve: (conflict, choice) => client.resolve(conflict, choice),
    setUi: (partial) => client.setUi(partial),
    toggleRoasting: (enabled) => client.patch({ 'roasting.enabled': enabled }),
    sync: () => client.sync(),
  }));
  const off = client.subscribe(() => store.setState(pick()));
  store.destroy = off;
  latest = store;
  return store;
}

// The store useRoastrState falls back to without a <RoastrProvider>.
export const latestRoastrStore = () => latest;
