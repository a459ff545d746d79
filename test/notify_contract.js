// The notification contract, as a law checked on every write path the
// extension has (run by test/extra/notify_contract.sh against a database of
// the running cluster; PG* environment as set by scripts/cluster.sh).
//
// For every transaction of every path, and for every user it may touch:
//   - the user's version did not move  => no notification for that user;
//   - the version moved from B to A     => exactly one notification on
//     "user:<id>" (and the same with user_id on "roastr_state") with
//     version A, whose "fields" is a non-empty list equal to the fields
//     state_sync(user, B) reports at A (for a one-statement transaction
//     B = A - 1), whose "data" holds the value of every named field that
//     payloads may carry, equal to what state_sync reports, and nothing
//     else;
//   - every shown value that differs between state_full before and after
//     is among those fields (a device that applies the payload, or the
//     sync, ends equal to state_full).
// The syncs and full reads of the checks run READ ONLY, so they compute
// time-driven moves without writing them (they would be versions of their
// own).
//
// An operator's change of a shared row (a plan's limit, an organization's
// name, a role, a deleted organization; 0.7.0) moves no version in its own
// transaction and sends exactly one broadcast on roastr_state_broadcast,
// checked payload for payload; every other transaction sends none.  The
// next writable read of each affected user then settles it under the same
// law as any write.
import { createRequire } from 'node:module';
import { createHmac, randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';

const require = createRequire(new URL('../gateway/package.json', import.meta.url));
const pg = require('pg');

const DB = process.env.CONTRACT_DB || 'rs_notify_contract';
// Named in payloads, never carried (README, "Notifications").
const WITHHELD = new Set([
  'auth.email', 'auth.name', 'subscription.polar_subscription_id',
  'subscription.polar_customer_id', 'persona.identity', 'persona.intolerance',
  'persona.tolerance', 'organization.id', 'organization.name',
  'organization.slug', 'organization.role',
]);

let passed = 0;
let failed = 0;
const failures = [];
function check(ok, what, detail) {
  if (ok) {
    passed++;
  } else {
    failed++;
    failures.push(what);
    console.log(`not ok - ${what}${detail ? `\n    ${detail}` : ''}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sameJson = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// flatten a state_full-shaped object to {"section.key": value}
function flatten(doc) {
  const out = {};
  for (const [sec, obj] of Object.entries(doc)) {
    if (sec === '_meta') continue;
    if (obj === null) {
      for (const k of ['id', 'name', 'slug', 'role']) out[`${sec}.${k}`] = null;
      continue;
    }
    for (const [k, v] of Object.entries(obj)) out[`${sec}.${k}`] = v;
  }
  return out;
}

const users = {
  ann: 'c1111111-1111-4111-8111-111111111111',
  bob: 'c2222222-2222-4222-8222-222222222222',
  cat: 'c3333333-3333-4333-8333-333333333333',
  dan: 'c4444444-4444-4444-8444-444444444444',
  eve: 'c5555555-5555-4555-8555-555555555555',
  sentinel: 'c9999999-9999-4999-8999-999999999999',
};
const tracked = Object.entries(users).filter(([n]) => n !== 'sentinel').map(([, u]) => u);

async function main() {
  const admin = new pg.Client({ database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();

  const db = new pg.Client({ database: DB });          // the service (superuser)
  const listener = new pg.Client({ database: DB });
  await db.connect();
  await listener.connect();
  try {
    await run(db, listener);
  } finally {
    await listener.end().catch(() => {});
    await db.end().catch(() => {});
    const a = new pg.Client({ database: 'postgres' });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`).catch(() => {});
    await a.end();
  }
}

async function run(db, listener) {
  await db.query('SET client_min_messages = warning');
  await db.query('CREATE EXTENSION roastr_state');
  for (const [name, u] of Object.entries(users)) {
    await db.query('SELECT roastr_state.ensure_user($1, $2, $3)', [u, `${name}@example.com`, name]);
  }

  // a webhook secret in a mode-0600 file of the data directory
  const secret = Buffer.from('contract-test-webhook-secret-0123456789');
  const whsec = `whsec_${secret.toString('base64')}`;
  await db.query(`DO $$ BEGIN EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', '${whsec}',
      'umask 077 && cat > ' || current_setting('data_directory') || '/roastr_contract_whsec'); END $$`);
  await db.query(`SELECT set_config('roastr_state.webhook_secret_file',
      current_setting('data_directory') || '/roastr_contract_whsec', false)`);

  // every notification, in arrival order
  const got = [];
  listener.on('notification', (n) => got.push({ channel: n.channel, payload: JSON.parse(n.payload) }));
  for (const u of Object.values(users)) await listener.query(`LISTEN "user:${u}"`);
  await listener.query('LISTEN roastr_state');
  await listener.query('LISTEN roastr_state_broadcast');

  const q = async (sql, params) => (await db.query(sql, params)).rows;
  const version = async (u) => {
    const r = await q('SELECT version FROM roastr_state.state WHERE user_id = $1', [u]);
    return r.length ? Number(r[0].version) : null;
  };
  // READ ONLY: computed, never written
  const readOnly = async (sql, params) => {
    await db.query('BEGIN READ ONLY');
    try {
      return (await db.query(sql, params)).rows[0];
    } finally {
      await db.query('COMMIT');
    }
  };
  const full = async (u) => (await readOnly('SELECT roastr_state.state_full($1) AS s', [u])).s;
  const sync = async (u, since) =>
    (await readOnly('SELECT roastr_state.state_sync($1, $2::bigint) AS s', [u, since])).s;

  // Wait until everything committed so far has been announced: commit a
  // change of the sentinel user and wait for its notification.
  let sentinelLevel = 1;
  async function drain() {
    sentinelLevel = sentinelLevel % 5 + 1;
    const r = await q(`SELECT roastr_state.patch($1, jsonb_build_object('roasting.roast_level', $2::int)) AS p`,
      [users.sentinel, sentinelLevel]);
    const v = r[0].p.version;
    for (let i = 0; i < 500; i++) {
      if (got.some((n) => n.channel === `user:${users.sentinel}` && n.payload.version === v)) break;
      await sleep(10);
    }
    const mine = got.filter((n) => n.channel === `user:${users.sentinel}` || n.payload.user_id === users.sentinel);
    got.splice(0, got.length, ...got.filter((n) => !mine.includes(n)));
  }

  // One transaction of a path: "sql" is a string (one statement) or a list
  // (run between BEGIN and COMMIT).  "as" = a user id runs it as that user,
  // the way PostgREST does.
  async function txn(label, sql, opts = {}) {
    const before = {};
    for (const u of tracked) {
      const v = await version(u);
      before[u] = { v, full: v === null ? null : await full(u) };
    }
    got.length = 0;
    const stmts = Array.isArray(sql) ? sql : [sql];
    const multi = Array.isArray(sql) || opts.as;
    try {
      if (multi) await db.query('BEGIN');
      if (opts.as) {
        await db.query('SET LOCAL ROLE authenticated');
        await db.query(`SELECT set_config('request.jwt.claims', $1, true)`,
          [JSON.stringify({ sub: opts.as, role: 'authenticated' })]);
      }
      for (const s of stmts) await db.query(s);
      if (multi) await db.query('COMMIT');
    } catch (e) {
      if (multi) await db.query('ROLLBACK').catch(() => {});
      check(false, `${label}: runs`, e.message);
      return;
    }
    await drain();
    let moved = 0;
    for (const u of tracked) {
      const b = before[u];
      const a = await version(u);
      const mine = got.filter((n) => n.channel === `user:${u}`);
      const shared = got.filter((n) => n.channel === 'roastr_state' && n.payload.user_id === u);
      const who = `${label} [${Object.keys(users).find((k) => users[k] === u)}]`;
      if (a === null || b.v === null || a === b.v) {
        check(mine.length === 0 && shared.length === 0, `${who}: no version, no notification`,
          JSON.stringify(mine.map((n) => n.payload)));
        continue;
      }
      moved++;
      check(mine.length === 1 && shared.length === 1, `${who}: one notification per channel`,
        `got ${mine.length} and ${shared.length}`);
      if (mine.length !== 1) continue;
      const n = mine[0].payload;
      const s0 = await sync(u, a);
      check(n.version === a, `${who}: notified version is the new version`, `${n.version} != ${a}`);
      check(n.history === s0.history.split('.').slice(0, 2).join('.'),
        `${who}: the payload's history is the server's history line (no WAL position)`,
        `${n.history} vs state_sync's ${s0.history}`);
      if (shared.length === 1) {
        const { user_id: _drop, ...rest } = shared[0].payload;
        check(sameJson(rest, n), `${who}: the shared channel carries the same payload`);
      }
      check(Array.isArray(n.fields) && n.fields.length > 0 && new Set(n.fields).size === n.fields.length,
        `${who}: fields is a non-empty list without repeats`, JSON.stringify(n.fields));
      const s = await sync(u, b.v);
      const synced = Object.fromEntries(s.changes.map((c) => [c.field, c.value]));
      const named = [...(n.fields || [])].sort();
      const reported = Object.keys(synced).sort();
      check(sameJson(named, reported), `${who}: fields equal what state_sync(u, ${b.v}) reports at ${a}`,
        `named ${JSON.stringify(named)}\n    synced ${JSON.stringify(reported)}`);
      if (a === b.v + 1) {
        const s1 = await sync(u, a - 1);
        check(sameJson(named, s1.changes.map((c) => c.field).sort()),
          `${who}: fields equal what state_sync(u, version - 1) reports`);
      }
      const data = flatten(n.data || {});
      for (const [f, v] of Object.entries(data)) {
        check(named.includes(f) && !WITHHELD.has(f), `${who}: data holds only named, carried fields (${f})`);
        check(sameJson(v, synced[f]), `${who}: data value of ${f} equals the sync's`,
          `${JSON.stringify(v)} != ${JSON.stringify(synced[f])}`);
      }
      for (const f of named) {
        if (!WITHHELD.has(f)) check(f in data, `${who}: the value of ${f} is in data`);
      }
      const after = flatten(await full(u));
      const prior = flatten(b.full);
      for (const f of Object.keys(after)) {
        if (!sameJson(after[f], prior[f])) {
          check(named.includes(f), `${who}: changed value of ${f} is named`,
            `${JSON.stringify(prior[f])} -> ${JSON.stringify(after[f])}`);
        }
      }
      // a device holding state_full at B that applies the payload (and a
      // sync for withheld values) ends equal to state_full at A
      const device = { ...prior, ...data };
      for (const f of named) if (WITHHELD.has(f)) device[f] = synced[f];
      check(sameJson(Object.keys(after).sort().map((k) => device[k]),
        Object.keys(after).sort().map((k) => after[k])), `${who}: a device applying it ends equal to state_full`);
    }
    if (opts.expectMoved !== undefined) {
      check(moved === opts.expectMoved, `${label}: ${opts.expectMoved} user(s) got a new version`, `got ${moved}`);
    }
    const broadcasts = got.filter((n) => n.channel === 'roastr_state_broadcast').map((n) => n.payload);
    check(sameJson(broadcasts, opts.broadcasts ?? []), `${label}: ${(opts.broadcasts ?? []).length} broadcast(s), exactly as expected`,
      JSON.stringify(broadcasts));
    console.log(`ok - ${label} (${moved} user(s) notified)`);
  }

  const { ann, bob, cat, dan, eve } = users;
  const lit = (v) => `'${String(v).replace(/'/g, "''")}'`;
  const j = (o) => `${lit(JSON.stringify(o))}::jsonb`;

  // --- patch, as the user and as the service
  await txn('patch roasting.enabled as the user', `SELECT roastr_state.patch(NULL, ${j({ 'roasting.enabled': false })})`, { as: ann, expectMoved: 1 });
  await txn('patch two roasting fields as the user', `SELECT roastr_state.patch(NULL, ${j({ 'roasting.roast_level': 5, 'roasting.shield_level': 'estricto' })})`, { as: ann, expectMoved: 1 });
  await txn('patch auth.name (personal: withheld)', `SELECT roastr_state.patch(NULL, ${j({ 'auth.name': 'Ann B.' })})`, { as: ann, expectMoved: 1 });
  await txn('patch with a base version, no conflict', `SELECT roastr_state.patch(${lit(ann)}, ${j({ 'roasting.enabled': true })}, (SELECT version FROM roastr_state.state WHERE user_id = ${lit(ann)}))`, { expectMoved: 1 });
  await txn('a patch that changes nothing', `SELECT roastr_state.patch(${lit(ann)}, ${j({ 'roasting.enabled': true })})`, { expectMoved: 0 });
  await txn('patch with a mutation id', `SELECT roastr_state.patch(${lit(ann)}, ${j({ 'roasting.roast_level': 2 })}, NULL, 'd0000000-0000-4000-8000-000000000001')`, { expectMoved: 1 });
  await txn('the same mutation id again', `SELECT roastr_state.patch(${lit(ann)}, ${j({ 'roasting.roast_level': 2 })}, NULL, 'd0000000-0000-4000-8000-000000000001')`, { expectMoved: 0 });
  await txn('service patch: free -> starter trial', `SELECT roastr_state.patch(${lit(bob)}, ${j({ 'subscription.plan': 'starter', 'subscription.status': 'trial', 'subscription.trial_ends_at': new Date(Date.now() + 10 * 86400e3).toISOString() })})`, { expectMoved: 1 });
  await txn('service patch: trial -> active with a billing period', `SELECT roastr_state.patch(${lit(bob)}, ${j({ 'subscription.status': 'active', 'subscription.current_period_start': new Date(Date.now() - 86400e3).toISOString(), 'subscription.current_period_end': new Date(Date.now() + 29 * 86400e3).toISOString() })})`, { expectMoved: 1 });
  await txn('ensure_user with a new e-mail', `SELECT roastr_state.ensure_user(${lit(cat)}, 'cat2@example.com')`, { expectMoved: 1 });

  // --- direct UPDATEs by the service
  await txn('direct UPDATE of roasting_enabled', `UPDATE roastr_state.state SET roasting_enabled = false WHERE user_id = ${lit(cat)}`, { expectMoved: 1 });
  await txn('direct UPDATE of the plan (limits read by the trigger)', `UPDATE roastr_state.state SET plan = 'pro', subscription_status = 'active' WHERE user_id = ${lit(dan)}`, { expectMoved: 1 });

  // --- consumption
  await txn('consume_roasts, one statement', `SELECT roastr_state.consume_roasts(${lit(ann)}, 1)`, { expectMoved: 1 });
  await txn('consume_roasts with a key', `SELECT roastr_state.consume_roasts(${lit(ann)}, 3, 'k-1')`, { expectMoved: 1 });
  await txn('consume_roasts, the key again', `SELECT roastr_state.consume_roasts(${lit(ann)}, 3, 'k-1')`, { expectMoved: 0 });
  await txn('consume_roasts as the user', `SELECT roastr_state.consume_roasts(NULL, 2)`, { as: cat, expectMoved: 1 });
  await txn('consume_roasts refused (over the limit)', `SELECT roastr_state.consume_roasts(${lit(ann)}, 100000)`, { expectMoved: 0 });
  await txn('consume_roasts on a paid plan', `SELECT roastr_state.consume_roasts(${lit(bob)}, 5)`, { expectMoved: 1 });

  // --- persona
  await txn('persona text (withheld)', `SELECT roastr_state.patch(NULL, ${j({ 'persona.identity': 'I roast kindly', 'persona.intolerance': 'spoilers' })})`, { as: eve, expectMoved: 1 });
  await txn('mark_embeddings', `SELECT roastr_state.mark_embeddings(${lit(eve)}, 'text-embedding-3-small', now())`, { expectMoved: 1 });
  await txn('persona.tolerance on pro', `SELECT roastr_state.patch(NULL, ${j({ 'persona.tolerance': 'puns' })})`, { as: dan, expectMoved: 1 });
  await txn('pro -> free hides persona.tolerance', `SELECT roastr_state.patch(${lit(dan)}, ${j({ 'subscription.plan': 'free' })})`, { expectMoved: 1 });

  // --- webhooks
  await q(`SELECT roastr_state.set_product_plan('prod_plus', 'plus')`);
  const deliver = (id, body) => {
    const ts = String(Math.floor(Date.now() / 1000));
    const sig = createHmac('sha256', secret).update(`${id}.${ts}.${body}`).digest('base64');
    return `SELECT roastr_state.apply_polar_webhook(${lit(id)}, ${lit(ts)}, ${lit(`v1,${sig}`)}, ${lit(body)})`;
  };
  const event = (type, status, modified, cape = false) => JSON.stringify({
    type, timestamp: modified, data: {
      id: 'sub_c1', status, modified_at: modified, created_at: '2026-01-01T00:00:00Z',
      current_period_start: new Date(Date.now() - 86400e3).toISOString(),
      current_period_end: new Date(Date.now() + 29 * 86400e3).toISOString(),
      trial_end: new Date(Date.now() + 14 * 86400e3).toISOString(),
      cancel_at_period_end: cape, product_id: 'prod_plus', customer_id: 'cus_c1',
      customer: { id: 'cus_c1', external_id: eve }, metadata: {},
    },
  });
  await txn('webhook: subscription created (trialing)', deliver('wh_c1', event('subscription.created', 'trialing', '2026-01-01T00:00:01Z')), { expectMoved: 1 });
  await txn('webhook: the same delivery again', deliver('wh_c1', event('subscription.created', 'trialing', '2026-01-01T00:00:01Z')), { expectMoved: 0 });
  await txn('webhook: active', deliver('wh_c2', event('subscription.updated', 'active', '2026-01-01T00:00:02Z')), { expectMoved: 1 });
  await txn('webhook: an older event (recorded, not applied)', deliver('wh_c3', event('subscription.updated', 'past_due', '2026-01-01T00:00:00Z')), { expectMoved: 0 });
  await txn('webhook: canceled at the period\'s end (status active, cancel_at_period_end)', deliver('wh_c5', event('subscription.canceled', 'active', '2026-01-01T00:00:02.5Z', true)), { expectMoved: 1 });
  await txn('webhook: revoked', deliver('wh_c4', event('subscription.revoked', 'canceled', '2026-01-01T00:00:03Z')), { expectMoved: 1 });

  // --- operators: plan limits and product mappings
  // (0.7.0) the operator's transaction moves nobody and broadcasts once;
  // each user's next writable read settles it
  const freeUsers = async () => Number((await q(`SELECT count(*) AS n FROM roastr_state.state WHERE plan = 'free' AND user_id <> ${lit(users.sentinel)}`))[0].n);
  const readAll = (label, expectMoved) => txn(label, tracked.map((u) => `SELECT roastr_state.state_full(${lit(u)})`), { expectMoved });
  await txn('plan limit raised for free', `UPDATE roastr_state.plans SET monthly_roasts_limit = 150 WHERE plan = 'free'`,
    { expectMoved: 0, broadcasts: [{ type: 'plan_limits', plan: 'free', monthly_roasts_limit: 150 }] });
  await readAll('the next reads settle the new limit of every user on free', await freeUsers());
  await readAll('reads again: nothing left to settle', 0);
  await txn('plan limit of a plan nobody has', `UPDATE roastr_state.plans SET monthly_roasts_limit = 1500 WHERE plan = 'plus'`,
    { expectMoved: 0, broadcasts: [{ type: 'plan_limits', plan: 'plus', monthly_roasts_limit: 1500 }] });
  await readAll('reads after it: nobody moves', 0);
  await txn('plan limit of free made unlimited, and back, in one transaction', [
    `UPDATE roastr_state.plans SET monthly_roasts_limit = NULL WHERE plan = 'free'`,
    `UPDATE roastr_state.plans SET monthly_roasts_limit = 150 WHERE plan = 'free'`,
  ], { expectMoved: 0, broadcasts: [{ type: 'plan_limits', plan: 'free', monthly_roasts_limit: null }, { type: 'plan_limits', plan: 'free', monthly_roasts_limit: 150 }] });
  await readAll('the next reads settle an unchanged limit: a new stamp, the same values', await freeUsers());
  await txn('product -> plan mapping changed', `SELECT roastr_state.set_product_plan('prod_plus', 'pro')`, { expectMoved: 0 });
  await txn('product -> plan mapping removed', `SELECT roastr_state.set_product_plan('prod_plus', NULL)`, { expectMoved: 0 });
  await readAll('reads after the mappings: nobody moves', 0);

  // --- time-driven moves, written by the next writable read
  await txn('a new subscription in trial (direct UPDATE)', `UPDATE roastr_state.state SET subscription_status = 'trial', polar_subscription_id = 'sub_new', trial_ends_at = now() + interval '3 days' WHERE user_id = ${lit(bob)}`, { expectMoved: 1 });
  await txn('the trial expires', `UPDATE roastr_state.state SET trial_ends_at = now() - interval '1 hour' WHERE user_id = ${lit(bob)}`, { expectMoved: 1 });
  await txn('a read writes the expired trial down', `SELECT roastr_state.state_full(${lit(bob)})`, { expectMoved: 1 });
  await txn('a paid period ends after a cancellation', `UPDATE roastr_state.state SET plan = 'pro', subscription_status = 'canceled', current_period_end = now() - interval '1 minute' WHERE user_id = ${lit(dan)}`, { expectMoved: 1 });
  await txn('a read writes the ended cancellation down', `SELECT roastr_state.state_sync(${lit(dan)}, 0::bigint)`, { expectMoved: 1 });
  await txn('a usage count of a past period', `UPDATE roastr_state.state SET monthly_roasts_used = 7, usage_period_start = date_trunc('month', now()) - interval '2 months', usage_period_end = date_trunc('month', now()) - interval '1 month' WHERE user_id = ${lit(cat)}`, { expectMoved: 1 });
  await txn('a read writes the rollover down', `SELECT roastr_state.state_sync(${lit(cat)}, 0::bigint)`, { expectMoved: 1 });
  await txn('a consumption after a rollover', [
    `UPDATE roastr_state.state SET monthly_roasts_used = 9, usage_period_start = date_trunc('month', now()) - interval '2 months', usage_period_end = date_trunc('month', now()) - interval '1 month' WHERE user_id = ${lit(cat)}`,
  ], { expectMoved: 1 });
  await txn('consume_roasts settles, then consumes', `SELECT roastr_state.consume_roasts(${lit(cat)}, 1)`, { expectMoved: 1 });

  // --- organizations
  const org = randomUUID();
  await txn('create_organization (the owner adopts it)', `SELECT roastr_state.create_organization(${lit(ann)}, 'Acme', 'acme-${org.slice(0, 8)}')`, { expectMoved: 1 });
  const orgId = (await q(`SELECT organization_id FROM roastr_state.state WHERE user_id = ${lit(ann)}`))[0].organization_id;
  await txn('add_member (adopts it too)', `SELECT roastr_state.add_member(${lit(orgId)}, ${lit(bob)}, 'member')`, { expectMoved: 1 });
  await txn('add_member as admin (adopts it)', `SELECT roastr_state.add_member(${lit(orgId)}, ${lit(cat)}, 'admin')`, { expectMoved: 1 });
  const orgEvent = (change) => [{ type: 'organization', id: orgId, change }];
  await txn('rename_organization (no member\'s row)', `SELECT roastr_state.rename_organization(${lit(orgId)}, 'Acme Roasts')`,
    { expectMoved: 0, broadcasts: orgEvent('rename') });
  await readAll('the next reads settle the rename of every member', 3);
  await txn('set_member_role', `SELECT roastr_state.set_member_role(${lit(orgId)}, ${lit(bob)}, 'admin')`,
    { expectMoved: 0, broadcasts: orgEvent('role') });
  await readAll('the next reads settle the role', 1);
  await txn('ownership transfer', `SELECT roastr_state.set_member_role(${lit(orgId)}, ${lit(cat)}, 'owner')`,
    { expectMoved: 0, broadcasts: orgEvent('role') });
  await readAll('the next reads settle the transfer', 2);
  await txn('set_current_organization NULL', `SELECT roastr_state.set_current_organization(${lit(bob)}, NULL)`, { expectMoved: 1 });
  await txn('set_current_organization back', `SELECT roastr_state.set_current_organization(${lit(bob)}, ${lit(orgId)})`, { expectMoved: 1 });
  await txn('remove_member', `SELECT roastr_state.remove_member(${lit(orgId)}, ${lit(bob)})`, { expectMoved: 1 });
  await txn('rename and delete_organization in one transaction', [
    `SELECT roastr_state.rename_organization(${lit(orgId)}, 'Acme Gone')`,
    `SELECT roastr_state.delete_organization(${lit(orgId)})`,
  ], { expectMoved: 0, broadcasts: [...orgEvent('rename'), ...orgEvent('delete')] });
  await readAll('the next reads clear the deleted organization of its members', 2);

  // --- several writes in one transaction, and a rolled-back savepoint
  await txn('multi-statement: patch, consume, direct UPDATE', [
    `SELECT roastr_state.patch(${lit(eve)}, ${j({ 'roasting.enabled': false })})`,
    `SELECT roastr_state.consume_roasts(${lit(eve)}, 1)`,
    `UPDATE roastr_state.state SET shield_level = 'tolerante' WHERE user_id = ${lit(eve)}`,
  ], { expectMoved: 1 });
  await txn('multi-statement: a plan change then a consumption', [
    `SELECT roastr_state.patch(${lit(eve)}, ${j({ 'subscription.plan': 'starter', 'subscription.status': 'active' })})`,
    `SELECT roastr_state.consume_roasts(${lit(eve)}, 2)`,
  ], { expectMoved: 1 });
  await txn('multi-statement: two users', [
    `SELECT roastr_state.consume_roasts(${lit(ann)}, 1)`,
    `SELECT roastr_state.consume_roasts(${lit(dan)}, 1)`,
  ], { expectMoved: 2 });
  await txn('a rolled-back savepoint takes its change back', [
    `SELECT roastr_state.patch(${lit(eve)}, ${j({ 'roasting.roast_level': 1 })})`,
    'SAVEPOINT s',
    `SELECT roastr_state.consume_roasts(${lit(eve)}, 1)`,
    'ROLLBACK TO SAVEPOINT s',
  ], { expectMoved: 1 });

  // --- key rotation: rewraps data keys, changes no version
  const keyfile = (await q(`SELECT current_setting('roastr_state.master_key_file') AS f`))[0].f;
  const key = [...Array(32)].map(() => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join('');
  appendFileSync(keyfile, `2 ${key}\n`);
  await txn('rotate_master_key', 'SELECT roastr_state.rotate_master_key()', { expectMoved: 0 });
  const rot = (await q('SELECT roastr_state.rotate_master_key() AS r'))[0].r;
  check(rot.remaining === 0 && rot.key_id === 2, 'rotation reached the new key', JSON.stringify(rot));

  // --- user deletion: nothing is announced, the state is gone
  await txn('delete_user of a member', `SELECT roastr_state.delete_user(${lit(eve)})`, { expectMoved: 0 });
  let code = null;
  try {
    await q(`SELECT roastr_state.state_sync(${lit(eve)}, 0::bigint)`);
  } catch (e) {
    code = e.code;
  }
  check(code === 'PT404', 'a deleted user has no state to sync (PT404)', code);

  console.log(failures.length ? `failed:\n  ${failures.join('\n  ')}` : 'notify_contract: every notification obeys the law');
  console.log(`${passed} passed, ${failed} failed`);
}

main().then(() => process.exit(failed ? 1 : 0), (e) => {
  console.error(e);
  process.exit(2);
});
