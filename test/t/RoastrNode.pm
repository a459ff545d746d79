# RoastrNode.pm -- what the TAP tests of roastr_state share: a
# PostgreSQL::Test::Cluster node set up as the extension expects it
# (preloaded, a master key file and a webhook secret file readable by the
# server's user only, Supabase's roles, the extension created), and the
# file helpers that go with it.
package RoastrNode;

use strict;
use warnings;

use Exporter 'import';
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT_OK = qw(random_bytes write_private roastr_node);

# $n bytes from /dev/urandom.
sub random_bytes
{
	my ($n) = @_;
	open my $fh, '<:raw', '/dev/urandom' or die "urandom: $!";
	read($fh, my $b, $n) == $n or die "short read from /dev/urandom";
	close $fh;
	return $b;
}

# Replace $path atomically (as a secret manager would) with a file readable
# by its owner only (the extension refuses others).
sub write_private
{
	my ($path, $content) = @_;
	my $old = umask(077);
	open my $fh, '>', "$path.tmp" or die "$path.tmp: $!";
	print $fh $content;
	close $fh or die "$path.tmp: $!";
	umask($old);
	chmod 0600, "$path.tmp" or die "chmod $path.tmp: $!";
	rename "$path.tmp", $path or die "rename $path: $!";
	return;
}

# roastr_node(NAME, KEYFILE_CONTENT, EXTRA_CONF, INIT_OPTIONS): a started
# node with the library preloaded, "$basedir/master.keys" holding
# KEYFILE_CONTENT, a random Polar webhook secret (returned raw), Supabase's
# roles and the extension.  INIT_OPTIONS (a hash reference) go to
# PostgreSQL::Test::Cluster's init, e.g. { allows_streaming => 1 }.
# Returns ($node, $keyfile, $webhook_secret).
sub roastr_node
{
	my ($name, $keys, $extra_conf, $init_options) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => [ '--encoding=UTF8', '--locale=C' ], %{ $init_options // {} });
	my $base = $node->basedir;
	my $keyfile = "$base/master.keys";
	write_private($keyfile, $keys);
	my $wh_secret = random_bytes(32);
	write_private("$base/polar_webhook_secret", 'whsec_' . encode_base64($wh_secret, '') . "\n");
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'roastr_state'
roastr_state.master_key_file = '$keyfile'
roastr_state.webhook_secret_file = '$base/polar_webhook_secret'
# persona text is inlined in the tests' SQL; keep it out of the log
log_statement = none
} . ($extra_conf // ''));
	$node->start;
	my $testdir = $ENV{TESTDIR} // '.';
	$node->safe_psql('postgres', slurp_file("$testdir/test/helpers/supabase_roles.psql"));
	$node->safe_psql('postgres', 'CREATE EXTENSION roastr_state;');
	return ($node, $keyfile, $wh_secret);
}

1;
