\set u random(1, :users)
SELECT roastr_state.state_full(bench.uid(:u));
