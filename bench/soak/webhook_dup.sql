-- soak: a new signed Polar event, then the same delivery again (same
-- webhook id and body, new timestamp and signature)
\set t :t + 1
\set u random(:cusers + 1, :users)
SELECT soak.webhook_new('webhook_dup', :client_id, :t, :u) AS wid \gset
SELECT soak.webhook_redeliver('webhook_dup', :client_id, :t, :wid, 0);
