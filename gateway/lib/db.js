// Queries run on behalf of a device, exactly as PostgREST runs them: one
// transaction that takes the device's role and JWT claims for itself only,
//
//   BEGIN; SET LOCAL ROLE authenticated;
//   SELECT set_config('request.jwt.claims', $1, true);
//   SELECT roastr_state.…($2, …);
//   COMMIT;
//
// so the extension's own checks (authorize_channel, "a user reads and writes
// only their own state", "service fields are the service's") judge the
// device, not the gateway.  Values travel as bind parameters, never inside
// the SQL text (persona text must never reach a log line).  The transaction
// is read-write: state_full and state_sync are VOLATILE and may write a
// settled time-driven change down.
import pg from 'pg';
import { errFields } from './log.js';
import { checkLoginRole } from './preflight.js';

const { escapeIdentifier } = pg;
const SET_CLAIMS = "SELECT set_config('request.jwt.claims', $1, true)";
const SYNC2 = 'SELECT roastr_state.state_sync($1::uuid, $2::bigint) AS s';
const SYNC3 = 'SELECT roastr_state.state_sync($1::uuid, $2::bigint, $3::text) AS s';
export const HAS_SYNC3 = 'SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace'
  + " WHERE n.nspname = 'roastr_state' AND p.proname = 'state_sync'"
  + " AND p.proargtypes = '2950 20 25'::pg_catalog.oidvector) AS ok";   // (uuid, bigint, text)
export const HISTORY_RECHECK_MS = 60000;

export class Db {
  // pool: for tests; by default a pg.Pool of cfg.poolMax connections.
  constructor(cfg, log, pool = new pg.Pool({ ...cfg.pg, max: cfg.poolMax, application_name: 'roastr_state_gateway' })) {
    this.log = log;
    this.pool = pool;
    // A pooled connection that dies while idle (server restart) is dropped
    // by the pool; without a listener the 'error' event would crash us.
    this.pool.on('error', (err) => log.warn('idle database connection lost', errFields(err)));
    this.dbRole = cfg.dbRole;
    this.begin = `BEGIN; SET LOCAL ROLE ${escapeIdentifier(cfg.dbRole)}`;
    this.historySync = undefined;   // state_sync(uuid, bigint, text) exists: unknown yet (hasHistorySync)
    this.historySyncAt = 0;
    this.historyCheck = null;
  }

  // The pool's login role, checked on one of its connections (preflight.js):
  // {login, memberships, problems}.  Connection failures are thrown as they
  // are.
  async checkLoginRole() {
    const client = await this.pool.connect();
    let broken;
    const onError = (err) => { broken = err; };
    client.on('error', onError);
    try {
      return await checkLoginRole(client, this.dbRole);
    } catch (err) {
      broken ??= err;
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  // The first row of `text` run with the device's claims (JSON text).  A
  // failure to get a connection is marked err.phase = 'connect'.
  async asDevice(claims, text, values) {
    let client;
    try {
      client = await this.pool.connect();
    } catch (err) {
      err.phase = 'connect';
      throw err;
    }
    // While checked out, a connection's 'error' event is ours to handle
    // (the pool listens only while it is idle): a connection killed under
    // a running query would otherwise crash the gateway.  The query itself
    // fails too; the connection is then thrown away.
    let broken;
    const onError = (err) => { broken = err; };
    client.on('error', onError);
    try {
      await client.query(this.begin);
      await client.query(SET_CLAIMS, [claims]);
      const res = await client.query(text, values);
      await client.query('COMMIT');
      return res.rows[0];
    } catch (err) {
      // After an error in the transaction the connection is still good
      // once rolled back; if even that fails, it is thrown away.
      if (!broken) await client.query('ROLLBACK').catch((e) => { broken = e; });
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  async authorizeChannel(claims, channel) {
    const row = await this.asDevice(claims, 'SELECT roastr_state.authorize_channel($1) AS ok', [channel]);
    return row.ok === true;
  }

  // {changes, cursor, lastSyncedAt[, history, reset]}: every field changed
  // after `cursor`, or (reset: true) every field when the cursor's history
  // is not this server's (0.5.0).  userId null: the caller's own state.
  //
  // The history goes to the 3-argument state_sync(uuid, bigint, text) of
  // 0.5.0 when there is one and that function exists; otherwise the
  // 2-argument one runs (a bare cursor: with 0.5.0 it answers history and
  // reset as well, before 0.5.0 neither).  So the gateway works with the
  // extension before and after the upgrade, and a device that sends no
  // history costs no lookup.
  async stateSync(claims, userId, cursor, history = null) {
    if (history !== null && await this.hasHistorySync()) {
      try {
        const row = await this.asDevice(claims, SYNC3, [userId, cursor, history]);
        return row.s;
      } catch (err) {
        if (err.code !== '42883') throw err;
        // undefined_function: the extension went back to a version
        // without it; ask again later.
        this.historySync = undefined;
      }
    }
    const row = await this.asDevice(claims, SYNC2, [userId, cursor]);
    return row.s;
  }

  // Whether roastr_state.state_sync(uuid, bigint, text) exists, from the
  // catalog (readable by any role) on a pooled connection.  A yes is kept
  // (until a call says otherwise), a no for HISTORY_RECHECK_MS: an ALTER
  // EXTENSION ... UPDATE while the gateway runs is seen within a minute.
  async hasHistorySync() {
    if (this.historySync === true) return true;
    if (this.historySync === false && Date.now() - this.historySyncAt < HISTORY_RECHECK_MS) return false;
    this.historyCheck ??= (async () => {
      let client;
      try {
        client = await this.pool.connect();
      } catch (err) {
        err.phase = 'connect';
        throw err;
      }
      let broken;
      const onError = (err) => { broken = err; };
      client.on('error', onError);
      try {
        const res = await client.query(HAS_SYNC3);
        this.historySync = res.rows[0]?.ok === true;
        this.historySyncAt = Date.now();
        this.log.info('state_sync with a history', { available: this.historySync });
        return this.historySync;
      } catch (err) {
        broken ??= err;
        throw err;
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    })().finally(() => { this.historyCheck = null; });
    return this.historyCheck;
  }

  async stateFull(claims) {
    const row = await this.asDevice(claims, 'SELECT roastr_state.state_full(NULL::uuid) AS s', []);
    return row.s;
  }

  // {version, applied}, or the extension's error (PT409, 42501, 22023, ...).
  async patch(claims, changes, baseVersion, mutationId) {
    const row = await this.asDevice(claims,
      'SELECT roastr_state.patch(NULL::uuid, $1::jsonb, $2::bigint, $3::uuid) AS r',
      [JSON.stringify(changes), baseVersion, mutationId]);
    return row.r;
  }

  end() {
    return this.pool.end();
  }
}
