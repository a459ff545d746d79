-- soak: consume_roasts: 40% the hot user (starter, 500) one roast at a
-- time, 20% the 32 warm users (free, 100) and 40% spread over the
-- consumption users, 1-3 roasts
\set t :t + 1
\set r random(1, 100)
\if :r <= 40
\set u :hot
\set n 1
\elif :r <= 60
\set u random(1, :warm)
\set n random(1, 3)
\else
\set u random(1, :cusers)
\set n random(1, 3)
\endif
SELECT soak.consume('consume', :client_id, :t, :u, :n, 0);
