# 001_kill_cycles.pl -- crash safety of roastr_state's writes.
#
# A client process keeps 5 sessions (one per user) busy with patch (4 to 6
# fields at once, persona text among them, each with a mutation_id),
# consume_roasts (with an idempotency key) and apply_polar_webhook (signed
# as Polar signs), while this script crashes the server under it: at least
# 20 cycles (default 24), alternating a kill -9 of a backend -- a client's,
# or now and then the roastr_state notifier worker -- after which the
# postmaster resets and runs crash recovery, and an immediate shutdown
# (pg_ctl stop -m immediate) followed by a restart.  synchronous_commit is
# on.  After every cycle it proves:
#
#  - every operation whose reply the client saw is there (its field values,
#    the version its reply gave, its mutation / consumption / webhook record),
#    and no operation the client never sent is;
#  - an operation in flight at the crash is wholly there or wholly absent:
#    it is taken as applied when its record exists, and then every one of its
#    fields, the version and the per-field versions must agree with that;
#  - usage.monthly_roasts_used is exactly the acknowledged consumptions plus
#    the in-flight one if (and only if) its consumption record exists;
#  - _meta.version is the version after setup plus one per applied
#    operation, and each tracked field's version in state_sync(0) is the
#    version of the operation that last changed it;
#  - state_sync(0) replays what state_full shows: every field once, with
#    state_full's value; the cursor and the newest change are the version;
#  - persona text decrypts (state_full as the service) to the text last
#    acknowledged, or of the in-flight patch when that one was applied;
#  - every webhook delivery recorded is recorded as applied;
#  - amcheck finds every btree index of schema roastr_state sound
#    (bt_index_check, and bt_index_parent_check with heapallindexed and
#    rootdescend) and verify_heapam finds no corrupt tuple in its tables;
#  - crash recovery ran, and the server log shows no crash but the one the
#    test caused (no other process dead of a signal, no PANIC).
#
# The client journals each operation before sending it and each reply when it
# sees it, one line at a time, flushed, in tmp_check/log/001_kill_cycles.journal;
# the expected state is rebuilt from that file alone after each crash (and the
# client's own model, which it writes there when it ends, must match it).
# Which in-flight operations commit is up to the race with the crash; every
# outcome the rules above allow passes, and no check depends on timing.
# fsync is off (PostgreSQL::Test::Cluster's default): it matters only when the
# OS crashes; here only PostgreSQL's processes die, and the kernel keeps every
# WAL write a commit made before its reply.
#
# Knobs: ROASTR_TAP_CYCLES (default 24), ROASTR_TAP_SEED (the random choices;
# printed with note()).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IO::Handle;
use JSON::PP;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64);
use POSIX qw(strftime);
use Time::HiRes qw(usleep time);

use RoastrNode qw(random_bytes roastr_node);

my $CYCLES = $ENV{ROASTR_TAP_CYCLES} // 24;
my $SEED = $ENV{ROASTR_TAP_SEED} // int(rand(2**31));
srand($SEED);
note "seed $SEED (set ROASTR_TAP_SEED to repeat the random choices), $CYCLES cycles";

my $NUSERS = 5;
my @USERS = map { sprintf('c%07d-0000-4000-8000-%012d', $_, $_) } 1 .. $NUSERS;
my $json = JSON::PP->new->utf8->canonical;
$ENV{PGCLIENTENCODING} = 'UTF8';
# A write to a psql whose connection died must not kill the client.
$SIG{PIPE} = 'IGNORE';

# Plans' roast limits (roastr_state.plans' defaults; undef = unlimited) and
# the Polar products the webhooks use.
my %LIMIT = (free => 100, starter => 500, pro => 1000, plus => undef);
my %PRODUCT = (prod_pro => 'pro', prod_plus => 'plus');

# -------------------------------------------------------------- the node
my ($node, undef, $wh_secret) = roastr_node('kill_cycles',
	"# roastr_state TAP test\n1 " . unpack('H*', random_bytes(32)) . "\n", q{
# acknowledged must mean durable
synchronous_commit = on
# a killed backend makes the postmaster reset and run crash recovery
restart_after_crash = on
});
$node->safe_psql('postgres', 'CREATE EXTENSION amcheck;');
$node->safe_psql('postgres',
	"SELECT roastr_state.set_product_plan('prod_pro', 'pro'), roastr_state.set_product_plan('prod_plus', 'plus')");

# ---------------------------------------------------------- operations
sub lit { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }

my $t_start = time;
sub iso { return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])); }
# One billing period for every event, so the usage period never moves.
my $period_start = iso($t_start - 86400);
my $period_end = iso($t_start + 29 * 86400);

# SQL that delivers a Polar subscription event signed as Polar signs it.
sub webhook_sql
{
	my ($wh_id, $k, $status, $product, $modified) = @_;
	my $body = $json->encode(
		{
			type => 'subscription.updated',
			timestamp => $modified,
			data => {
				id => "sub_u$k",
				status => $status,
				modified_at => $modified,
				created_at => $period_start,
				current_period_start => $period_start,
				current_period_end => $period_end,
				cancel_at_period_end => JSON::PP::false,
				product_id => $product,
				customer_id => "cus_u$k",
				customer => { id => "cus_u$k", external_id => $USERS[ $k - 1 ] },
				metadata => {},
			}
		});
	my $ts = int(time);
	my $sig = 'v1,' . encode_base64(hmac_sha256("$wh_id.$ts.$body", $wh_secret), '');
	return sprintf('roastr_state.apply_polar_webhook(%s, %s, %s, %s)',
		lit($wh_id), lit($ts), lit($sig), lit($body));
}

my @SHIELD = qw(tolerante balanceado estricto);

# A new operation (id $id) for user $k, given the model.
sub new_op
{
	my ($model, $k, $id) = @_;
	my $u = $model->{users}{$k};
	my $r = rand;
	if ($r < 0.5)
	{
		my %changes = (
			'auth.name' => "u$k op$id",
			'roasting.roast_level' => 1 + $id % 5,
			'roasting.shield_level' => $SHIELD[ $id % 3 ],
			'roasting.enabled' => ($id % 2 ? JSON::PP::true : JSON::PP::false));
		# Persona text: identity and intolerance, which every plan may write
		# (tolerance needs pro or plus, and the users move between plans).
		$changes{'persona.identity'} = "identity of u$k, op $id \x{2014} \x{fc}ber-r\x{f6}st"
		  if rand() < 0.6;
		$changes{'persona.intolerance'} = "intolerance of u$k, op $id"
		  if rand() < 0.3;
		my $mid = sprintf('%08x-0000-4000-8000-%012x', $k, $id);
		return { id => $id, user => $k, kind => 'patch', changes => \%changes, mutation_id => $mid };
	}
	elsif ($r < 0.8)
	{
		return { id => $id, user => $k, kind => 'consume', key => "roast-u$k-op$id" };
	}
	# Every event changes the status (active <-> past_due, both allowed
	# moves), so each applied one is a version; the product alternates.
	my $status = $u->{fields}{'subscription.status'} eq 'active' ? 'past_due' : 'active';
	return {
		id => $id, user => $k, kind => 'webhook',
		wh_id => "wh-u$k-op$id", status => $status,
		product => ($id % 2 ? 'prod_plus' : 'prod_pro'),
		modified => iso($t_start - 86400 + $id),
	};
}

sub op_sql
{
	my ($op) = @_;
	my $uid = lit($USERS[ $op->{user} - 1 ]);
	if ($op->{kind} eq 'patch')
	{
		return sprintf('roastr_state.patch(%s, %s, NULL, %s)',
			$uid, lit($json->encode($op->{changes})), lit($op->{mutation_id}));
	}
	elsif ($op->{kind} eq 'consume')
	{
		return sprintf('roastr_state.consume_roasts(%s, 1, %s)', $uid, lit($op->{key}));
	}
	return webhook_sql($op->{wh_id}, $op->{user}, $op->{status}, $op->{product}, $op->{modified});
}

# ------------------------------------------------------------ the model
#
# users{k}: version; the tracked fields' values (fields{path}) and the
# versions that last changed them (fver{path}); the records of applied
# operations (mutations, consumptions, webhooks: sets of ids); pending: the
# one operation sent and not yet answered or resolved.

my %TRACKED = map { $_ => 1 } (
	'auth.name', 'roasting.roast_level', 'roasting.shield_level', 'roasting.enabled',
	'persona.identity', 'persona.intolerance', 'subscription.plan', 'subscription.status',
	'usage.monthly_roasts_used');

# Equality of two JSON scalars as decoded (or built) by Perl: null, booleans
# by truth, anything else by its text.  Works on copies: stringifying a
# number would make JSON::PP encode it as a string afterwards.
sub value_eq
{
	my ($x, $y) = @_;
	return 0 if defined($x) != defined($y);
	return 1 if !defined $x;
	my ($bx, $by) = (!!JSON::PP::is_bool($x), !!JSON::PP::is_bool($y));
	return 0 if $bx != $by;
	return !!$x == !!$y if $bx;
	return JSON::PP->new->canonical->encode([$x]) eq JSON::PP->new->canonical->encode([$y])
	  if ref $x || ref $y;
	return "$x" eq "$y";
}

sub limit_allows
{
	my ($u) = @_;
	my $limit = $LIMIT{ $u->{fields}{'subscription.plan'} };
	return !defined($limit) || $u->{fields}{'usage.monthly_roasts_used'} + 1 <= $limit;
}

# Apply an operation known to have committed.
sub apply_op
{
	my ($u, $op) = @_;
	my $v = $u->{version} + 1;
	if ($op->{kind} eq 'patch')
	{
		# a field written with the value it has is no change: its version stays
		for my $f (keys %{ $op->{changes} })
		{
			next if value_eq($u->{fields}{$f}, $op->{changes}{$f});
			$u->{fields}{$f} = $op->{changes}{$f};
			$u->{fver}{$f} = $v;
		}
		$u->{mutations}{ $op->{mutation_id} } = 1;
	}
	elsif ($op->{kind} eq 'consume')
	{
		$u->{consumptions}{ $op->{key} } = 1;
		return unless limit_allows($u);    # allowed: false changes nothing
		$u->{fields}{'usage.monthly_roasts_used'}++;
		$u->{fver}{'usage.monthly_roasts_used'} = $v;
	}
	else
	{
		$u->{webhooks}{ $op->{wh_id} } = 1;
		$u->{fields}{'subscription.plan'} = $PRODUCT{ $op->{product} };
		$u->{fields}{'subscription.status'} = $op->{status};
		# An applied event writes the status (and the period), which the
		# effective plan and the count of the period are computed from: all
		# three are shown at the event's version, whatever their values.
		$u->{fver}{$_} = $v
		  for ('subscription.plan', 'subscription.status', 'usage.monthly_roasts_used');
	}
	$u->{version} = $v;
	return;
}

# Apply one journal event to a model.  Besides users, the model keeps per
# cycle: problems (replies that differ from the model's prediction, or
# unexpected output), acks (replies seen), client (the client's own model at
# its end) and replayed (the replayed model at that point).
sub apply_event
{
	my ($m, $ev) = @_;
	my $c = $m->{cycle} // 0;
	my $problem = sub { push @{ $m->{problems}{$c} }, @_ };
	if ($ev->{ev} eq 'init')
	{
		$m->{users} = $ev->{users};
	}
	elsif ($ev->{ev} eq 'cycle')
	{
		$m->{cycle} = $ev->{n};
	}
	elsif ($ev->{ev} eq 'sent')
	{
		my $op = $ev->{op};
		my $u = $m->{users}{ $op->{user} };
		die "journal: op $op->{id} sent while op $u->{pending}{id} is pending" if $u->{pending};
		die "journal: op id $op->{id} reused" if $op->{id} <= ($m->{max_op_id} // 0);
		$u->{pending} = $op;
		$m->{max_op_id} = $op->{id};
	}
	elsif ($ev->{ev} eq 'ack' || $ev->{ev} eq 'resolved')
	{
		my $u = $m->{users}{ $ev->{user} };
		my $op = $u->{pending};
		die "journal: $ev->{ev} of op $ev->{id}, which is not pending"
		  unless $op && $op->{id} == $ev->{id};
		delete $u->{pending};
		if ($ev->{ev} eq 'resolved')
		{
			apply_op($u, $op) if $ev->{applied};
			return;
		}
		$m->{acks}{$c}++;
		if ($ev->{sqlstate} ne '00000')
		{
			# an error is an answer too: nothing was applied
			$problem->("op $op->{id} ($op->{kind}) failed: SQLSTATE $ev->{sqlstate}");
			return;
		}
		my $allowed = $op->{kind} eq 'consume' ? limit_allows($u) : 1;
		apply_op($u, $op);
		my $r = eval { $json->decode($ev->{result}) };
		if (!$r)
		{
			$problem->("op $op->{id}: unreadable reply '$ev->{result}'");
		}
		elsif ($op->{kind} eq 'patch')
		{
			my $want = join(',', sort keys %{ $op->{changes} });
			my $got = join(',', sort @{ $r->{applied} // [] });
			$problem->("op $op->{id}: patch returned version $r->{version}, the model has $u->{version}")
			  if ($r->{version} // -1) != $u->{version};
			$problem->("op $op->{id}: patch applied [$got], sent [$want]") if $got ne $want;
		}
		elsif ($op->{kind} eq 'consume')
		{
			$problem->("op $op->{id}: allowed=" . ($r->{allowed} ? 1 : 0) . ", the model says $allowed")
			  if !!$r->{allowed} != !!$allowed;
			$problem->("op $op->{id}: consume says used=$r->{monthly_roasts_used}, the model has "
				  . $u->{fields}{'usage.monthly_roasts_used'})
			  if ($r->{monthly_roasts_used} // -1) != $u->{fields}{'usage.monthly_roasts_used'};
		}
		else
		{
			$problem->("op $op->{id}: webhook reply $ev->{result}")
			  unless $r->{processed} && !$r->{idempotent} && ($r->{outcome} // '') eq 'applied';
		}
	}
	elsif ($ev->{ev} eq 'unexpected')
	{
		$problem->("session of u$ev->{user}: unexpected output '$ev->{line}'");
	}
	elsif ($ev->{ev} eq 'client_end')
	{
		$m->{client}{$c} = $ev->{digest};
		$m->{replayed}{$c} = $json->decode($json->encode(digest($m)));
	}
	else
	{
		die "journal: unknown event $ev->{ev}";
	}
	return;
}

# What a model knows, in short: each user's version, fields, field versions,
# pending op and number of records.
sub digest
{
	my ($m) = @_;
	my %d;
	for my $k (keys %{ $m->{users} })
	{
		my $u = $m->{users}{$k};
		$d{$k} = {
			(map { $_ => $u->{$_} } qw(version fields fver)),
			pending => ($u->{pending} ? $u->{pending}{id} : undef),
			(map { $_ => scalar(keys %{ $u->{$_} }) } qw(mutations consumptions webhooks)),
		};
	}
	return \%d;
}

# ------------------------------------------------------------ the journal
my $journal_path = "$PostgreSQL::Test::Utils::log_path/001_kill_cycles.journal";
unlink $journal_path;

# Append one event: written and flushed before the caller goes on.
sub journal
{
	my ($ev) = @_;
	open my $fh, '>>', $journal_path or die "$journal_path: $!";
	print $fh $json->encode($ev), "\n" or die "journal: $!";
	close $fh or die "journal: $!";
	return;
}

# The model built from the journal file alone: replay_journal(\%m) applies
# the lines added since its last call (from scratch for a new, empty %m).
sub replay_journal
{
	my ($m) = @_;
	$m->{users} //= {};
	open my $fh, '<', $journal_path or die "$journal_path: $!";
	seek($fh, $m->{offset} // 0, 0) or die "seek: $!";
	while (my $line = <$fh>)
	{
		die "journal: a partial line at the end" unless $line =~ /\n\z/;
		apply_event($m, $json->decode($line));
	}
	$m->{offset} = tell($fh);
	close $fh;
	return $m;
}

# ------------------------------------------------------------ the client
#
# Runs in a child process for one cycle: starts one psql per user, tells the
# parent each backend's pid ("pid K PID") and each reply it sees ("ack"), and
# keeps every session busy until its connection is gone.  The model it acts
# on (the next webhook's status), $model, is the parent's, built from the
# journal; the child's copy follows the events the child writes.

my $psql = $node->installed_command('psql');

sub session_start
{
	my ($k) = @_;
	my $s = { user => $k, in => '', out => '', err => '', replies => {} };
	$s->{h} = IPC::Run::start(
		[ $psql, '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=0', '-d', $node->connstr('postgres'), '-f', '-' ],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err});
	$s->{in} .= "SELECT 'PID ' || pg_backend_pid();\n";
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	until (defined $s->{pid})
	{
		die "session of u$k: no backend pid; stderr: $s->{err}" if time > $deadline || !$s->{h}->pumpable;
		$s->{h}->pump_nb;
		session_read($s, undef, undef);
		usleep(1000) unless defined $s->{pid};
	}
	return $s;
}

# Consume complete output lines; a reply is acknowledged at its E line.
sub session_read
{
	my ($s, $model, $to_parent) = @_;
	while ($s->{out} =~ s/^([^\n]*)\n//)
	{
		my $line = $1;
		if ($line =~ /^PID (\d+)$/)
		{
			$s->{pid} = $1;
		}
		elsif ($line =~ /^R(\d+)\|(.*)$/)
		{
			$s->{replies}{$1} = $2;
		}
		elsif ($line =~ /^E(\d+) (\S*)$/)
		{
			my ($id, $sqlstate) = ($1, $2);
			die "session of u$s->{user}: reply to op $id, but op " . ($s->{busy} // 'none') . " is in flight"
			  unless defined $s->{busy} && $s->{busy} == $id;
			if ($sqlstate eq '' || $sqlstate =~ /^(08|57)/)
			{
				# No answer: the connection broke (libpq's own error, without a
				# SQLSTATE), or the server was going down.  The op stays in
				# flight; the session is over.
				$s->{lost} = 1;
				next;
			}
			my $ev = { ev => 'ack', id => $id + 0, user => $s->{user}, sqlstate => $sqlstate,
				result => delete $s->{replies}{$id} // '' };
			journal($ev);
			apply_event($model, $ev);
			$s->{busy} = undef;
			print $to_parent "ack\n";
		}
		else
		{
			my $ev = { ev => 'unexpected', user => $s->{user}, line => $line };
			journal($ev);
			apply_event($model, $ev) if $model;
		}
	}
	return;
}

sub client_main
{
	my ($cycle, $model, $to_parent) = @_;
	$to_parent->autoflush(1);
	srand($SEED + 7919 * $cycle);
	my $next_id = ($model->{max_op_id} // 0) + 1;
	my @sessions = map { session_start($_) } 1 .. $NUSERS;
	print $to_parent "pid $_->{user} $_->{pid}\n" for @sessions;

	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (my @live = grep { !$_->{dead} } @sessions)
	{
		die "client: the server was not crashed in time" if time > $deadline;
		my $progress = 0;
		for my $s (@live)
		{
			if (!defined $s->{busy} && !$s->{lost} && $s->{h}->pumpable)
			{
				my $op = new_op($model, $s->{user}, $next_id++);
				my $ev = { ev => 'sent', op => $op };
				my $sql = "SELECT 'R$op->{id}|' || " . op_sql($op) . "::text;\n\\echo E$op->{id} :SQLSTATE\n";
				journal($ev);    # before psql can have it
				apply_event($model, $ev);
				$s->{busy} = $op->{id};
				$s->{in} .= $sql;
			}
			my $before = length $s->{out};
			if ($s->{lost} || !$s->{h}->pumpable || !eval { $s->{h}->pump_nb; 1 })
			{
				# psql is gone (its connection was lost): reap it, keep what it said
				eval { $s->{h}->finish; 1 } or eval { $s->{h}->kill_kill; 1 };
				$s->{dead} = 1;
			}
			$progress = 1 if length $s->{out} != $before;
			session_read($s, $model, $to_parent);
		}
		usleep(500) unless $progress;
	}
	journal({ ev => 'client_end', digest => digest($model) });
	return;
}

# ------------------------------------------------------------ observing
sub observe
{
	my $list = join(', ', map { lit($_) } @USERS);
	my $out = $node->safe_psql(
		'postgres', qq{
SELECT json_build_object(
	'full', roastr_state.state_full(u),
	'sync', roastr_state.state_sync(u, 0),
	'mutations', (SELECT coalesce(json_agg(m.mutation_id ORDER BY m.mutation_id), '[]')
				  FROM roastr_state.mutations m WHERE m.user_id = u),
	'consumptions', (SELECT coalesce(json_agg(c.idempotency_key ORDER BY c.idempotency_key), '[]')
					 FROM roastr_state.consumptions c WHERE c.user_id = u),
	'webhooks', (SELECT coalesce(json_agg(json_build_object('id', w.webhook_id, 'processed', w.processed,
															'outcome', w.outcome) ORDER BY w.webhook_id), '[]')
				 FROM roastr_state.webhook_events w
				 WHERE w.webhook_id LIKE 'wh-u' || k || '-%'))
FROM unnest(ARRAY[$list]::uuid[]) WITH ORDINALITY AS t(u, k) ORDER BY k});
	my @rows = split /\n/, $out;
	die "observe: expected $NUSERS users, got " . scalar(@rows) unless @rows == $NUSERS;
	my $k = 0;
	return { map { ++$k => $json->decode($_) } @rows };
}

sub path_value
{
	my ($full, $path) = @_;
	my ($section, $name) = split /\./, $path, 2;
	return ref $full->{$section} eq 'HASH' ? $full->{$section}{$name} : undef;
}

# What the database shows for a user, in the model's terms.
sub observed_user
{
	my ($o) = @_;
	my %fver;
	for my $c (@{ $o->{sync}{changes} })
	{
		$fver{ $c->{field} } = $c->{version} if $TRACKED{ $c->{field} };
	}
	return {
		version => $o->{full}{_meta}{version},
		fields => { map { $_ => path_value($o->{full}, $_) } keys %TRACKED },
		fver => \%fver,
		mutations => { map { $_ => 1 } @{ $o->{mutations} } },
		consumptions => { map { $_ => 1 } @{ $o->{consumptions} } },
		webhooks => { map { $_->{id} => 1 } @{ $o->{webhooks} } },
	};
}

# state_sync(0) must replay what state_full shows: each field once, with
# state_full's value; the cursor and the newest change are the version.
# Every recorded webhook delivery must be recorded as applied.
sub consistency_problems
{
	my ($o) = @_;
	my @p;
	my ($full, $sync) = ($o->{full}, $o->{sync});
	my $v = $full->{_meta}{version};
	my $enc = JSON::PP->new->canonical->allow_nonref;
	my (%seen, $max);
	for my $c (@{ $sync->{changes} })
	{
		push @p, "field $c->{field} appears twice" if $seen{ $c->{field} }++;
		push @p, "field $c->{field}: state_sync has " . $enc->encode($c->{value})
		  . ", state_full " . $enc->encode(path_value($full, $c->{field}))
		  unless value_eq($c->{value}, path_value($full, $c->{field}));
		$max = $c->{version} if !defined $max || $c->{version} > $max;
	}
	push @p, "cursor $sync->{cursor}, version $v" if $sync->{cursor} != $v;
	push @p, 'newest change is version ' . ($max // 'none') . ", state_full's is $v"
	  if ($max // -1) != $v;
	push @p, "tracked field $_ is not in state_sync(0)" for grep { !$seen{$_} } sort keys %TRACKED;
	push @p, "webhook $_->{id}: processed=$_->{processed} outcome=$_->{outcome}"
	  for grep { !$_->{processed} || $_->{outcome} ne 'applied' } @{ $o->{webhooks} };
	return @p;
}

# amcheck over every btree index of the schema, verify_heapam over its tables.
my $n_btree = $node->safe_psql(
	'postgres', q{
SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam
 WHERE n.nspname = 'roastr_state' AND am.amname = 'btree'});
cmp_ok($n_btree, '>=', 10, "schema roastr_state has $n_btree btree indexes to check");

sub check_storage
{
	my ($label) = @_;
	my ($ret, $out, $err) = $node->psql(
		'postgres', q{
SELECT count(*) FROM (
	SELECT bt_index_check(c.oid, true), bt_index_parent_check(c.oid, true, true)
	  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	  JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam
	 WHERE n.nspname = 'roastr_state' AND am.amname = 'btree') s});
	is("$ret|$out|$err", "0|$n_btree|", "$label: amcheck finds all $n_btree btree indexes sound");
	($ret, $out, $err) = $node->psql(
		'postgres', q{
SELECT c.relname, v.blkno, v.offnum, v.msg
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
	   verify_heapam(c.oid, check_toast => true) v
 WHERE n.nspname = 'roastr_state' AND c.relkind = 'r'});
	is("$ret|$out|$err", '0||', "$label: verify_heapam finds no corrupt tuple in roastr_state's tables");
	return;
}

# --------------------------------------------------------------- setup
# Each user: created, on pro through a webhook (one billing period for the
# whole run), one roast consumed (the usage period is written down), a first
# persona text.  The model starts from what the database then shows.
{
	my @sql;
	for my $k (1 .. $NUSERS)
	{
		my $uid = lit($USERS[ $k - 1 ]);
		push @sql, "SELECT roastr_state.ensure_user($uid, 'u$k\@example.com');";
		push @sql, 'SELECT ' . webhook_sql("wh-u$k-setup", $k, 'active', 'prod_pro', iso($t_start - 86400)) . ';';
		push @sql, "SELECT roastr_state.consume_roasts($uid, 1, 'roast-u$k-setup');";
		push @sql, "SELECT roastr_state.patch($uid, '{\"persona.identity\": \"first identity of u$k\"}');";
	}
	$node->safe_psql('postgres', join("\n", @sql));
	my $obs = observe();
	my %users;
	for my $k (1 .. $NUSERS)
	{
		my $u = $users{$k} = observed_user($obs->{$k});
		is_deeply([ consistency_problems($obs->{$k}) ], [], "setup: u${k}'s state_sync(0) replays state_full");
		is(join('/', map { $u->{fields}{$_} } qw(subscription.plan subscription.status persona.identity)),
			"pro/active/first identity of u$k", "setup: u$k is on pro through the webhook, the persona reads back");
	}
	journal({ ev => 'init', users => \%users });
	check_storage('setup');
}

# --------------------------------------------------------------- cycles
my %totals = (acked => 0, inflight => 0, applied => 0);
my %fm;    # the model, from the journal file

for my $cycle (1 .. $CYCLES)
{
	my $mode = $cycle % 2 ? 'kill9' : 'immediate';
	my $t0 = time;
	journal({ ev => 'cycle', n => $cycle, mode => $mode });
	replay_journal(\%fm);

	pipe(my $from_client, my $to_parent) or die "pipe: $!";
	my $client = fork // die "fork: $!";
	if ($client == 0)
	{
		# The child must not run the test's END blocks (they would stop the
		# node): it leaves through _exit.
		close $from_client;
		my $ok = eval { client_main($cycle, \%fm, $to_parent); 1 };
		print STDERR "client: $@" unless $ok;
		close $to_parent;
		POSIX::_exit($ok ? 0 : 1);
	}
	close $to_parent;

	# Let the client work: a crash after 10 to 50 replies; a checkpoint among
	# them every third cycle.
	my %pids;
	my $acks = 0;
	my $target = 10 + int(rand(41));
	my $checkpointed = 0;
	while ($acks < $target)
	{
		my $line = <$from_client>;
		die "cycle $cycle: the client ended early" unless defined $line;
		if ($line =~ /^pid (\d+) (\d+)$/)
		{
			$pids{$1} = $2;
		}
		elsif ($line eq "ack\n")
		{
			$acks++;
		}
		if (!$checkpointed && $cycle % 3 == 0 && $acks >= $target / 2)
		{
			$node->safe_psql('postgres', 'CHECKPOINT');
			$checkpointed = 1;
		}
	}

	# Crash.
	my $log_offset = -s $node->logfile;
	my ($victim, $what);
	if ($mode eq 'kill9')
	{
		my $notifier = $cycle % 4 == 3
		  ? $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'roastr_state notifier' LIMIT 1")
		  : '';
		if ($notifier ne '')
		{
			($victim, $what) = ($notifier, "the notifier worker (pid $notifier)");
		}
		else
		{
			my $k = 1 + int(rand($NUSERS));
			($victim, $what) = ($pids{$k}, "u${k}'s backend (pid $pids{$k})");
		}
		if (!kill('KILL', $victim))
		{
			# the notifier had just exited (idle): a client's backend then
			my $k = 1 + int(rand($NUSERS));
			($victim, $what) = ($pids{$k}, "u${k}'s backend (pid $pids{$k})");
			kill('KILL', $victim) or die "kill -9 $victim: $!";
		}
	}
	else
	{
		$what = 'pg_ctl stop -m immediate';
		$node->stop('immediate');
	}
	# The client ends when all its connections are gone.
	1 while defined <$from_client>;
	close $from_client;
	waitpid($client, 0);
	is($?, 0, "cycle $cycle: the client ran until the crash ended its sessions");

	if ($mode eq 'kill9')
	{
		$node->wait_for_log(qr/database system is ready to accept connections/, $log_offset);
	}
	else
	{
		$node->start;
	}
	my $log = slurp_file($node->logfile, $log_offset);
	ok( $log =~ /automatic recovery in progress/
		  && ($mode ne 'kill9'
			|| ($log =~ /\(PID $victim\) was terminated by signal 9/
				&& $log =~ /all server processes terminated; reinitializing/)),
		"cycle $cycle: $what, then crash recovery");

	# Resolve the operations that were in flight, by their records.
	my $obs = observe();
	replay_journal(\%fm);
	my ($inflight, $applied) = (0, 0);
	for my $k (1 .. $NUSERS)
	{
		my $op = $fm{users}{$k}{pending} or next;
		my $o = $obs->{$k};
		my $is_applied =
			$op->{kind} eq 'patch' ? scalar(grep { $_ eq $op->{mutation_id} } @{ $o->{mutations} })
		  : $op->{kind} eq 'consume' ? scalar(grep { $_ eq $op->{key} } @{ $o->{consumptions} })
		  : scalar(grep { $_->{id} eq $op->{wh_id} } @{ $o->{webhooks} });
		$inflight++;
		$applied++ if $is_applied;
		journal({ ev => 'resolved', id => $op->{id}, user => $k, applied => ($is_applied ? 1 : 0) });
	}

	my $m = replay_journal(\%fm);
	my $acked = $m->{acks}{$cycle} // 0;
	is_deeply($m->{problems}{$cycle} // [], [], "cycle $cycle: each of the $acked replies was the one the model predicts");
	is_deeply($m->{client}{$cycle}, $m->{replayed}{$cycle}, "cycle $cycle: the journal holds everything the client knew");

	for my $k (1 .. $NUSERS)
	{
		my $want = $m->{users}{$k};
		my $got = observed_user($obs->{$k});
		is_deeply($got->{fields}, $want->{fields},
			"cycle $cycle: u${k}'s fields (persona decrypted, usage, plan, status) are the acknowledged ones");
		is_deeply([ $got->{version}, $got->{fver} ], [ $want->{version}, $want->{fver} ],
			"cycle $cycle: u${k}'s version and per-field versions count exactly the applied operations");
		is_deeply([ @$got{qw(mutations consumptions webhooks)} ], [ @$want{qw(mutations consumptions webhooks)} ],
			"cycle $cycle: u${k}'s mutation, consumption and webhook records are exactly the applied operations");
		is_deeply([ consistency_problems($obs->{$k}) ], [], "cycle $cycle: u${k}'s state_sync(0) replays state_full");
	}
	check_storage("cycle $cycle");

	# From the crash through the checks, only the process killed may have
	# died of a signal.
	my $killed = defined $victim ? qr/\(PID $victim\) was terminated by signal 9/ : qr/(?!)/;
	my @crashes = grep { !/$killed/ } slurp_file($node->logfile, $log_offset)
	  =~ /^.*(?:terminated by signal|exited with exit code|PANIC|TRAP:).*$/mg;
	is_deeply(\@crashes, [], "cycle $cycle: no other process crashed, no PANIC");

	$totals{acked} += $acked;
	$totals{inflight} += $inflight;
	$totals{applied} += $applied;
	note sprintf(
		"cycle %2d/%d: %s; %d replies seen, %d ops in flight (%d applied, %d absent)%s; "
		  . "versions %s; roasts used %s; %.1f s",
		$cycle, $CYCLES, $what, $acked, $inflight, $applied, $inflight - $applied,
		$checkpointed ? ', a checkpoint mid-cycle' : '',
		join('/', map { $m->{users}{$_}{version} } 1 .. $NUSERS),
		join('/', map { $m->{users}{$_}{fields}{'usage.monthly_roasts_used'} } 1 .. $NUSERS),
		time - $t0);
}

note sprintf('%d cycles: %d replies seen, %d operations in flight at a crash (%d applied, %d absent)',
	$CYCLES, $totals{acked}, $totals{inflight}, $totals{applied}, $totals{inflight} - $totals{applied});
cmp_ok($CYCLES, '>=', 20, 'at least 20 crash cycles') unless defined $ENV{ROASTR_TAP_CYCLES};
my $full = replay_journal({});
is_deeply([ map { $_ // {} } @$full{qw(users problems acks)} ], [ map { $_ // {} } @fm{qw(users problems acks)} ],
	'the journal replayed from its start gives the model built cycle by cycle');

$node->stop;
done_testing();
