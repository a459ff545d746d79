// roastr-state-client: the device side of roastr_state.  No imports outside
// this folder: a browser can load it as it is (<script type="module">).
export { createStateClient } from './client.js';
export { memoryStorage, localStorageAdapter, indexedDbStorage } from './storage.js';
export { gatewayTransport } from './gateway.js';
export { postgrestTransport } from './postgrest.js';
export { StateError } from './errors.js';
export { FIELDS, USER_FIELDS, PERSONA_TEXT, UI_DEFAULTS } from './fields.js';
