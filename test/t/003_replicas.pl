# 003_replicas.pl -- reads on a hot standby, cursors across a failover and a
# point-in-time restore.
#
# SQL cannot test this: it takes a primary and a streaming standby, WAL
# replay paused and resumed, a primary killed before its standby received
# its last commits, a promotion, and a restore from a WAL archive to an
# earlier point -- several servers and their restarts.
#
#   (a) the standby answers state_full and state_sync exactly as the primary
#       does at the same replay point (computed in a read-only transaction
#       there), writes nothing (an expired trial, and a plan limit an
#       operator changed, are computed, not written), and carries the same
#       history;
#   (b) a cursor newer than what the standby has replayed -- with or without
#       its history -- is PT503 (retry, or read the primary), never "no
#       changes" and never a silent full resync;
#   (c) failover: the primary commits version 11 of a user, a device syncs
#       it, the primary dies before the standby received it, the standby is
#       promoted and new writes reach 11 and beyond with other values: the
#       device's next sync from (11, its history) is a full resync flagged
#       "reset", and the device ends with exactly the new primary's state;
#   (d) the same after a restore from the WAL archive to a point before
#       version 11, then new writes.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

use RoastrNode qw(random_bytes roastr_node);

my $json = JSON::PP->new->utf8->canonical;
my $keys = "# roastr_state TAP test\n1 " . unpack('H*', random_bytes(32)) . "\n";
my ($primary) = roastr_node('primary', $keys, undef,
	{ allows_streaming => 1, has_archiving => 1 });

my $a = 'a0000000-0000-4000-8000-00000000000a';
my $t = 'a0000000-0000-4000-8000-00000000000b';

sub q1 { my ($node, $sql) = @_; return $node->safe_psql('postgres', $sql); }
sub jq { my ($node, $sql) = @_; return $json->decode(q1($node, $sql)); }

# the state as a flat path -> value map, without _meta
sub flat
{
	my ($full) = @_;
	my %f;
	for my $s (keys %$full)
	{
		next if $s eq '_meta';
		if (!defined $full->{$s})
		{
			$f{"$s.$_"} = undef for qw(id name slug role);
			next;
		}
		$f{"$s.$_"} = $full->{$s}{$_} for keys %{ $full->{$s} };
	}
	delete $f{'auth.userId'};
	return \%f;
}

# a device: a flat state, a cursor and the history it belongs to
sub device_sync
{
	my ($node, $dev, $user) = @_;
	my $hist = defined $dev->{history} ? "'$dev->{history}'" : 'NULL';
	my $r = jq($node, "SELECT roastr_state.state_sync('$user', $dev->{cursor}, $hist)");
	$dev->{state} = {} if $r->{reset};
	$dev->{state}{ $_->{field} } = $_->{value} for @{ $r->{changes} };
	$dev->{cursor} = $r->{cursor};
	$dev->{history} = $r->{history};
	return $r;
}

sub same_as_full
{
	my ($node, $dev, $user, $what) = @_;
	my $full = jq($node, "SELECT roastr_state.state_full('$user')");
	is_deeply($dev->{state}, flat($full), "$what: the device holds exactly state_full");
	is($dev->{cursor}, $full->{_meta}{version}, "$what: at its version");
	return;
}

# a sync whose SQLSTATE we expect
sub sync_error
{
	my ($node, $sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql", on_error_stop => 1);
	return $err =~ /ERROR:\s+(\w{5}):/ ? $1 : ($rc == 0 ? 'none' : $err);
}

q1($primary, "SELECT roastr_state.ensure_user('$a', 'a\@example.com')");
q1($primary, "SELECT roastr_state.ensure_user('$t', 't\@example.com')");
for my $lvl (2 .. 5) { q1($primary, "SELECT roastr_state.patch('$a', '{\"roasting.roast_level\": $lvl}')"); }
q1($primary, "SELECT roastr_state.consume_roasts('$a', 3)");
# a trial that has ended but was never read: the move is pending
q1($primary, "UPDATE roastr_state.state SET plan = 'starter', subscription_status = 'trial', "
	  . "trial_ends_at = now() - interval '1 hour' WHERE user_id = '$t'");
# a user on pro, and an operator's new limit of pro, never read since:
# pending (0.7.0)
my $p = 'c3333333-3333-4333-8333-333333333333';
q1($primary, "SELECT roastr_state.ensure_user('$p', 'p\@example.com')");
q1($primary, "SELECT roastr_state.patch('$p', '{\"subscription.plan\": \"pro\"}')");
my $vp = q1($primary, "SELECT version FROM roastr_state.state WHERE user_id = '$p'");
q1($primary, "UPDATE roastr_state.plans SET monthly_roasts_limit = 1200 WHERE plan = 'pro'");

$primary->backup('b0');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b0', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

# ------------------------------------------------------------- (a)
note('(a) reads on the standby');
my $ro = sub { my ($sql) = @_; return jq($primary, "BEGIN READ ONLY; $sql; COMMIT") };
for my $u ($a, $t, $p)
{
	my $p = $json->decode((split /\n/, q1($primary, "BEGIN READ ONLY; SELECT roastr_state.state_full('$u'); COMMIT"))[0]);
	my $s = jq($standby, "SELECT roastr_state.state_full('$u')");
	delete @{ $_->{_meta} }{qw(lastSyncedAt history)} for ($p, $s);
	is_deeply($s, $p, "standby state_full = primary's at the same replay point ($u)");
	my $v = $p->{_meta}{version};
	for my $since (0 .. $v)
	{
		my $ps = $json->decode((split /\n/, q1($primary,
			"BEGIN READ ONLY; SELECT roastr_state.state_sync('$u', $since); COMMIT"))[0]);
		my $ss = jq($standby, "SELECT roastr_state.state_sync('$u', $since)");
		delete $_->{lastSyncedAt} for ($ps, $ss);
		delete $_->{history} for ($ps, $ss);
		is_deeply($ss, $ps, "standby state_sync($since) = primary's ($u)");
	}
}
my $ts = jq($standby, "SELECT roastr_state.state_full('$t')");
is("$ts->{subscription}{plan}/$ts->{subscription}{status}", 'free/canceled',
	'the standby computes the expired trial');
is(q1($primary, "SELECT plan || '/' || subscription_status FROM roastr_state.state WHERE user_id = '$t'"),
	'starter/trial', 'and nothing wrote it down');
my $ps = jq($standby, "SELECT roastr_state.state_full('$p')");
is("$ps->{usage}{monthly_roasts_limit}/$ps->{_meta}{version}", "1200/$vp",
	'the standby computes the plan limit an operator changed, at the old version');
is(q1($primary, "SELECT version FROM roastr_state.state WHERE user_id = '$p'"), $vp, 'and nothing wrote it down');
is(scalar @{ jq($standby, "SELECT roastr_state.state_sync('$p', $vp)")->{changes} }, 0,
	'a sync there from that version has nothing yet: it is not a version until the primary settles it');
my $h_primary = jq($primary, "SELECT roastr_state.state_full('$a')")->{_meta}{history};
my $h_standby = jq($standby, "SELECT roastr_state.state_full('$a')")->{_meta}{history};
like($h_primary, qr/^\d+\.\d+\.[0-9A-F]+$/, 'state_full carries its history');
is((split /\./, $h_standby)[0] . '.' . (split /\./, $h_standby)[1],
	(split /\./, $h_primary)[0] . '.' . (split /\./, $h_primary)[1],
	'the standby is on the primary\'s history');

# ------------------------------------------------------------- (b)
note('(b) a cursor the standby has not replayed yet');
q1($standby, 'SELECT pg_wal_replay_pause()');
my $before = jq($standby, "SELECT roastr_state.state_full('$a')")->{_meta}{version};
q1($primary, "SELECT roastr_state.patch('$a', '{\"roasting.enabled\": false}')");
my $dev = { cursor => 0, history => undef, state => {} };
device_sync($primary, $dev, $a);
is($dev->{cursor}, $before + 1, 'the device synced the new version on the primary');
is(sync_error($standby, "SELECT roastr_state.state_sync('$a', $dev->{cursor}, '$dev->{history}')"),
	'PT503', 'the standby answers PT503 to a cursor it has not replayed (with its history)');
is(sync_error($standby, "SELECT roastr_state.state_sync('$a', $dev->{cursor})"),
	'PT503', 'and to the bare cursor');
q1($standby, 'SELECT pg_wal_replay_resume()');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
my $r = device_sync($standby, $dev, $a);
is(scalar @{ $r->{changes} }, 0, 'once replayed: no changes');
ok(!$r->{reset}, 'and no reset');
same_as_full($standby, $dev, $a, '(b)');
# a device that synced here, before the commits the failover will lose
my $early = { cursor => $dev->{cursor}, history => $dev->{history}, state => { %{ $dev->{state} } } };

# ------------------------------------------------------------- (c)
note('(c) failover to a standby that lacks the last commits');
$standby->stop;
my $level = 1;
my $bump = sub {
	my ($node, $to) = @_;
	while (jq($node, "SELECT roastr_state.state_full('$a')")->{_meta}{version} < $to)
	{
		$level = $level % 5 + 1;
		q1($node, "SELECT roastr_state.patch('$a', '{\"roasting.roast_level\": $level}')");
	}
};
$bump->($primary, 8);
# (d) restores the archive to this point: version 8
my $lsn_mid = q1($primary, 'SELECT pg_current_wal_insert_lsn()');
$bump->($primary, 10);
my $p11 = jq($primary, "SELECT roastr_state.patch('$a', '{\"auth.name\": \"only on the old primary\"}')");
my $sysid = q1($primary, 'SELECT system_identifier FROM pg_control_system()');
is_deeply([ $p11->{version}, $p11->{history} ], [ 11, "$sysid.1" ],
	'the patch answer names its version\'s history line (no WAL position)');
device_sync($primary, $dev, $a);
my $old_cursor = $dev->{cursor};
my $old_history = $dev->{history};
my $old_full = flat(jq($primary, "SELECT roastr_state.state_full('$a')"));
is($old_cursor, 11, 'the device synced version 11 on the old primary');
note("device: cursor $old_cursor, history $old_history, auth.name '$old_full->{'auth.name'}'");
# archive everything written so far, for (d)
my $seg = q1($primary, 'SELECT pg_walfile_name(pg_current_wal_lsn())');
q1($primary, 'SELECT pg_switch_wal()');
$primary->poll_query_until('postgres',
	"SELECT last_archived_wal >= '$seg' FROM pg_stat_archiver") or die 'archiving';
$primary->stop('immediate');
$standby->start;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'promotion';
my $v_new = jq($standby, "SELECT roastr_state.state_full('$a')")->{_meta}{version};
note("the promoted standby has version $v_new of the user");
ok($v_new < $old_cursor, 'the promoted standby lacks the last commits');
while (jq($standby, "SELECT roastr_state.state_full('$a')")->{_meta}{version} <= $old_cursor)
{
	q1($standby, "SELECT roastr_state.consume_roasts('$a', 1)");
}
my $v_after = jq($standby, "SELECT roastr_state.state_full('$a')")->{_meta}{version};
note("new writes on the new primary: version $v_after");
my $bare = jq($standby, "SELECT roastr_state.state_sync('$a', $old_cursor)");
$r = device_sync($standby, $dev, $a);
ok($r->{reset}, 'a cursor of the lost history gets a full resync flagged reset');
note('device received: reset=' . ($r->{reset} ? 'true' : 'false') . ', '
	  . scalar(@{ $r->{changes} }) . " changes, cursor $r->{cursor}, history $r->{history}");
same_as_full($standby, $dev, $a, '(c) after the failover');
isnt($dev->{state}{'auth.name'}, 'only on the old primary', 'no value of the lost history is kept');
ok(!$bare->{reset} && scalar @{ $bare->{changes} } < scalar @{ $r->{changes} },
	'the bare cursor cannot tell (why devices send the history)');
isnt($r->{history}, $old_history, 'the new primary is on another history');
# a device whose cursor came from the patch answer (the writing device)
my $writer = { cursor => $p11->{version}, history => $p11->{history}, state => {%$old_full} };
$r = device_sync($standby, $writer, $a);
ok($r->{reset}, 'a cursor taken from a patch answer of the lost history: reset too');
same_as_full($standby, $writer, $a, '(c) the device that wrote version 11');
my $p_new = jq($standby, "SELECT roastr_state.patch('$a', '{\"roasting.enabled\": true}')");
is($p_new->{history}, "$sysid.2", 'a patch on the promoted standby names the new timeline');
$r = device_sync($standby, $early, $a);
ok(!$r->{reset}, 'a cursor from before the point the new history left the old one is kept (no reset)');
same_as_full($standby, $early, $a, '(c) a device that synced before the lost commits');

# ------------------------------------------------------------- (d)
note('(d) restore from the archive to a point before the last commits');
my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init_from_backup($primary, 'b0', has_restoring => 1, standby => 0);
$restored->append_conf('postgresql.conf', qq{
recovery_target_lsn = '$lsn_mid'
recovery_target_action = 'promote'
});
$restored->start;
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'restore';
my $v_restored = jq($restored, "SELECT roastr_state.state_full('$a')")->{_meta}{version};
note("restored to version $v_restored of the user");
ok($v_restored < $old_cursor, 'the restore lacks the last commits');
while (jq($restored, "SELECT roastr_state.state_full('$a')")->{_meta}{version} <= $old_cursor)
{
	q1($restored, "SELECT roastr_state.consume_roasts('$a', 2)");
}
my $dev2 = { cursor => $old_cursor, history => $old_history, state => {%$old_full} };
$r = device_sync($restored, $dev2, $a);
ok($r->{reset}, 'after the restore: a full resync flagged reset');
same_as_full($restored, $dev2, $a, '(d) after the restore');
isnt($dev2->{state}{'auth.name'}, 'only on the old primary', 'no value of the lost history is kept');

$restored->stop;
$standby->stop;
done_testing();
