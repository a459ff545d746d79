# 002_master_key_restart.pl -- restarting with a wrong master key file.
#
# test/extra/master_keys.sh covers every malformed file and the missing file
# of a running server; this restarts a preloaded server (the postmaster
# reads the file at start) through PostgreSQL::Test::Cluster with the file
#
#   (a) missing;
#   (b) changed: the same key id 1 with other key bytes (a regenerated or
#       mixed-up file, which no parser can tell from the right one);
#   (c) holding only a key with another id (2);
#
# and proves, each time: the server starts; every call that needs a key
# (state_full, state_sync and ensure_user of a user with persona text, a
# persona write, rotate_master_key) fails with the expected SQLSTATE and a
# message that names the user, the file or the setting, and holds no key
# material; calls that need no key (patch of other fields, consume_roasts,
# apply_polar_webhook, reads of a user without persona text, a new user)
# work; nothing in roastr_state.user_keys and roastr_state.persona is
# rewritten (same ctid, xmin and bytes), and the users who only got failed
# calls keep their state rows; then (d) the right file put back, with no
# restart, makes everything decrypt again, and so it does after a restart;
# persona writes and rotate_master_key work again.  No key's hex digits
# appear in any error or in the server log.
#
# In case (b) the file is valid, so only the data can tell: the key under
# id 1 opens none of the data keys stored under id 1, which is F0000
# naming the file (not XX001, as for one tampered row); and a user's FIRST
# persona write is refused (b'), so nothing is acknowledged under a key
# that the right file would not open.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64);
use JSON::PP;

use RoastrNode qw(random_bytes write_private roastr_node);

$ENV{PGCLIENTENCODING} = 'UTF8';
my $json = JSON::PP->new->utf8->canonical;

my $K1 = unpack('H*', random_bytes(32));
my $K1_changed = unpack('H*', random_bytes(32));
my $K2 = unpack('H*', random_bytes(32));
my $right_file = "# roastr_state TAP test\n1 $K1\n";
my ($node, $keyfile, $wh_secret) = roastr_node('master_key_restart', $right_file);
$node->safe_psql('postgres', "SELECT roastr_state.set_product_plan('prod_pro', 'pro')");

# u1..u3: pro, all three persona fields (tolerance needs pro or plus);
# u4: no persona text, hence no data key; u5..: created along the way.
my @U = map { sprintf('d%07d-0000-4000-8000-%012d', $_, $_) } 1 .. 9;
my ($u1, $u2, $u3, $u4) = @U[ 0 .. 3 ];
my @with_persona = ($u1, $u2, $u3);
my $list = join(', ', map { "'$_'" } @with_persona);

sub persona_of { my ($u) = @_; return "identity of $u \x{2014} \x{fc}ber", "intolerance of $u", "tolerance of $u"; }
{
	my @sql;
	for my $u (@U[ 0 .. 3 ])
	{
		push @sql, "SELECT roastr_state.ensure_user('$u', '" . substr($u, 0, 8) . "\@example.com');";
	}
	for my $u (@with_persona)
	{
		my ($i, $n, $t) = persona_of($u);
		push @sql, "SELECT roastr_state.patch('$u', '{\"subscription.plan\": \"pro\"}');";
		push @sql, "SELECT roastr_state.patch('$u', '"
		  . $json->encode({ 'persona.identity' => $i, 'persona.intolerance' => $n, 'persona.tolerance' => $t })
		  . "');";
	}
	$node->safe_psql('postgres', join("\n", @sql));
}

# ------------------------------------------------------------- helpers
my @all_stderr;    # every error text a client received, for the leak check

# Run one statement in its own session; returns (sqlstate, stdout, stderr).
sub call
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	push @all_stderr, $err;
	return ('00000', $out, $err) if $ret == 0;
	return ($err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : "psql exit $ret", $out, $err);
}

# The persona texts of u1..u3 as state_full (as the service) returns them.
sub personas
{
	my $out = $node->safe_psql(
		'postgres', qq{
SELECT string_agg(concat_ws('|', user_id, p->>'identity', p->>'intolerance', p->>'tolerance'), E'\\n' ORDER BY user_id)
  FROM (SELECT user_id, roastr_state.state_full(user_id)->'persona' AS p
		  FROM roastr_state.state WHERE user_id IN ($list)) s});
	utf8::decode($out);
	return $out;
}
my $want_personas = join("\n", map { join('|', $_, persona_of($_)) } sort @with_persona);

# What must not change while keys are wrong: the key and persona rows of
# u1..u3, down to ctid and xmin.
sub key_rows
{
	return $node->safe_psql(
		'postgres', qq{
SELECT string_agg(format('%s %s %s %s %s %s %s', ctid, xmin, user_id, keygen, master_key_id,
						 encode(wrapped, 'hex'), rewrapped_at), E'\\n' ORDER BY user_id)
  FROM roastr_state.user_keys WHERE user_id IN ($list);
SELECT string_agg(format('%s %s %s %s %s %s', ctid, xmin, user_id, encode(identity, 'hex'),
						 encode(intolerance, 'hex'), encode(tolerance, 'hex')), E'\\n' ORDER BY user_id)
  FROM roastr_state.persona WHERE user_id IN ($list)});
}

# The state rows of users that get only calls that fail.
sub state_rows
{
	my (@users) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(format('%s %s %s %s', ctid, xmin, user_id, version), ' ' ORDER BY user_id) "
		  . 'FROM roastr_state.state WHERE user_id IN (' . join(', ', map { "'$_'" } @users) . ')');
}

my $webhook_n = 0;

# A signed Polar event moving u4 between active and past_due.
sub webhook_sql
{
	my ($status) = @_;
	$webhook_n++;
	my $body = $json->encode(
		{
			type => 'subscription.updated',
			data => {
				id => 'sub_u4', status => $status, product_id => 'prod_pro', customer_id => 'cus_u4',
				modified_at => sprintf('2026-01-01T00:00:%02dZ', $webhook_n),
				customer => { id => 'cus_u4', external_id => $u4 }, metadata => {},
			}
		});
	my $id = "wh-restart-$webhook_n";
	my $ts = time;
	my $sig = 'v1,' . encode_base64(hmac_sha256("$id.$ts.$body", $wh_secret), '');
	return "SELECT roastr_state.apply_polar_webhook('$id', '$ts', '$sig', '$body')->>'outcome'";
}

# Restart with a new key file (undef: none at all); returns the server log
# of the start.
sub restart_with
{
	my ($label, $content) = @_;
	$node->stop;
	if (defined $content)
	{
		write_private($keyfile, $content);
	}
	else
	{
		unlink $keyfile or die "unlink $keyfile: $!";
	}
	my $offset = -s $node->logfile;
	ok($node->start(fail_ok => 1), "$label the server starts");
	# the postmaster has read the file; wait for a session to be sure the
	# start is complete
	$node->safe_psql('postgres', 'SELECT 1');
	return slurp_file($node->logfile, $offset);
}

# The calls that need no key, each of which must work.
my $round = 0;

sub keyless_calls_work
{
	my ($label) = @_;
	$round++;
	my @calls = (
		[ "patch of u1's roasting fields",
			"SELECT roastr_state.patch('$u1', '{\"roasting.roast_level\": " . (1 + $round % 5)
			  . ", \"auth.name\": \"round $round\"}')->'applied'", qr/^\["auth.name", "roasting.roast_level"\]$/ ],
		[ 'consume_roasts for u1', "SELECT roastr_state.consume_roasts('$u1', 1)->>'allowed'", qr/^true$/ ],
		[ 'apply_polar_webhook for u4', webhook_sql($round % 2 ? 'past_due' : 'active'), qr/^applied$/ ],
		[ "state_full of u4 (no persona text)",
			"SELECT roastr_state.state_full('$u4')->'subscription'->>'status'",
			$round % 2 ? qr/^past_due$/ : qr/^active$/ ],
		[ "state_sync of u4", "SELECT roastr_state.state_sync('$u4', 0)->'cursor'", qr/^\d+$/ ],
		[ 'ensure_user of a new user',
			"SELECT roastr_state.ensure_user('$U[ 3 + $round ]', 'new$round\@example.com')->'_meta'->>'version'",
			qr/^1$/ ]);
	for my $c (@calls)
	{
		my ($name, $sql, $want) = @$c;
		my ($state, $out, $err) = call($sql);
		ok($state eq '00000' && $out =~ $want, "$label: $name works") or diag "$state: $out $err";
	}
	return;
}

# check_error(label, sql, sqlstate, [regex, what it means]...): the call
# fails with that SQLSTATE, and its error text (message, detail, hint)
# matches each regex.
sub check_error
{
	my ($label, $sql, $want_state, @want) = @_;
	my ($state, $out, $err) = call($sql);
	is($state, $want_state, "$label fails: SQLSTATE $want_state");
	for my $w (@want)
	{
		like($err, $w->[0], "$label: the error $w->[1]");
	}
	return $err;
}

my $rows0 = key_rows();
is(scalar(() = $rows0 =~ /^\(/mg), 6, 'setup: u1..u3 have a data key and a persona row');
is(personas(), $want_personas, 'setup: the persona texts read back');
is($node->safe_psql('postgres', "SELECT count(*) FROM roastr_state.user_keys WHERE user_id = '$u4'"),
	'0', 'setup: u4 (no persona text) has no data key');

# The calls that need a key, for users with persona text, and u4's first
# persona write (a new data key needs the current master key).
my @needs_key = (
	[ "state_full of u2", "SELECT roastr_state.state_full('$u2')" ],
	[ "state_sync of u2", "SELECT roastr_state.state_sync('$u2', 0)" ],
	[ "ensure_user of u2", "SELECT roastr_state.ensure_user('$u2', 'changed\@example.com')" ],
	[ "a persona write for u3", "SELECT roastr_state.patch('$u3', '{\"persona.identity\": \"new text\"}')" ],
	[ "a persona clear for u3", "SELECT roastr_state.patch('$u3', '{\"persona.tolerance\": null}')" ]);

# ---------------------------------------------- (a) the file is missing
note '(a) restart without the key file';
my $log = restart_with('(a)', undef);
like($log, qr/WARNING:  could not read master key file "\Q$keyfile\E": No such file or directory/,
	'(a) the start logs a WARNING naming the file');
my $st0 = state_rows($u2, $u3);
my $file_error = [ qr/ERROR:  F0000: could not read master key file "\Q$keyfile\E": No such file or directory/,
	'names the file and says it is missing' ];
my $setting = [ qr/roastr_state\.master_key_file/, 'names roastr_state.master_key_file' ];
for my $c (@needs_key, [ "u4's first persona write", "SELECT roastr_state.patch('$u4', '{\"persona.identity\": \"u4 text\"}')" ],
	[ 'rotate_master_key', 'SELECT roastr_state.rotate_master_key()' ])
{
	check_error("(a) $c->[0]", $c->[1], 'F0000', $file_error, $setting);
}
keyless_calls_work('(a)');
is(key_rows(), $rows0, '(a) no data key or persona row was rewritten');
is(state_rows($u2, $u3), $st0, "(a) u2's and u3's state rows are untouched");
is($node->safe_psql('postgres', "SELECT count(*) FROM roastr_state.user_keys WHERE user_id = '$u4'"),
	'0', '(a) no data key was made for u4');

# --------------------------------- (b) the same key id, other key bytes
note '(b) restart with key id 1 holding other key bytes';
$log = restart_with('(b)', "# roastr_state TAP test, a different key\n1 $K1_changed\n");
unlike($log, qr/master key file/, '(b) the file itself is valid: nothing logged at start');
$st0 = state_rows($u2, $u3);
my $unwrap_offset = -s $node->logfile;
my $wrong_key = [ qr/ERROR:  F0000: master key 1 in file "\Q$keyfile\E" does not open the data keys wrapped with it/,
	'names the key id and the file' ];
my $wrong_key_hint = [ qr/HINT:  The file named by roastr_state\.master_key_file holds another key under id 1\./,
	'says the file holds another key under that id' ];
for my $c (@needs_key, [ 'rotate_master_key', 'SELECT roastr_state.rotate_master_key()' ])
{
	check_error("(b) $c->[0]", $c->[1], 'F0000', $wrong_key, $wrong_key_hint, $setting);
}
like(slurp_file($node->logfile, $unwrap_offset),
	qr/DETAIL:  None of the \d data keys stored under master key 1 opened\./,
	'(b) the server log says how many stored data keys were tried');
keyless_calls_work('(b)');
is(key_rows(), $rows0, '(b) no data key or persona row was rewritten');
is(state_rows($u2, $u3), $st0, "(b) u2's and u3's state rows are untouched");

# ------------------------------------- (c) only a key with another id
note '(c) restart with a file whose only key has id 2';
$log = restart_with('(c)', "2 $K2\n");
unlike($log, qr/master key file/, '(c) the file itself is valid: nothing logged at start');
$st0 = state_rows($u2, $u3);
for my $c (@needs_key, [ 'rotate_master_key', 'SELECT roastr_state.rotate_master_key()' ])
{
	check_error("(c) $c->[0]", $c->[1], 'F0000',
		[ qr/ERROR:  F0000: could not unwrap the data key of user d/, 'names the user' ],
		[ qr/DETAIL:  Master key 1 is not in the file named by roastr_state\.master_key_file\./,
			'names the missing key id and roastr_state.master_key_file' ]);
}
keyless_calls_work('(c)');
is(key_rows(), $rows0, '(c) no data key or persona row was rewritten');
is(state_rows($u2, $u3), $st0, "(c) u2's and u3's state rows are untouched");

# ------------------------------------------- (d) the right file is back
note '(d) the right file put back, first without a restart';
write_private($keyfile, $right_file);
is(personas(), $want_personas, '(d) without a restart, every persona decrypts again');
$node->restart;
is(personas(), $want_personas, '(d) after a restart too');
is(key_rows(), $rows0, '(d) the key and persona rows are the ones of before (a)');
my ($state, $out) = call('SELECT roastr_state.rotate_master_key()::text');
is("$state $out", '00000 {"key_id": 1, "remaining": 0, "rewrapped": 0}', '(d) rotate_master_key works');
($state, $out) = call("SELECT roastr_state.patch('$u3', '{\"persona.identity\": \"u3 again\"}')->'applied'");
is("$state $out", '00000 ["persona.identity"]', '(d) a persona write works');
is($node->safe_psql('postgres', "SELECT roastr_state.state_full('$u3')->'persona'->>'identity'"),
	'u3 again', '(d) and reads back');
($state, $out) = call("SELECT roastr_state.patch('$u4', '{\"persona.identity\": \"u4 text\"}')->'applied'");
is("$state $out", '00000 ["persona.identity"]', "(d) u4's first persona write works (a new data key)");

# ------------- (b') a user's first persona write under the changed key
note "(b') the changed key again: a user's first persona write";
restart_with("(b')", "1 $K1_changed\n");
my $u_new = $U[8];
$node->safe_psql('postgres', "SELECT roastr_state.ensure_user('$u_new', 'first\@example.com')");
($state) = call("SELECT roastr_state.patch('$u_new', '{\"persona.identity\": \"written under the changed key\"}')");
is($state, 'F0000', "(b') a first persona write under the changed key is refused");
is($node->safe_psql('postgres', "SELECT count(*) FROM roastr_state.user_keys WHERE user_id = '$u_new'"),
	'0', "(b') and no data key was wrapped under the changed key");
restart_with("(b')", $right_file);
is(personas(), $want_personas =~ s/^(\Q$u3\E)\|[^|]*/$1|u3 again/mr, "(b') with the right file, u1..u3 decrypt");
($state) = call("SELECT roastr_state.patch('$u_new', '{\"persona.identity\": \"written under the right key\"}')");
is($state, '00000', "(b') with the right file, that user's first persona write works");
is($node->safe_psql('postgres', "SELECT roastr_state.state_full('$u_new')->'persona'->>'identity'"),
	'written under the right key', "(b') and reads back");

# ------------------------------------------------ no key material leaks
my $server_log = slurp_file($node->logfile);
for my $k ([ 'key 1', $K1 ], [ 'the changed key 1', $K1_changed ], [ 'key 2', $K2 ])
{
	my $prefix = substr($k->[1], 0, 16);
	ok(!grep({ /\Q$prefix\E/i } @all_stderr) && $server_log !~ /\Q$prefix\E/i,
		"no error and no server log line holds $k->[0]'s hex digits");
}

$node->stop;
done_testing();
