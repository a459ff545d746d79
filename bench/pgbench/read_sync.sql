-- state_sync from a cursor 5 versions back: 5 fields (-D cursor=N)
\set u random(1, :users)
SELECT roastr_state.state_sync(bench.uid(:u), :cursor::bigint);
