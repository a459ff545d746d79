// What the gateway checks about its database connections before it trusts
// them.  Two questions, each asked on a live connection:
//
// 1. Is the login role no more than it needs?  The gateway's credentials
//    are as sensitive as JWT_SECRET (with them anyone can act as any user),
//    but they must not be more: a login role that is a superuser, bypasses
//    row security or is a member of any role but DB_ROLE (recursively) lets
//    whoever holds them become that role.  On Supabase `authenticator` is
//    granted anon, authenticated AND service_role: a gateway logging in as
//    it holds the service's keys.  It must log in as a role of its own:
//
//      CREATE ROLE roastr_gateway LOGIN NOINHERIT;
//      GRANT authenticated TO roastr_gateway;
//
// 2. Is the LISTEN connection a session of its own?  Through a transaction
//    pooler (PgBouncer pool_mode = transaction, Supavisor) consecutive
//    transactions of one client run on whichever server connection is free,
//    and a LISTEN stays behind on a server connection that then serves
//    other clients: notifications are lost, silently.  detectPooler() looks
//    for the signs a pooler cannot hide (below).
import pg from 'pg';
import { randomBytes } from 'node:crypto';

const { escapeIdentifier } = pg;

// Refusals of this kind stop the gateway at start (exit status 3): they are
// a matter of configuration, retrying does not help.
export const REFUSED_EXIT = 3;
export class PreflightError extends Error {
  constructor(message, { kind, details = {} } = {}) {
    super(message);
    this.name = 'PreflightError';
    this.kind = kind;           // 'login_role' or 'pooler'
    this.details = details;     // loggable facts: role names
  }
}

const ident = (name) => (/^[a-z_][a-z0-9_]*$/.test(name) ? name : escapeIdentifier(name));
export const CREATE_ROLE_SQL = (dbRole) =>
  `CREATE ROLE roastr_gateway LOGIN NOINHERIT; GRANT ${ident(dbRole)} TO roastr_gateway;`;

// The login role (session_user), its attributes, every role it is a member
// of (directly or through other memberships), and whether DB_ROLE exists
// and is itself privileged.
export const LOGIN_ROLE_SQL = `
WITH RECURSIVE granted(oid) AS (
  SELECT m.roleid FROM pg_catalog.pg_auth_members m
   WHERE m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)
  UNION
  SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN granted g ON m.member = g.oid
)
SELECT session_user::text AS login,
       r.rolsuper AS superuser,
       r.rolbypassrls AS bypassrls,
       ARRAY(SELECT g.rolname::text FROM granted JOIN pg_catalog.pg_roles g ON g.oid = granted.oid
             ORDER BY 1) AS memberships,
       t.rolname IS NOT NULL AS target_exists,
       coalesce(t.rolsuper, false) AS target_superuser,
       coalesce(t.rolbypassrls, false) AS target_bypassrls
  FROM pg_catalog.pg_roles r
  LEFT JOIN pg_catalog.pg_roles t ON t.rolname = $1
 WHERE r.rolname = session_user`;

// The problems with a login role, from the row of LOGIN_ROLE_SQL: [] when
// it is fit.  needMember: the role must be a member of dbRole (the query
// connection, which runs SET LOCAL ROLE); the LISTEN connection need not be.
export function judgeLoginRole(row, dbRole, { needMember = true } = {}) {
  const problems = [];
  const login = row.login;
  if (row.superuser) problems.push(`the login role "${login}" is a superuser`);
  if (row.bypassrls) problems.push(`the login role "${login}" has BYPASSRLS`);
  const extra = row.memberships.filter((r) => r !== dbRole);
  if (extra.length > 0) {
    problems.push(`the login role "${login}" is a member of ${extra.map((r) => `"${r}"`).join(', ')}` +
      ` besides "${dbRole}": whoever holds its credentials can SET ROLE to ${extra.length > 1 ? 'them' : 'it'}`);
  }
  if (!row.target_exists) {
    problems.push(`DB_ROLE "${dbRole}" does not exist`);
  } else {
    if (row.target_superuser) problems.push(`DB_ROLE "${dbRole}" is a superuser`);
    if (row.target_bypassrls) problems.push(`DB_ROLE "${dbRole}" has BYPASSRLS`);
    if (needMember && !row.memberships.includes(dbRole)) problems.push(`the login role "${login}" is not a member of "${dbRole}"`);
  }
  return problems;
}

// Check the login role of a connected client (pg.Client or a pooled
// client).  Returns {login, memberships, problems}.  With needMember, also
// tries SET LOCAL ROLE dbRole in a transaction that is rolled back (on
// PostgreSQL 16 a membership may be granted WITH SET FALSE).
export async function checkLoginRole(client, dbRole, { needMember = true } = {}) {
  const { rows: [row] } = await client.query(LOGIN_ROLE_SQL, [dbRole]);
  const problems = judgeLoginRole(row, dbRole, { needMember });
  if (needMember && row.memberships.includes(dbRole)) {
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL ROLE ${escapeIdentifier(dbRole)}`);
    } catch (err) {
      if (err.code !== '42501') throw err;
      problems.push(`the login role "${row.login}" cannot SET ROLE "${dbRole}" (${err.message})`);
    } finally {
      await client.query('ROLLBACK');
    }
  }
  return { login: row.login, memberships: row.memberships, problems };
}

// The refusal for a login role with problems (no secret in it: role names).
export function loginRoleError(what, result, dbRole) {
  return new PreflightError(
    `${what} connection: ${result.problems.join('; ')}. ` +
    `The gateway must log in as a role that can become "${dbRole}" and nothing else: ${CREATE_ROLE_SQL(dbRole)}` +
    ' (see gateway/README.md, "The database login")',
    { kind: 'login_role', details: { login: result.login, memberships: result.memberships } });
}

const pidOf = async (client) => Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);

// Does `client` reach PostgreSQL through a transaction (or statement)
// pooler?  Each statement below is a transaction of its own:
//
//   client: SELECT pg_backend_pid()                  -> p1
//   client: LISTEN <a random probe channel>
//   other:  SELECT pg_backend_pid()                  -> p2  (a second connection
//                                                       made the same way, open
//                                                       at the same time)
//   client: SELECT pg_backend_pid(), whether the probe channel is LISTENed -> p3
//   client: UNLISTEN the probe channel
//
// On a direct connection (or a session pooler) one client keeps one backend
// (p1 = p3), keeps its channels, and two clients open at once never share a
// backend (p2 differs).  A transaction pooler hands the next transaction to
// a free server connection: the pid changes, or the channel is gone, or
// the second client lands on the first one's backend (PgBouncer reuses the
// last freed server connection first, so on an idle pool it does).  Any of
// these is proof (none can happen without a pooler); their absence is not:
// a busy pooler may by chance give one client the same backend three times
// and the other client another.  The heartbeat keeps checking the pid.
//
// openOther(): a second connected client made like `client`; it is ended
// here.  When it cannot be opened or does not answer within otherTimeoutMs
// (a full session pool makes it wait), the other two signs are still
// checked.  Returns {pid, pooler: null | reason, compared: whether the
// second connection answered}.
export async function detectPooler(client, openOther, {
  channel = `roastr_state_gateway_probe_${randomBytes(6).toString('hex')}`,
  otherTimeoutMs = 3000,
} = {}) {
  const ch = escapeIdentifier(channel);
  const p1 = await pidOf(client);
  await client.query(`LISTEN ${ch}`);
  let p2 = null;
  let other = null;
  let done = false;
  let timer;
  const asked = (async () => {
    const o = await openOther();
    if (done) {                 // too late: not needed any more
      o.end().catch(() => {});
      return null;
    }
    other = o;
    return pidOf(o);
  })();
  asked.catch(() => {});
  try {
    p2 = await Promise.race([asked, new Promise((resolve) => { timer = setTimeout(resolve, otherTimeoutMs, null); })]);
  } catch {
    p2 = null;                  // no second connection to compare with
  } finally {
    done = true;
    clearTimeout(timer);
    // Not awaited: a connection still waiting for a server would hold us up.
    if (other) other.end().catch(() => {});
  }
  const { rows: [r] } = await client.query(
    'SELECT pg_backend_pid() AS pid, $1::text = ANY (ARRAY(SELECT pg_catalog.pg_listening_channels())) AS listening', [channel]);
  const p3 = Number(r.pid);
  await client.query(`UNLISTEN ${ch}`);
  let pooler = null;
  if (p3 !== p1) pooler = `consecutive transactions of one connection ran in different server processes (pid ${p1}, then ${p3})`;
  else if (!r.listening) pooler = 'a channel LISTENed in one transaction was no longer LISTENed in the next';
  else if (p2 === p1) pooler = `two connections open at the same time were served by one server process (pid ${p1})`;
  return { pid: p3, pooler, compared: p2 !== null };
}

export function poolerError(reason) {
  return new PreflightError(
    `the LISTEN connection goes through a transaction pooler (${reason}). LISTEN needs a direct session: ` +
    'point LISTEN_DATABASE_URL (or LISTEN_PGHOST and LISTEN_PGPORT) at PostgreSQL itself, or at a session-mode pooler; ' +
    'the queries run for devices may keep using the pooler',
    { kind: 'pooler' });
}
