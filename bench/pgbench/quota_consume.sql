-- roastr_state.consume_roasts of one roast by a random user (10k users,
-- free plan: each run stays far below the 100-roast limit, so every call
-- is a real consumption).
\set u random(1, :users)
SELECT roastr_state.consume_roasts(bench.uid(:u), 1);
