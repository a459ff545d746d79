-- soak: a device syncs from the cursor it holds: half the time a zipfian
-- (often-written) user, 5% the hot user, else a uniform one; 2% of the
-- syncs keep their point for the final incremental check
\set t :t + 1
\set r random(1, 100)
\if :r <= 50
\set u random_zipfian(1, :users, 1.1)
\elif :r <= 55
\set u :hot
\else
\set u random(1, :users)
\endif
\set s random(1, 100)
SELECT soak.sync('sync', :client_id, :t, :u, :s <= 2);
