-- soak: a new signed Polar event for a random webhook user
\set t :t + 1
\set u random(:cusers + 1, :users)
SELECT soak.webhook_new('webhook', :client_id, :t, :u);
