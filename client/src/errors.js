// Errors as the client reports them, whichever transport carried them: the
// server's SQLSTATE (`PT409`, `22023`, `42501`, `PT402`, `PT404`, …) or one
// of the client's own codes (`NETWORK`, `AUTH`, `CLOSED`).
import { fieldInMessage } from './fields.js';

export class StateError extends Error {
  constructor(code, message, { detail = null, hint = null, status = null, field = null } = {}) {
    super(message || code);
    this.name = 'StateError';
    this.code = code;
    this.detail = detail;
    this.hint = hint;
    this.status = status;
    this.field = field ?? fieldInMessage(message);
  }
}

// How the client treats a failed write:
//   'conflict' - PT409: conflicts for the user to resolve
//   'reject'   - the server refused it for good: roll back, report
//   'retry'    - network, server trouble, expired token: keep it, send again
//                with the same mutation_id (the server applies it at most once)
export function classify(code) {
  if (code === 'PT409') return 'conflict';
  if (code === 'NETWORK' || code === 'AUTH' || code === 'TIMEOUT') return 'retry';
  if (typeof code !== 'string') return 'retry';
  if (/^(22|23|42|0A|428|PT4|PGRST[12])/.test(code) || code === 'XX001') return 'reject';
  return 'retry';
}

// The JSON detail of a PT409 ({code: "E_CONFLICT", server_version,
// client_version, conflicts: [...]}) from a string or an object.
export function conflictDetail(detail) {
  let d = detail;
  if (typeof d === 'string') {
    try {
      d = JSON.parse(d);
    } catch {
      return null;
    }
  }
  return d && typeof d === 'object' && Array.isArray(d.conflicts) ? d : null;
}

export function networkError(message, cause) {
  const err = new StateError('NETWORK', message);
  if (cause) err.cause = cause;
  return err;
}
