-- roastr_state.state_full of a pro user with three 300-byte persona fields
-- (three decryptions per call).
\set u random(:pbase, :pend)
SELECT roastr_state.state_full(bench.uid(:u));
