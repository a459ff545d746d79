-- floor for reads: one row of the bare table as JSON
\set u random(1, :users)
SELECT to_jsonb(b) FROM bench.bare b WHERE b.user_id = bench.uid(:u);
