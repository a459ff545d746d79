-- soak: a patch with a mutation_id from a per-user pool of 8 (zipfian users,
-- so other clients replay it, sometimes concurrently), then the client's
-- own retry of the same request
\set t :t + 1
\set u random_zipfian(1, :users, 1.1)
\set k random(1, 8)
SELECT soak.patch_mut('patch_mut', :client_id, :t, :u, :k);
SELECT soak.patch_mut('patch_mut', :client_id, :t, :u, :k);
