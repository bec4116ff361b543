#!/usr/bin/env bash
# The harness itself: a real IPVS kernel with module autoload, and the topology in each shape
# later suites rely on (DR and NAT, a dead or unplugged real server, a second director).
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

check "ip_vs is loaded and answers over generic netlink" \
  bash -c 'grep -q "^ip_vs " /proc/modules && ipvsadm -Ln | grep -q "IP Virtual Server version"'
check "every scheduler module loads on demand" bash -c '
  for s in rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh; do
    ipvsadm -A -t 10.9.9.9:80 -s $s && ipvsadm -D -t 10.9.9.9:80 || exit 1
  done'
check "tunnel destinations (ipip, gue, gre) are accepted" bash -c '
  ipvsadm -A -t 10.9.9.9:80 && ipvsadm -a -t 10.9.9.9:80 -r 10.9.9.10 -i &&
  ipvsadm -a -t 10.9.9.9:80 -r 10.9.9.11 -i --tun-type gue --tun-port 6080 &&
  ipvsadm -a -t 10.9.9.9:80 -r 10.9.9.12 -i --tun-type gre &&
  [[ $(ipvsadm -Ln | grep -c Tunnel) == 3 ]]; status=$?; ipvsadm -C; exit $status'

for mode in dr nat; do
  $TOPOLOGY up --mode "$mode" --reals 3 --ipvs > /dev/null
  expect_eq "$mode: round robin spreads over 3 real servers" \
    "requests=6 ok=6 failed=0 rs1=2 rs2=2 rs3=2" "$($TOPOLOGY requests 6)"
  $TOPOLOGY stop-http rs1
  expect_eq "$mode: a stopped HTTP server fails its share (no health checks here)" \
    "requests=6 ok=4 failed=2 rs2=2 rs3=2" "$($TOPOLOGY requests 6)"
  $TOPOLOGY start-http rs1
  $TOPOLOGY link-down rs2
  expect_eq "$mode: an unplugged real server times out" \
    "requests=3 ok=2 failed=1 rs1=1 rs3=1" "$($TOPOLOGY requests 3 1)"
  $TOPOLOGY link-up rs2
  $TOPOLOGY down
done

$TOPOLOGY up --directors 2 > /dev/null
check "dir2 has its own hostname, /run and IPVS table" bash -c '
  [[ $('"$TOPOLOGY"' exec dir2 hostname) == dir2 && $(hostname) != dir2 ]] &&
  '"$TOPOLOGY"' exec dir2 touch /run/dir2-only && [[ ! -e /run/dir2-only ]] &&
  '"$TOPOLOGY"' exec dir2 ipvsadm -A -t 10.0.0.100:80 -s rr &&
  [[ -z $(ipvsadm -Sn) ]]'
$TOPOLOGY exec dir2 ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g
$TOPOLOGY exec dir2 ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g
$TOPOLOGY vip add dir2
expect_eq "the VIP on dir2 serves through dir2's table" \
  "requests=4 ok=4 failed=0 rs1=2 rs2=2" "$($TOPOLOGY requests 4)"
$TOPOLOGY vip del dir2
expect_eq "no director holds the VIP: nothing answers" \
  "requests=1 ok=0 failed=1" "$($TOPOLOGY requests 1 1)"
$TOPOLOGY down

finish
