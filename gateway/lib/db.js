// Queries run on behalf of a device: its role and JWT claims are set for one
// transaction only, the way PostgREST does, so the extension's own checks
// (authorize_channel, state_sync's "a user reads only their own state")
// judge the device, not the gateway.
import pg from 'pg';
import { errFields } from './log.js';

const { escapeLiteral, escapeIdentifier } = pg;

export class Db {
  constructor(cfg, log) {
    this.pool = new pg.Pool({ ...cfg.pg, max: cfg.poolMax, application_name: 'roastr_state_gateway' });
    // A pooled connection that dies while idle (server restart) is dropped
    // by the pool; without a listener the 'error' event would crash us.
    this.pool.on('error', (err) => log.warn('idle database connection lost', errFields(err)));
    this.setRole = `SET LOCAL ROLE ${escapeIdentifier(cfg.dbRole)}`;
  }

  // One round trip: the statements of a simple query run as one implicit
  // transaction, so the SET LOCAL and set_config(..., true) end with it,
  // and an error rolls all of it back.  Values are quoted with
  // escapeLiteral; callers pass only checked ids and integers.
  async asDevice(claimsJson, select) {
    const results = await this.pool.query(
      `${this.setRole}; SELECT set_config('request.jwt.claims', ${escapeLiteral(claimsJson)}, true); ${select}`);
    return results[2].rows[0];
  }

  async authorizeChannel(claimsJson, channel) {
    const row = await this.asDevice(claimsJson,
      `SELECT roastr_state.authorize_channel(${escapeLiteral(channel)}) AS ok`);
    return row.ok === true;
  }

  // {changes, cursor, lastSyncedAt}: every field changed after `cursor`.
  async stateSync(claimsJson, userId, cursor) {
    const row = await this.asDevice(claimsJson,
      `SELECT roastr_state.state_sync(${escapeLiteral(userId)}::uuid, ${Number(cursor)}::bigint) AS s`);
    return row.s;
  }

  end() {
    return this.pool.end();
  }
}
