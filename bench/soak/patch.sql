-- soak: a multi-field patch of a random user, no base version (last write wins)
\set t :t + 1
\set u random(1, :users)
SELECT soak.patch('patch', :client_id, :t, :u, NULL);
