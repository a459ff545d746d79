-- soak: a multi-field patch with a base version 0-2 versions behind, mostly
-- on a few hot users (zipfian: user 1 gets about an eighth of these), one in
-- ten on the hot user: real PT409 conflicts, caught and recorded
\set t :t + 1
\set r random(1, 100)
\set lag random(0, 2)
\if :r <= 10
\set u :hot
\else
\set u random_zipfian(1, :users, 1.1)
\endif
SELECT soak.patch('patch_base', :client_id, :t, :u, :lag);
