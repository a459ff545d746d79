-- floor for random writes at scale: UPDATE of one column of a random row of
-- bench.bare (the state table's rows, plain primary key, no trigger), as
-- quota_consume.sql picks its users.
\set u random(1, :users)
UPDATE bench.bare SET roasting_enabled = NOT roasting_enabled WHERE user_id = bench.uid(:u);
