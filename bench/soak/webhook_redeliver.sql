-- soak: redeliver one of the 50 most recent events (other clients may be
-- redelivering it at the same moment): always a duplicate
\set t :t + 1
SELECT soak.webhook_redeliver('webhook_redeliver', :client_id, :t, NULL, 50);
