-- roastr_state.patch of one field.  The value flips the stored one: every
-- user starts the run with roasting.enabled = true and is visited once per
-- pass, so pass 0 writes false, pass 1 true, ... (always a real change).
\set r :n * :nc + :client_id
\set u :r % :users + 1
\set v (:r / :users) % 2
\set n :n + 1
SELECT roastr_state.patch(bench.uid(:u), jsonb_build_object('roasting.enabled', :v = 1));
