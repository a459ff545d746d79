-- The same change as a direct UPDATE through the PL/pgSQL trigger.
\set r :n * :nc + :client_id
\set u :r % :users + 1
\set n :n + 1
UPDATE twin.state SET roasting_enabled = NOT roasting_enabled WHERE user_id = bench.uid(:u);
