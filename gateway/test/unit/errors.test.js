// What a device is told: database errors to acks and HTTP statuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorBody, httpStatus, isTransient, parseDetail, UNAVAILABLE } from '../../lib/errors.js';

// pg's DatabaseError carries code, message and detail like this
const dbError = (code, message, detail) => Object.assign(new Error(message), { code, detail });

test('a conflict keeps its code and message, and its JSON detail as an object', () => {
  const detail = '{"code": "E_CONFLICT", "server_version": 2, "client_version": 1, "conflicts": [{"field": "roasting.enabled", "server_value": false, "server_version": 2}]}';
  assert.deepEqual(errorBody(dbError('PT409', 'conflict on roasting.enabled', detail)), {
    code: 'PT409',
    message: 'conflict on roasting.enabled',
    detail: { code: 'E_CONFLICT', server_version: 2, client_version: 1, conflicts: [{ field: 'roasting.enabled', server_value: false, server_version: 2 }] },
  });
});

test('the extension\'s refusals keep their code and message; a detail that is not JSON stays text', () => {
  assert.deepEqual(errorBody(dbError('42501', 'field "subscription.plan" is written by the service only')),
    { code: '42501', message: 'field "subscription.plan" is written by the service only' });
  assert.deepEqual(errorBody(dbError('22023', 'invalid value for field "subscription.status"', 'A subscription cannot go from "active" to "trial".')),
    { code: '22023', message: 'invalid value for field "subscription.status"', detail: 'A subscription cannot go from "active" to "trial".' });
  assert.deepEqual(errorBody(dbError('PT402', 'persona.tolerance needs plan pro or plus')), { code: 'PT402', message: 'persona.tolerance needs plan pro or plus' });
  assert.deepEqual(errorBody(dbError('PT404', 'no state')), { code: 'PT404', message: 'no state' });
  assert.deepEqual(errorBody(dbError('XX001', 'could not decrypt field')), { code: 'XX001', message: 'could not decrypt field' });
});

test('parseDetail', () => {
  assert.equal(parseDetail(undefined), undefined);
  assert.equal(parseDetail('plain text'), 'plain text');
  assert.equal(parseDetail('{not json'), '{not json');
  assert.equal(parseDetail('42'), '42');       // only objects and lists are decoded
  assert.deepEqual(parseDetail(' {"a": 1}'), { a: 1 });
  assert.deepEqual(parseDetail('[1, 2]'), [1, 2]);
});

test('a lost or unreachable database is 08006: retry with the same mutation_id', () => {
  const transient = [
    Object.assign(new Error('role "authenticator" is not permitted to log in'), { code: '28000', phase: 'connect' }),
    Object.assign(new Error('connect ECONNREFUSED /tmp/.s.PGSQL.5432'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
    // five capital letters, like a SQLSTATE, but a system error of the socket
    Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' }),
    Object.assign(new Error('write EBADF'), { code: 'EBADF', errno: -9, syscall: 'write' }),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
    dbError('08006', 'connection failure'), dbError('08P01', 'protocol violation'),
    dbError('57P01', 'terminating connection due to administrator command'),
    dbError('57P03', 'the database system is starting up'),
    dbError('53300', 'too many connections'), dbError('40001', 'could not serialize'),
    dbError('40P01', 'deadlock detected'), dbError('57014', 'canceling statement due to statement timeout'),
    undefined,
  ];
  for (const err of transient) {
    assert.equal(isTransient(err), true, err?.message);
    const body = errorBody(err, 'retry with the same mutation_id');
    assert.deepEqual(body, { code: UNAVAILABLE, message: 'retry with the same mutation_id' });
  }
  assert.equal(UNAVAILABLE, '08006');
  for (const code of ['PT409', '42501', '22023', '22P02', 'PT402', 'PT404', '25006', 'XX000', '23505']) {
    assert.equal(isTransient(dbError(code, 'x')), false, code);
  }
});

test('HTTP statuses as PostgREST gives them', () => {
  const expect = {
    PT401: 401, PT402: 402, '42501': 403, PT404: 404, PT409: 409, '22023': 400, '22P02': 400, '22007': 400,
    '428C9': 400, '0A000': 400, '08006': 503, XX001: 500, F0000: 500, '25006': 500, '42883': 500, XX000: 500,
  };
  for (const [code, status] of Object.entries(expect)) assert.equal(httpStatus(code), status, code);
  assert.equal(httpStatus(undefined), 500);
});
