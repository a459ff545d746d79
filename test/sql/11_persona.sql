-- Persona text: encrypted at rest, decrypted for the owner, versioned like
-- any field, plan-gated tolerance, and ciphertext treated as hostile.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(31);

SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;
SELECT roastr_state.ensure_user(:u2, 'bob@example.com') IS NOT NULL;
CREATE FUNCTION pg_temp.persona(u uuid) RETURNS jsonb
LANGUAGE sql AS $$ SELECT roastr_state.state_full(u)->'persona' $$;

-- written encrypted, read decrypted
SELECT is(roastr_state.patch(:u1, '{"persona.identity": "I roast with love MARKER-7f3a", "persona.intolerance": "bad puns"}'),
	'{"version": 2, "applied": ["persona.identity", "persona.intolerance"]}'::jsonb || :'hist', 'persona text is patched like any field');
SELECT is(pg_temp.persona(:u1)->>'identity', 'I roast with love MARKER-7f3a', 'and read back decrypted');
SELECT is(pg_temp.persona(:u1)->>'intolerance', 'bad puns', 'every persona field');
SELECT is((SELECT count(*)::int FROM roastr_state.persona
	WHERE position('MARKER-7f3a' in encode(identity, 'escape')) > 0
	   OR position('bad puns' in encode(intolerance, 'escape')) > 0), 0, 'no plaintext in the table');
SELECT is((SELECT get_byte(identity, 0) || '.' || get_byte(identity, 1) FROM roastr_state.persona WHERE user_id = :u1),
	'82.1', 'the envelope starts with R and format 1');
SELECT is((SELECT length(identity) FROM roastr_state.persona WHERE user_id = :u1),
	length('I roast with love MARKER-7f3a') + 46, 'header, nonce and tag add 46 bytes');
SELECT is((SELECT count(*)::int FROM roastr_state.user_keys WHERE user_id = :u1), 1, 'the user has one wrapped data key');
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u1, 1), '$.changes[*].field'),
	'["persona.identity", "persona.intolerance"]', 'the change log names the fields');
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u1, 1), '$.changes[*].value'),
	'["I roast with love MARKER-7f3a", "bad puns"]', 'state_sync returns the text decrypted');

-- the same text again is no change; a new nonce is not a new value
SELECT is(roastr_state.patch(:u1, '{"persona.identity": "I roast with love MARKER-7f3a"}')->>'version', '2',
	'writing the same text is not a change');
SELECT is(roastr_state.patch(:u1, '{"persona.intolerance": null}')->>'version', '3', 'clearing a field is a change');
SELECT is(pg_temp.persona(:u1)->'intolerance', 'null', 'cleared');

-- embeddings: recorded by the service, cleared by a text change
SELECT is(roastr_state.mark_embeddings(:u1, 'text-embedding-3-small', '2026-11-24T10:00:00Z')->>'version', '4', 'mark_embeddings');
SELECT is(pg_temp.persona(:u1)->>'embeddings_model', 'text-embedding-3-small', 'records the model');
SELECT roastr_state.patch(:u1, '{"persona.identity": "new me"}') IS NOT NULL;
SELECT is(pg_temp.persona(:u1) - 'identity' - 'intolerance' - 'tolerance',
	'{"embeddings_model": null, "embeddings_generated_at": null}', 'a text change clears the embeddings');
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u1, 4), '$.changes[*].field'),
	'["persona.embeddings_generated_at", "persona.embeddings_model", "persona.identity"]', 'in the same version');

-- tolerance needs pro or plus; below, it reads as null and is kept
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"persona.tolerance": "puns"}')$$, :u1))->>'sqlstate',
	'PT402', 'tolerance on the free plan is PT402');
SELECT roastr_state.patch(:u1, '{"subscription.plan": "pro"}') IS NOT NULL;
SELECT is(roastr_state.patch(:u1, '{"persona.tolerance": "puns"}')->'applied', '["persona.tolerance"]', 'on pro it is written');
SELECT is(pg_temp.persona(:u1)->>'tolerance', 'puns', 'and read');
SELECT roastr_state.patch(:u1, '{"subscription.plan": "free"}') IS NOT NULL;
SELECT is(pg_temp.persona(:u1)->'tolerance', 'null', 'below pro it reads as null');
SELECT roastr_state.patch(:u1, '{"subscription.plan": "plus"}') IS NOT NULL;
SELECT is(pg_temp.persona(:u1)->>'tolerance', 'puns', 'an upgrade brings it back');

-- optimistic locking covers persona fields
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"persona.identity": "stale"}', 2)$$, :u1))->>'detail',
	format('{"code":"E_CONFLICT","server_version":%s,"client_version":2,"conflicts":[{"field":"persona.identity","server_value":null,"server_version":5}]}',
		pg_temp.ver(:u1)),
	'a stale persona write conflicts; the detail carries no text');

-- stored ciphertext is hostile input
CREATE TEMP TABLE saved AS SELECT * FROM roastr_state.persona WHERE user_id = :u1;
UPDATE roastr_state.persona SET identity = set_byte(identity, 40, get_byte(identity, 40) # 1) WHERE user_id = :u1;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u1)),
	format('{"detail": null, "message": "could not decrypt field \"persona.identity\" of user %s", "sqlstate": "XX001"}', :u1)::jsonb,
	'a flipped byte: one clear error, nothing that helps an attacker');
UPDATE roastr_state.persona SET identity = (SELECT identity FROM saved) WHERE user_id = :u1;
SELECT is(pg_temp.persona(:u1)->>'identity', 'new me', 'the original still opens');
UPDATE roastr_state.persona SET intolerance = (SELECT identity FROM saved) WHERE user_id = :u1;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u1))->>'sqlstate', 'XX001',
	'ciphertext moved to another field does not open');
UPDATE roastr_state.persona SET intolerance = NULL WHERE user_id = :u1;
SELECT roastr_state.patch(:u2, '{"persona.identity": "bob"}') IS NOT NULL;
UPDATE roastr_state.persona SET identity = (SELECT identity FROM saved) WHERE user_id = :u2;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u2))->>'sqlstate', 'XX001',
	'ciphertext moved to another user does not open');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.persona SET identity = substr(identity, 1, 20) WHERE user_id = %L', :u2))->>'sqlstate',
	'22023', 'a truncated envelope cannot even be stored');

-- crypto-shredding: after delete_user, a copy of the ciphertext opens with no key the server has
SELECT is(roastr_state.delete_user(:u1), true, 'delete_user');
SELECT is((SELECT count(*)::int FROM roastr_state.user_keys WHERE user_id = :u1), 0, 'the data key is gone');
SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;
SELECT roastr_state.patch(:u1, '{"persona.identity": "fresh start"}') IS NOT NULL;
UPDATE roastr_state.persona SET identity = (SELECT identity FROM saved) WHERE user_id = :u1;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :u1))->>'sqlstate', 'XX001',
	'the old ciphertext does not open under the new user''s key');
SELECT is(roastr_state.delete_user(:nobody), false, 'deleting nobody is false');

SELECT * FROM finish();
ROLLBACK;
