-- bare: UPDATE of one column on a table of the same shape, no trigger.
-- Each client walks its own users in order (see BENCHMARKS.md); -D n=0 -D nc=CLIENTS -D users=N.
\set r :n * :nc + :client_id
\set u :r % :users + 1
\set n :n + 1
UPDATE bench.bare SET roasting_enabled = NOT roasting_enabled WHERE user_id = bench.uid(:u);
