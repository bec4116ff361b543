#!/usr/bin/perl
# The Perl ldirectord's check_http, reduced to the work it does per check (a fresh
# LWP::UserAgent, the Host header, the request under alarm(negotiatetimeout), the 2xx and
# receive test), run N times in sequence against 127.1.x.y:PORT, as the Perl daemon runs
# checks. Prints the CPU time (user + system) of the loop, as benches/checks_10k.rs does.
#   perl perl_check_http.pl PORT [N]
use strict;
use warnings;
use LWP::UserAgent;
use HTTP::Headers;
use HTTP::Request;
use Time::HiRes qw(time);

my ($port, $n) = @ARGV;
$n ||= 1000;
my $recstr = "ok";
my @t0 = times;
my $w0 = time;
my $up = 0;
for my $i (1 .. $n) {
	my $ip = sprintf("127.1.%d.%d", ($i >> 8) & 255, $i & 255);
	my $ua = LWP::UserAgent->new(ssl_opts => { verify_hostname => 0 });
	my $h = HTTP::Headers->new("Host" => $ip);
	my $req = HTTP::Request->new("GET", "http://$ip:$port/", $h);
	my $res;
	eval {
		local $SIG{'__DIE__'} = "DEFAULT";
		local $SIG{'ALRM'} = sub { die "Timeout Alarm" };
		alarm 5;
		$res = $ua->request($req);
		alarm 0;
	};
	$up++ if defined $res && $res->is_success && (!($recstr =~ /.+/) || $res->content =~ /$recstr/);
}
my @t1 = times;
my $cpu = ($t1[0] - $t0[0]) + ($t1[1] - $t0[1]);
printf "perl check_http   %d checks, %d up\n", $n, $up;
printf "wall time         %.3f s\n", time - $w0;
printf "CPU time          %.3f s (user %.3f + system %.3f)\n", $cpu, $t1[0] - $t0[0], $t1[1] - $t0[1];
printf "CPU per check     %.1f µs\n", $cpu * 1e6 / $n;
