#!/usr/bin/env bash
# Two directors under heartbeat v1, each in its own network, mount and UTS namespaces on one
# bridge with the client and two real servers (topology.sh --pair), with this ldirectord as a
# haresources resource and IPVS connection sync between them (syncdaemon=both):
#   * dir1 takes the VIP, its ldirectord programs its table: the client is served;
#   * an established TCP session through dir1 is synced to dir2's connection table;
#   * dir1 is unplugged: dir2's heartbeat declares it dead after deadtime, takes the VIP and
#     starts ldirectord, which programs its table: fresh requests are served again, and the
#     established session goes on.
# The failover time is taken apart: from the unplug until heartbeat has run IPaddr and calls
# the ldirectord resource script (deadtime, then heartbeat's own shell scripts: several
# seconds under TCG, where every process start costs 70-500 ms), and from that call until
# the client is served (this project's share). The issue's bound, deadtime + 2 s in all, is
# printed, and checked for this project's share: 2 s.
# The cluster stack is Debian's heartbeat 3.0.6 (ha.cf, haresources, authkeys): bookworm still
# ships it, it runs unchanged from the VM's shared root, and haresources is the deployment the
# Perl ldirectord documents. Figures (failover time, session gap) are printed as "measured:".
# vm-debs: heartbeat
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../cluster/heartbeat.sh
. "$VM_DIR/cluster/heartbeat.sh"

BIN=${LDIRECTORD_BIN:-${CARGO_TARGET_DIR:-target}/debug/ldirectord}
PROBE=$VM_DIR/cluster/probe.py
WORK=/tmp/failover
rm -rf "$WORK" "$HB_STATE"
mkdir -p "$WORK"

cleanup() {
  ns_kill dir1
  ns_kill dir2
  local pid
  for pid in "$WORK"/*.pid; do [[ -e $pid ]] && kill "$(cat "$pid")" 2>/dev/null; done
  if [[ -n ${stamper:-} ]]; then pkill -P "$stamper" 2> /dev/null || true; fi
  "$TOPOLOGY" down > /dev/null 2>&1 || true
}
trap cleanup EXIT

check "heartbeat and its dependencies unpack and run here" hb_install

"$TOPOLOGY" up --pair --reals 2 > /dev/null
# Echo servers on the real servers (DR: they hold the VIP on lo), for the long-lived session.
for rs in rs1 rs2; do
  "$TOPOLOGY" exec "$rs" python3 "$PROBE" echo-server 7 > /dev/null 2>&1 &
  echo $! > "$WORK/echo-$rs.pid"
done

cat > /etc/ha.d/ldirectord.cf <<'CF'
checkinterval = 1
checktimeout = 1
negotiatetimeout = 1
logfile = "/var/lib/heartbeat/ldirectord.log"
syncdaemon = both
syncinterface = eth0
syncid = 7
metrics = 9469

virtual = 10.0.0.100:80
    real = 10.0.0.11:80 gate
    real = 10.0.0.12:80 gate
    service = http
    request = "check.txt"
    receive = "OK"
    checktype = negotiate
    scheduler = rr

virtual = 10.0.0.100:7
    real = 10.0.0.11:7 gate
    real = 10.0.0.12:7 gate
    checktype = connect
    scheduler = rr
CF
mkdir -p /etc/ha.d/resource.d
# heartbeat runs the resource script through a wrapper that notes the instant it was called
# (bash's own clock, no fork), then becomes the binary: the moment heartbeat hands over to
# this project, exactly (log lines reach their files late: heartbeat's through its logging
# daemon, and tail polls the 9p files once a second).
cat > /etc/ha.d/resource.d/ldirectord <<SH
#!/bin/bash
t=\$EPOCHREALTIME
read -r host < /proc/sys/kernel/hostname  # (HOSTNAME may come from heartbeat's environment)
printf '%s %s %s\n' "\$t" "\$host" "\$*" >> $WORK/resource-calls
exec -a "\$0" "$BIN" "\$@"  # (the binary is the resource script by its name)
SH
chmod 755 /etc/ha.d/resource.d/ldirectord
hb_configure "dir1 IPaddr::10.0.0.100/24/eth0 ldirectord::ldirectord.cf"
RS=/etc/ha.d/resource.d/ldirectord

# The standby's boot: it does not run ldirectord, but receives dir1's connections.
check "dir2 (standby) starts its sync daemons with ldirectord sync" \
  "$TOPOLOGY" exec dir2 "$BIN" sync ldirectord.cf
# dir1 boots first and takes its resource group; dir2 joins as the standby.
hb_start dir1

serving() {  # DIRECTOR: it holds the VIP, its ldirectord runs, and the client is served
  "$TOPOLOGY" exec "$1" ip -4 addr show dev eth0 | grep -q '10.0.0.100/' &&
    "$TOPOLOGY" exec "$1" "$RS" ldirectord.cf status > /dev/null &&
    [[ $("$TOPOLOGY" requests 2 1) == "requests=2 ok=2 failed=0"* ]]
}
wait_for() {  # SECONDS CMD...: until CMD succeeds, for at most SECONDS
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
}
diagnose() {  # what the directors did, after a failed check
  local d
  for d in dir1 dir2; do
    echo "--- $d: addresses, table, heartbeat log, resource scripts, ldirectord log"
    {
      "$TOPOLOGY" exec "$d" ip -4 -br addr show dev eth0
      "$TOPOLOGY" exec "$d" ipvsadm -Ln
      hb_log "$d" | grep -vE 'Gmain_timeout_dispatch|G_CH_dispatch|G_SIG_dispatch|Late heartbeat|core' | tail -n 25
      hb_debug "$d" | grep -E 'ResourceManager|resource.d|ldirectord|IPaddr' | tail -n 25
      tail -n 15 "$HB_STATE/$d/ldirectord.log"
    } 2>&1 | sed 's/^/    /' || true
  done
  echo "--- heartbeat's calls of the resource script (time, host, arguments)"
  sed 's/^/    /' "$WORK/resource-calls" 2> /dev/null || true
  hb_save failover
}
# (Under emulation heartbeat needs about a minute: initdead, then the takeover of dir2's
# group, which is empty, then its own.)
check "dir1 takes the VIP and runs ldirectord from haresources, and serves (240 s)" \
  wait_for 240 serving dir1
((FAILED == 0)) || diagnose
hb_start dir2
check "dir2's heartbeat joins as the standby (30 s)" \
  wait_for 30 bash -c "grep -q 'Status update for node dir2: status active' '$HB_STATE/dir1/ha-log'"

expect_eq "both real servers serve through dir1" \
  "requests=4 ok=4 failed=0 rs1=2 rs2=2" "$("$TOPOLOGY" requests 4)"
check "heartbeat on dir2 reads the resource script's status as not ours" \
  bash -c "[[ \$('$TOPOLOGY' exec dir2 '$RS' ldirectord.cf status) == *'not running'* ]]"
check "dir1's metrics endpoint answers on 127.0.0.1:9469" bash -c "
  '$TOPOLOGY' exec dir1 curl -sf http://127.0.0.1:9469/metrics | grep -qx 'ldirectord_ready 1'"
check "dir1 runs both sync daemons" bash -c "
  [[ \$('$TOPOLOGY' exec dir1 ipvsadm -L --daemon | grep -c syncid=7) == 2 ]]"

# A long-lived session through dir1, then the failure.
"$TOPOLOGY" exec client python3 "$PROBE" session 10.0.0.100 7 60 "$WORK/session.log" &
session=$!
check "the session's connection reaches dir2's table through the sync daemons (20 s)" \
  wait_for 20 bash -c "'$TOPOLOGY' exec dir2 ipvsadm -Lnc | grep -q '10.0.0.100:7 '"

# dir2's ldirectord log, each line stamped with the wall-clock time it was read (late by up
# to a second: for the table's completion only, which the log alone tells)
touch "$HB_STATE/dir2/ldirectord.log"
( tail -q -n 0 -F "$HB_STATE/dir2/ldirectord.log" 2> /dev/null |
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done > "$WORK/dir2.stamped" ) \
  > /dev/null 2>&1 &  # (never the suite's output: a leftover would hold its pipe open)
stamper=$!
"$TOPOLOGY" exec client python3 "$PROBE" first-success 10.0.0.100 80 30 > "$WORK/first" &
first=$!
sleep 0.3
t0=$EPOCHREALTIME  # before the unplug: every figure below is an upper bound
"$TOPOLOGY" link-down dir1
t_unplugged=$EPOCHREALTIME
wait "$first" || true
sleep 1
pkill -P "$stamper" 2> /dev/null || true
t_served=$(cat "$WORK/first")
t_start=$(awk '$2 == "dir2" && $NF == "start" { print $1; exit }' "$WORK/resource-calls")
t_table=$(awk '/Added real server/ { n++; if (n == 4) { print $1; exit } }' "$WORK/dir2.stamped")
span() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == "none") print "?"; else printf "%.2f", b - a }'; }
failover=$(span "$t0" "$t_served")
ours=$(span "$t_start" "$t_served")
echo "measured: first fresh request served $failover s after dir1 was unplugged" \
  "(the unplug command took $(span "$t0" "$t_unplugged") s; deadtime ${HB_DEADTIME} s):"
echo "measured:   heartbeat, from the unplug until it ran 'resource.d/ldirectord ldirectord.cf start':" \
  "$(span "$t0" "$t_start") s (deadtime, then its resource scripts: IPaddr first)"
echo "measured:   ldirectord, from that call until the client was served: $ours s"
echo "measured:   ldirectord, from that call until its log said the table was complete: $(span "$t_start" "$t_table") s (the log read up to 1 s late)"
echo "measured: the issue's bound, deadtime + 2 s = $((HB_DEADTIME + 2)) s in all:" \
  "$(awk -v t="$failover" -v d="$HB_DEADTIME" 'BEGIN { print (t != "?" && t + 0 <= d + 2) ? "met" : "missed" }');" \
  "heartbeat's share beyond its deadtime: $(awk -v a="$(span "$t0" "$t_start")" -v d="$HB_DEADTIME" 'BEGIN { if (a == "?") print "?"; else printf "%.2f", a - d }') s"
check "fresh requests are served again (30 s)" test "$failover" != "?"
check "dir2 serves within 2 s of heartbeat's call to start ldirectord (this project's share of the failover)" \
  awk -v t="$ours" 'BEGIN { exit !(t != "?" && t + 0 <= 2) }'
check "dir2 took the VIP and runs ldirectord" bash -c "
  '$TOPOLOGY' exec dir2 ip -4 addr show dev eth0 | grep -q 10.0.0.100/ &&
  '$TOPOLOGY' exec dir2 '$RS' ldirectord.cf status | grep -q 'is running'"
check "dir2's ldirectord programmed both virtual services with both real servers (10 s)" \
  wait_for 10 bash -c "[[ \$('$TOPOLOGY' exec dir2 ipvsadm -Ln | grep -c -- '-> 10.0.0.1[12]:') == 4 ]]"
expect_eq "both real servers serve through dir2" \
  "requests=4 ok=4 failed=0 rs1=2 rs2=2" "$("$TOPOLOGY" requests 4)"
echo "measured: $(( $(date +%s) - ${t0%.*} )) s from the unplug to the end of these checks"

wait "$session" || true
gap=$(sed -n 's/^DONE rounds=[0-9]* maxgap=//p' "$WORK/session.log")
echo "measured: the established session's longest pause was ${gap:-?} s ($(tail -n 1 "$WORK/session.log"))"
check "the established session survived the failover (connection sync)" \
  grep -q '^DONE rounds=' "$WORK/session.log"

((FAILED == 0)) || diagnose
echo "--- heartbeat on dir2"; hb_log dir2 | grep -E 'dead|Taking over|acquisition|ldirectord' | tail -n 12
finish
