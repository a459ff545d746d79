// Who a device is: the verified JWT it sends to the API, over the socket
// (auth.token) or HTTP (Authorization: Bearer).  HS256 only, exp and a uuid
// sub required, aud checked when configured.  The claims handed to the
// database are exactly the token's.
import { jwtVerify, errors as joseErrors } from 'jose';
import { isUuid } from './validate.js';

export class AuthError extends Error {
  // message: 'missing token', 'invalid token', 'token expired' or
  // 'sub is not a uuid'; jose: jose's error code (for the log).
  constructor(message, jose) {
    super(message);
    this.name = 'AuthError';
    this.jose = jose;
  }
}

// verify(token) -> {sub, exp, role, claims} (role: the payload's, or null;
// claims: the payload as JSON text, for request.jwt.claims), or throws
// AuthError.
export function createVerifier({ jwtKey, jwtAudience }) {
  return async function verify(token) {
    if (typeof token !== 'string' || token === '') throw new AuthError('missing token');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwtKey, {
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'sub'],
        audience: jwtAudience,
      }));
    } catch (err) {
      throw new AuthError(err instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token', err.code);
    }
    if (!isUuid(payload.sub)) throw new AuthError('sub is not a uuid');
    return { sub: payload.sub.toLowerCase(), exp: payload.exp, role: payload.role ?? null, claims: JSON.stringify(payload) };
  };
}

// The token of an "Authorization: Bearer <token>" header; null without one.
export function bearerToken(header) {
  if (typeof header !== 'string') return null;
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return m ? m[1] : null;
}

// Whether a verified token has expired by now (a connection outlives the
// check at its start).
export const expired = (exp, now = Date.now()) => exp * 1000 <= now;
