// A Supabase-style access token for the example and the browser test:
// HS256 over {sub, role: 'authenticated', aud: 'authenticated', iat, exp},
// signed with the gateway's JWT_SECRET.  (A real app gets it from its auth
// service: supabase.auth.getSession().)  Node only.
import { createHmac } from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export function signToken({ secret, sub, ttlSeconds = 12 * 3600, claims = {} }) {
  if (!secret) throw new TypeError('signToken: secret is required');
  if (!/^[0-9a-f-]{36}$/i.test(sub ?? '')) throw new TypeError('signToken: sub must be a uuid');
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, role: 'authenticated', aud: 'authenticated', iat: now, exp: now + ttlSeconds, ...claims }));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
