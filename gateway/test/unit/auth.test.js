// createVerifier(): HS256 JWTs with exp and a uuid sub; bearerToken().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { AuthError, bearerToken, createVerifier, expired } from '../../lib/auth.js';

const KEY = Buffer.from('k'.repeat(32));
const U = 'A1111111-1111-4111-8111-111111111111';
const now = () => Math.floor(Date.now() / 1000);
const sign = (claims, { key = KEY, alg = 'HS256', exp = now() + 60 } = {}) => {
  let j = new SignJWT(claims).setProtectedHeader({ alg });
  if (exp !== null) j = j.setExpirationTime(exp);
  return j.sign(key);
};
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

async function refused(verify, token, message) {
  await assert.rejects(verify(token), (err) => err instanceof AuthError && err.message === message);
}

test('a valid token gives the sub (lower case), exp and the claims exactly as sent', async () => {
  const verify = createVerifier({ jwtKey: KEY });
  const exp = now() + 60;
  const token = await sign({ sub: U, role: 'authenticated', app_metadata: { x: 1 } }, { exp });
  const id = await verify(token);
  assert.equal(id.sub, U.toLowerCase());
  assert.equal(id.exp, exp);
  assert.deepEqual(JSON.parse(id.claims), { sub: U, role: 'authenticated', app_metadata: { x: 1 }, exp });
  assert.equal(id.role, 'authenticated');
});

test('missing, forged, unsigned, expired, exp-less tokens and a non-uuid sub are refused', async () => {
  const verify = createVerifier({ jwtKey: KEY });
  await refused(verify, undefined, 'missing token');
  await refused(verify, '', 'missing token');
  await refused(verify, 42, 'missing token');
  await refused(verify, 'not.a.jwt', 'invalid token');
  await refused(verify, await sign({ sub: U }, { key: Buffer.from('x'.repeat(32)) }), 'invalid token');
  await refused(verify, `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: U, exp: now() + 60 })}.`, 'invalid token');
  await refused(verify, await sign({ sub: U }, { alg: 'HS512' }), 'invalid token');
  await refused(verify, await sign({ sub: U }, { exp: now() - 60 }), 'token expired');
  await refused(verify, await sign({ sub: U }, { exp: null }), 'invalid token');
  await refused(verify, await sign({ role: 'authenticated' }), 'invalid token');
  await refused(verify, await sign({ sub: 'not-a-uuid' }), 'sub is not a uuid');
  await refused(verify, await sign({ sub: 7 }), 'sub is not a uuid');
});

test('jose\'s reason is kept for the log', async () => {
  const verify = createVerifier({ jwtKey: KEY });
  await assert.rejects(verify(await sign({ sub: U }, { exp: now() - 60 })), (err) => err.jose === 'ERR_JWT_EXPIRED');
});

test('the audience is checked when configured', async () => {
  const verify = createVerifier({ jwtKey: KEY, jwtAudience: 'authenticated' });
  assert.equal((await verify(await sign({ sub: U, aud: 'authenticated' }))).sub, U.toLowerCase());
  await refused(verify, await sign({ sub: U, aud: 'other' }), 'invalid token');
  await refused(verify, await sign({ sub: U }), 'invalid token');
});

test('bearerToken', () => {
  assert.equal(bearerToken('Bearer abc.def.ghi'), 'abc.def.ghi');
  assert.equal(bearerToken('bearer   abc'), 'abc');
  assert.equal(bearerToken('Bearer abc '), 'abc');
  for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'abc', 'Bearer a b', 'Token abc']) {
    assert.equal(bearerToken(h), null, String(h));
  }
});

test('expired', () => {
  assert.equal(expired(100, 99_999), false);
  assert.equal(expired(100, 100_000), true);
});
