-- the twin's state_sync from the same cursor: 5 change-log rows (-D cursor=N)
\set u random(1, :users)
SELECT twin.state_sync(bench.uid(:u), :cursor::bigint);
