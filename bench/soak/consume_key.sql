-- soak: consume_roasts with an idempotency key from a per-user pool of 300
-- (others replay it), then the client's own retry; users as in consume.sql
\set t :t + 1
\set r random(1, 100)
\if :r <= 40
\set u :hot
\elif :r <= 60
\set u random(1, :warm)
\else
\set u random(1, :cusers)
\endif
\set key random(1, 300)
SELECT soak.consume('consume_key', :client_id, :t, :u, 1, :key);
SELECT soak.consume('consume_key', :client_id, :t, :u, 1, :key);
