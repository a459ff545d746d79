-- Every client consumes from the same user, who is at or near the limit:
-- the final count must equal the limit exactly (never an overdraft).
SELECT roastr_state.consume_roasts(bench.uid(:hotn), 1);
