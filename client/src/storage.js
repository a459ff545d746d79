// Storage adapters: where a client keeps its offline queue, cursor, last
// server state (never persona text) and local `ui` settings.  An adapter is
// three async methods over string values:
//   get(key) -> string | null,  set(key, value),  remove(key)

// In memory (Node, tests).  Share one between client instances to model a
// reload.  `entries()` shows everything stored (tests check for persona text).
export function memoryStorage(map = new Map()) {
  return {
    kind: 'memory',
    async get(key) {
      return map.has(key) ? map.get(key) : null;
    },
    async set(key, value) {
      map.set(key, String(value));
    },
    async remove(key) {
      map.delete(key);
    },
    entries() {
      return [...map.entries()];
    },
  };
}

// window.localStorage (synchronous underneath; ~5 MB per origin).
export function localStorageAdapter({ localStorage = globalThis.localStorage, prefix = '' } = {}) {
  if (!localStorage) throw new TypeError('localStorageAdapter: no localStorage here');
  return {
    kind: 'localStorage',
    async get(key) {
      return localStorage.getItem(prefix + key);
    },
    async set(key, value) {
      localStorage.setItem(prefix + key, String(value));
    },
    async remove(key) {
      localStorage.removeItem(prefix + key);
    },
  };
}

// IndexedDB: one object store of strings.  The database opens lazily, once.
export function indexedDbStorage({ indexedDB = globalThis.indexedDB, name = 'roastr-state', store = 'kv' } = {}) {
  if (!indexedDB) throw new TypeError('indexedDbStorage: no indexedDB here');
  let dbp = null;
  const open = () => {
    dbp ??= new Promise((resolve, reject) => {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(store);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => {
        dbp = null;
        reject(req.error);
      };
    });
    return dbp;
  };
  const run = async (mode, fn) => {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const req = fn(tx.objectStore(store));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  };
  return {
    kind: 'indexedDB',
    async get(key) {
      const v = await run('readonly', (s) => s.get(key));
      return v === undefined ? null : v;
    },
    async set(key, value) {
      await run('readwrite', (s) => s.put(String(value), key));
    },
    async remove(key) {
      await run('readwrite', (s) => s.delete(key));
    },
    async close() {
      if (dbp) (await dbp).close();
      dbp = null;
    },
  };
}
