#!/usr/bin/perl
# Runs the Perl ldirectord's own health checks once, like its main loop would, and prints one
# verdict per (virtual, real): the file's functions are loaded as they are (only the main
# program between "# command line options" and "# functions" is left out), its config reader
# reads CONFIG, ld_setup derives the URLs and timeouts, and _check_real runs each check.
# service_set, which would program IPVS, only records the verdict.
#
#   perl perl-checks.pl LDIRECTORD CONFIG
#
# Prints "VIRTUAL-PORT<TAB>REAL<TAB>up|down<TAB>note" lines on fd 3 (the checks themselves
# print to STDOUT: check_sip and check_simpletcp echo their requests). A check that returns
# without calling service_set (check_http on a timeout) leaves the real as it was; that is
# reported as down with the note "unchanged", since nothing has brought it up.
use strict;

our ($CONFIG, $CFGNAME, $DEBUG, $opt_d, @VIRTUAL, $DAEMON_STATUS, $DAEMON_STATUS_RUNNING);

my ($ldirectord, $config) = @ARGV;
my $GUARD = 20;
die "usage: $0 LDIRECTORD CONFIG\n" unless defined $config;
open(my $results, '>&=', 3) or die "fd 3 is not open: $!\n";
$results->autoflush(1);

open(my $src, '<', $ldirectord) or die "$ldirectord: $!\n";
my $code = do { local $/; <$src> };
close($src);
$code =~ s/^# command line options\n.*?^# functions\n//ms
	or die "$ldirectord: main program not found\n";
{
	local $SIG{'__WARN__'} = sub { };
	eval "package main;\n#line 1 \"$ldirectord\"\n$code\n1;" or die $@;
}

# Log to stderr (as with -d), never to /var/log/ldirectord.log or syslog.
$opt_d = 1;
$DEBUG = $ENV{PERL_CHECKS_DEBUG} || 0;
$CONFIG = $config;
$CFGNAME = "compare-checks";
$DAEMON_STATUS = $DAEMON_STATUS_RUNNING;
read_config();
ld_setup();

my $verdict;
{
	no warnings 'redefine';
	*main::service_set = sub { my (undef, undef, $state) = @_; $verdict = $state; };
}

for my $v (@VIRTUAL) {
	for my $r (@{$$v{real}}) {
		$verdict = undef;
		# Some Perl checks have no deadline (imap, imaps: Net::IMAP::Simple waits for
		# every answer forever); a check still running after $GUARD seconds is down.
		my $ok = eval {
			local $SIG{'ALRM'} = sub { die "no verdict after $GUARD s (no deadline)\n" };
			alarm $GUARD;
			_check_real($v, $r);
			alarm 0;
			1;
		};
		my $error = $@;
		alarm 0;
		my $note = $ok ? "" : "died: $error";
		$note =~ s/\s+/ /g;
		if (!defined $verdict) {
			$verdict = "down";
			$note ||= "unchanged";
		}
		print $results "$$v{port}\t$$r{server}:$$r{port}\t$verdict\t$note\n";
	}
}
