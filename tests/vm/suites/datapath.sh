#!/usr/bin/env bash
# Checks through the data path end to end, with the daemon in a real IPVS kernel (DR):
# a real server whose VIP was removed from its loopback still passes the plain check but
# fails the data-path check and is taken out; `ldirectord realserver start` on it brings it
# back. Also: the per-real firewall-mark services the daemon keeps; doctor's accept_local
# rule; its rp_filter rule, against the kernel (strict mode with the VIP off the interface
# the answers come in on: the checks fail; loose mode: they pass); and that a check is never
# answered by this host instead (the fallback HTTP server of the director listens on every
# address of dir1, port 80, all along).
# Timings are printed as "measure: …" lines.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

LD=${LDIRECTORD_BIN:?}
WORK=$(mktemp -d /tmp/datapath-suite.XXXXXX)
CONF=$WORK/datapath.cf
PLAIN=$WORK/plain.cf
LOG=$WORK/ldirectord.log
INTERVAL=2
TIMEOUT=2
# The bound on taking a real server out or back. On an idle host one round of checks
# suffices (interval + timeout, plus the 0.2 s poll); in an emulated VM on a busy shared
# host everything is several times slower (measured: 3 s on a load average of 13, 8-14 s
# on 21). This suite proves the mechanism, so its bound is generous: five rounds.
# tests/vm/suites/director.sh holds the latency bound; the figures printed as "measure:"
# are the ones to compare with interval + timeout.
LIMIT=$(awk -v i=$INTERVAL -v t=$TIMEOUT 'BEGIN { print 5 * (i + t) }')
MARK0=$((0x4c440000))

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
# wait_for SECONDS CMD...: polls CMD every 0.2 s (each poll starts processes, which under
# emulation takes CPU from the daemon); prints the seconds it took
wait_for() {
  local limit=$1 t
  shift
  t=$(now)
  while ! "$@" > /dev/null 2>&1; do
    le "$(elapsed "$t")" "$limit" || { echo "timeout"; return 1; }
    sleep 0.2
  done
  elapsed "$t"
}
has_dest() { ipvsadm -Ln -t 10.0.0.100:80 2>/dev/null | grep -q " $1 "; }
no_dest() { ! has_dest "$1"; }
both_in() { has_dest 10.0.0.11:80 && has_dest 10.0.0.12:80; }
both_out() { no_dest 10.0.0.11:80 && no_dest 10.0.0.12:80; }
# requests_eq WHAT EXPECTED COUNT: COUNT client requests (4 s each at most: a busy emulated
# host can take 2 s to start curl), each one listed when the summary is not EXPECTED
requests_eq() {
  local out
  out=$(VERBOSE=1 "$TOPOLOGY" requests "$3" 4)
  expect_eq "$1" "$2" "$(tail -n 1 <<< "$out")"
  [[ $(tail -n 1 <<< "$out") == "$2" ]] || sed 's/^/    request /' <<< "$out"
}
show_log() { echo "    last lines of the daemon's log ($1):"; tail -n 15 "$LOG" | sed 's/^/    | /'; }

write_conf() {  # write_conf FILE yes|no
  cat > "$1" <<CF
checkinterval=$INTERVAL
checktimeout=$TIMEOUT
failurecount=1
autoreload=no
cleanstop=no
logfile="$LOG"
virtual=10.0.0.100:80
	real=10.0.0.11:80 gate
	real=10.0.0.12:80 gate
	service=http
	checktype=negotiate
	request="check.txt"
	receive="OK"
	scheduler=rr
	checkdatapath=$2
CF
}

t=$(now)
"$TOPOLOGY" up > /dev/null
"$TOPOLOGY" start-http fallback
echo "measure: topology up in $(elapsed "$t") s"
write_conf "$CONF" yes
write_conf "$PLAIN" no

# doctor knows what data-path checks need on a DR director
sysctl -qw net.ipv4.conf.all.accept_local=0 net.ipv4.conf.br0.accept_local=0
check "doctor: without accept_local the data-path checks cannot work (exit 1)" bash -c \
  "'$LD' doctor '$CONF' > '$WORK/doctor' 2>&1; [[ \$? == 1 ]] && grep -q 'fix: sysctl -w net.ipv4.conf.br0.accept_local=1' '$WORK/doctor'"
sysctl -qw net.ipv4.conf.br0.accept_local=1
check "doctor: with it, nothing blocks" "$LD" doctor "$CONF"

t=$(now)
check "ldirectord start" "$LD" "$CONF" start
check "both real servers in the table" wait_for 30 both_in
echo "measure: start to both real servers in: $(elapsed "$t") s"
expect_eq "one firewall-mark service per real server, pinned to it" \
  "FWM  $MARK0 rr|-> 10.0.0.11:0 Route 1|FWM  $((MARK0 + 1)) rr|-> 10.0.0.12:0 Route 1" \
  "$(ipvsadm -Ln | awk '/^FWM/ { print $1 "  " $2 " " $3 } /->/ && $2 ~ /:0$/ { print $1 " " $2 " " $3 " " $4 }' | paste -sd'|')"
requests_eq "requests alternate" "requests=2 ok=2 failed=0 rs1=1 rs2=1" 2

# the classic DR mistake: the VIP is gone from rs1's loopback
t=$(now)
ip -n rs1 addr del 10.0.0.100/32 dev lo
ip -n rs1 addr del fd00::100/128 dev lo
out=$(wait_for 30 no_dest 10.0.0.11:80) || true
echo "measure: VIP removed from rs1's loopback -> rs1 out of the table in $out s (limit $LIMIT s)"
check "the data-path check takes rs1 out within $LIMIT s (took $out)" le "${out/timeout/999}" "$LIMIT"
le "${out/timeout/999}" "$LIMIT" || show_log "rs1 out"
requests_eq "clients lose nothing: rs2 serves all" "requests=4 ok=4 failed=0 rs2=4" 4
check "rs1 still passes the plain check" "$LD" check "$PLAIN" --real 10.0.0.11
check "the log says why" grep -Eq "real server 10\.0\.0\.11:80 .*is down: ." "$LOG"
grep -E "real server 10\.0\.0\.11:80 .*is down" "$LOG" | tail -n 1 | sed 's/^/    log: /'

check "realserver status on rs1 names the missing VIP (exit 3)" bash -c \
  "ip netns exec rs1 '$LD' realserver status 10.0.0.100,fd00::100 > '$WORK/status' 2>&1; [[ \$? == 3 ]] && grep -q 10.0.0.100 '$WORK/status'"
t=$(now)
check "ldirectord realserver start on rs1" ip netns exec rs1 "$LD" realserver start 10.0.0.100,fd00::100
echo "measure: ldirectord realserver start took $(elapsed "$t") s (an emulated process start)"
# from here on, the director's part: the next check of rs1 passes
out=$(wait_for 30 has_dest 10.0.0.11:80) || true
echo "measure: realserver start returned -> rs1 back in the table in $out s (limit $LIMIT s)"
check "rs1 is back within $LIMIT s (took $out)" le "${out/timeout/999}" "$LIMIT"
le "${out/timeout/999}" "$LIMIT" || show_log "rs1 back"
check "realserver status on rs1: nothing missing" ip netns exec rs1 "$LD" realserver status 10.0.0.100,fd00::100
requests_eq "requests alternate again" "requests=2 ok=2 failed=0 rs1=1 rs2=1" 2

# Strict rp_filter with the VIP on lo instead of br0: the answers from the VIP coming in on
# br0 fail the reverse-path test (doctor says so); loose mode lets them through again.
RPF_ALL=$(sysctl -n net.ipv4.conf.all.rp_filter)
RPF_BR0=$(sysctl -n net.ipv4.conf.br0.rp_filter)
ip addr del 10.0.0.100/32 dev br0
ip addr add 10.0.0.100/32 dev lo
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.br0.rp_filter=1
t=$(now)
out=$(wait_for 30 both_out) || true
echo "measure: VIP on lo + strict rp_filter on br0 -> both real servers out in $out s (limit $LIMIT s)"
check "strict rp_filter, VIP not on br0: the data-path checks fail, both out (took $out)" le "${out/timeout/999}" "$LIMIT"
check "doctor: strict rp_filter blocks the data-path checks (exit 1)" bash -c \
  "'$LD' doctor '$CONF' > '$WORK/doctor' 2>&1; [[ \$? == 1 ]] && grep -q 'fix: sysctl -w net.ipv4.conf.br0.rp_filter=2' '$WORK/doctor'"
sysctl -qw net.ipv4.conf.br0.rp_filter=2
t=$(now)
out=$(wait_for 30 both_in) || true
echo "measure: rp_filter=2 (loose) on br0 -> both real servers back in $out s (limit $LIMIT s)"
check "loose rp_filter: both back (took $out)" le "${out/timeout/999}" "$LIMIT"
ip addr del 10.0.0.100/32 dev lo
ip addr add 10.0.0.100/32 dev br0
sysctl -qw net.ipv4.conf.all.rp_filter="$RPF_ALL" net.ipv4.conf.br0.rp_filter="$RPF_BR0"

# stop: the mark services go (cleanstop=no keeps the virtual service)
check "ldirectord stop" "$LD" "$CONF" stop
check "no firewall-mark service left" bash -c "! ipvsadm -Ln | grep -q '^FWM'"
check "the virtual service stays (cleanstop=no)" bash -c "ipvsadm -Ln -t 10.0.0.100:80 | grep -q 10.0.0.12"

ip netns exec rs1 "$LD" realserver stop > /dev/null
sysctl -qw net.ipv4.conf.br0.accept_local=0
rm -rf /run/ldirectord "$WORK"
"$TOPOLOGY" down
echo "measure: the whole suite took $SECONDS s"
finish
