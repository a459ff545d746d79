-- Who may do what: users by JWT claims, the service, anon; channels.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(34);

-- Supabase's roles (the test cluster has them; create them if this cluster
-- does not), then reinstall so the install script grants to them.
\i test/helpers/supabase_roles.psql
CREATE ROLE rs_test_backend NOLOGIN NOBYPASSRLS IN ROLE service_role;
CREATE ROLE rs_test_stranger NOLOGIN;
DROP EXTENSION roastr_state;
CREATE EXTENSION roastr_state;

SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;
SELECT roastr_state.ensure_user(:u2, 'bob@example.com') IS NOT NULL;
GRANT USAGE ON SCHEMA public TO authenticated, anon, service_role, rs_test_stranger;

-- a user, as PostgREST sets it up
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', format('{"sub": "%s", "role": "authenticated"}', :u1), true) IS NOT NULL;

SELECT is(roastr_state.state_full(:u1)->'auth'->>'email', 'ann@example.com', 'a user reads their own state');
SELECT is(roastr_state.state_full() #- '{_meta,lastSyncedAt}', roastr_state.state_full(:u1) #- '{_meta,lastSyncedAt}',
	'user_id defaults to the caller');
SELECT is(roastr_state.patch(NULL, '{"roasting.enabled": false}')->>'version', '2', 'a user patches their own state');
SELECT is(jsonb_array_length(roastr_state.state_sync(NULL, 1)->'changes'), 1, 'and syncs it');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u2))->>'sqlstate', '42501',
	'another user''s state cannot be read');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": false}')$$, :u2))->>'sqlstate', '42501',
	'nor patched');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_sync(%L, 0)', :u2))->>'sqlstate', '42501',
	'nor synced');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.plan": "plus"}')$$, :u1))->>'sqlstate', '42501',
	'a user cannot write service fields');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.ensure_user(%L, 'x@example.com')$$, :u3))->>'sqlstate', '42501',
	'a user cannot call ensure_user');
SELECT is(pg_temp.outcome('SELECT count(*) FROM roastr_state.state')->>'sqlstate', '42501',
	'a user cannot read the tables directly');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET plan = ''plus'' WHERE user_id = %L', :u1))->>'sqlstate', '42501',
	'nor update them');
SELECT is(pg_temp.outcome('SELECT roastr_state.notify_stats()')->>'sqlstate', '42501',
	'nor read the notifier counters');

-- channels
SELECT ok(roastr_state.authorize_channel('user:' || :u1), 'own channel');
SELECT ok(NOT roastr_state.authorize_channel('user:' || :u2), 'not another user''s channel');
SELECT ok(NOT roastr_state.authorize_channel('roastr_state'), 'not the shared channel');
SELECT ok(NOT roastr_state.authorize_channel('roastr_state_embeddings'), 'not the embeddings channel');
SELECT ok(NOT roastr_state.authorize_channel('user:' || :u1 || ' '), 'not a padded name');
SELECT ok(NOT roastr_state.authorize_channel('USER:' || :u1), 'not another spelling');
SELECT ok(NOT roastr_state.authorize_channel('user:not-a-uuid'), 'not a malformed name');
SELECT ok(NOT roastr_state.authorize_channel(NULL), 'not NULL');

-- forged, missing or malformed claims
SELECT set_config('request.jwt.claims', '{"sub": ', true) IS NOT NULL;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u1))->>'sqlstate', '42501',
	'malformed claims name nobody');
SELECT set_config('request.jwt.claims', '{"role": "authenticated"}', true) IS NOT NULL;
SELECT is(pg_temp.outcome('SELECT roastr_state.state_full()')->>'sqlstate', '42501', 'claims without sub');
SELECT set_config('request.jwt.claims', '{"sub": "admin"}', true) IS NOT NULL;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u1))->>'sqlstate', '42501', 'a sub that is not a uuid');
SELECT set_config('request.jwt.claims', format('{"sub": ["%s"]}', :u1), true) IS NOT NULL;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u1))->>'sqlstate', '42501', 'a sub that is not a string');
-- older PostgREST: request.jwt.claim.sub
SELECT set_config('request.jwt.claims', '', true) IS NOT NULL;
SELECT set_config('request.jwt.claim.sub', :u2, true) IS NOT NULL;
SELECT is(roastr_state.state_full()->'auth'->>'email', 'bob@example.com', 'request.jwt.claim.sub names the user');
SELECT set_config('request.jwt.claim.sub', '', true) IS NOT NULL;
RESET ROLE;

-- anon has nothing
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', format('{"sub": "%s", "role": "anon"}', :u1), true) IS NOT NULL;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u1))->>'sqlstate', '42501',
	'anon cannot call anything, even with a sub');
RESET ROLE;

-- a role without grants
SET LOCAL ROLE rs_test_stranger;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u1))->>'sqlstate', '42501',
	'a role without grants cannot call anything');
RESET ROLE;

-- the service
SELECT set_config('request.jwt.claims', '', true) IS NOT NULL;
SET LOCAL ROLE service_role;
SELECT is(roastr_state.state_full(:u2)->'auth'->>'email', 'bob@example.com', 'the service reads anyone');
SELECT is(roastr_state.ensure_user(:u3, 'cy@example.com')->'_meta'->>'version', '1', 'the service creates users');
SELECT ok(roastr_state.authorize_channel('roastr_state'), 'the service may listen on the shared channel');
SELECT ok(roastr_state.authorize_channel('user:' || :u2), 'and on any user channel');
RESET ROLE;

-- a member of the service role without BYPASSRLS: row security lets it in
SET LOCAL ROLE rs_test_backend;
SELECT is(roastr_state.patch(:u2, '{"subscription.plan": "plus"}')->>'version', '2', 'a member of service_role is the service');
SELECT is((SELECT count(*)::int FROM roastr_state.state), 3, 'and sees every row through the policy');
RESET ROLE;
SET LOCAL roastr_state.service_role = 'nobody_here';
SET LOCAL ROLE rs_test_backend;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u2))->>'sqlstate', '42501',
	'roastr_state.service_role decides who is the service');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
