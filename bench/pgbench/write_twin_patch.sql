-- twin.patch (PL/pgSQL) of one field; values as in write_patch.sql.
\set r :n * :nc + :client_id
\set u :r % :users + 1
\set v (:r / :users) % 2
\set n :n + 1
SELECT twin.patch(bench.uid(:u), jsonb_build_object('roasting.enabled', :v = 1));
