#!/usr/bin/env bash
# ldirectord realserver start|stop|status in the real-server namespaces of the DR topology:
# the VIPs and ARP settings it makes, what they change on the wire (who answers ARP for the
# VIP, whether the real server takes its share of the traffic), idempotency, the exit codes
# of status, and stop putting back exactly the values it found.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

LD=$LDIRECTORD_BIN
VIPS=10.0.0.100,fd00::100

# (the real servers and the client are plain network namespaces: tests/vm/README.md)
in_rs() { local name=$1; shift; ip netns exec "$name" "$@"; }

# the addresses on lo and the ARP knobs of all, default, lo and eth0, on one line
# (one process in the namespace: every process start costs under emulation)
snapshot() {
  in_rs "$1" bash -c '
    ip -o addr show dev lo | awk "{print \$4}" | sort | tr "\n" " "
    for iface in all default lo eth0; do
      for knob in arp_ignore arp_announce; do
        printf "%s.%s=%s " $iface $knob $(< /proc/sys/net/ipv4/conf/$iface/$knob)
      done
    done'
}

# how many different hosts (MAC addresses) answer the client's ARP requests for the VIP
arp_responders() {
  in_rs client busybox arping -c 3 -w 2 -I eth0 10.0.0.100 2>/dev/null |
    grep -o 'reply from [0-9.]* \[[0-9a-fA-F:]*\]' | sort -u | wc -l
}

status_rc() {  # NAME: the exit status of "realserver status"
  local rc=0
  in_rs "$1" "$LD" realserver status "$VIPS" > /dev/null 2>&1 || rc=$?
  echo "$rc"
}

"$TOPOLOGY" up --ipvs > /dev/null

# rs1 as a freshly installed host: no VIP, and ARP knobs set to values worth restoring
in_rs rs1 ip addr del 10.0.0.100/32 dev lo
in_rs rs1 ip addr del fd00::100/128 dev lo
in_rs rs1 sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.all.arp_announce=1 \
  net.ipv4.conf.eth0.arp_ignore=3 net.ipv4.conf.eth0.arp_announce=0 \
  net.ipv4.conf.default.arp_ignore=0 net.ipv4.conf.default.arp_announce=0
before=$(snapshot rs1)

expect_eq "status on an unprepared real server exits 3" 3 "$(status_rc rs1)"
check "status says what is missing and how to fix it" bash -c \
  "ip netns exec rs1 '$LD' realserver status $VIPS | grep -q 'FAIL  10.0.0.100/32 is not on lo'"
expect_eq "without the VIP on its loopback rs1 drops its share of the traffic" \
  "requests=4 ok=2 failed=2 rs2=2" "$("$TOPOLOGY" requests 4)"

t0=$(date +%s%N)
check "start" in_rs rs1 "$LD" realserver start "$VIPS"
echo "    (start took $(( ($(date +%s%N) - t0) / 1000000 )) ms under TCG, process start included)"
expect_eq "start: VIPs as host addresses on lo; all set, eth0's own 3 (which would win) set to 1" \
  "10.0.0.100/32 127.0.0.1/8 ::1/128 fd00::100/128 all.arp_ignore=1 all.arp_announce=2 default.arp_ignore=0 default.arp_announce=0 lo.arp_ignore=0 lo.arp_announce=0 eth0.arp_ignore=1 eth0.arp_announce=0 " \
  "$(snapshot rs1)"
expect_eq "status after start exits 0" 0 "$(status_rc rs1)"
expect_eq "rs1 takes its share again" "requests=4 ok=4 failed=0 rs1=2 rs2=2" "$("$TOPOLOGY" requests 4)"
expect_eq "only the director answers ARP for the VIP" 1 "$(arp_responders)"
started=$(snapshot rs1)
again=$(in_rs rs1 "$LD" realserver start "$VIPS")
expect_eq "start again changes nothing and says so" \
  "10.0.0.100/32 already on lo (added by an earlier start)
fd00::100/128 already on lo (added by an earlier start)" "$again"
expect_eq "… and the host is as it was" "$started" "$(snapshot rs1)"
expect_eq "the record is root's alone: directory 0700, file 0600" "700 600" \
  "$(stat -c %a /run/ldirectord) $(stat -c %a /run/ldirectord/realserver-net*.json)"

check "stop" in_rs rs1 "$LD" realserver stop
expect_eq "stop puts back exactly what start found" "$before" "$(snapshot rs1)"
expect_eq "status after stop exits 3" 3 "$(status_rc rs1)"
check "nothing left to undo: no record" bash -c '! ls /run/ldirectord/realserver-net*.json 2>/dev/null'
check "stop again is harmless" in_rs rs1 "$LD" realserver stop

# the failure mode start prevents: a VIP on lo with arp_ignore=0 answers ARP
in_rs rs1 ip addr add 10.0.0.100/32 dev lo
expect_eq "an unprepared real server with the VIP answers ARP for it too" 2 "$(arp_responders)"
check "start on a VIP that was already there keeps it as someone else's" bash -c \
  "ip netns exec rs1 '$LD' realserver start 10.0.0.100 | grep -q 'not added by ldirectord'"
expect_eq "with the ARP settings made, only the director answers" 1 "$(arp_responders)"
check "stop" in_rs rs1 "$LD" realserver stop 10.0.0.100
expect_eq "stop leaves a VIP it did not add, and restores the rest" \
  "$(in_rs rs1 ip -o addr show dev lo | awk '{print $4}' | sort | tr '\n' ' ')" \
  "10.0.0.100/32 127.0.0.1/8 ::1/128 "
in_rs rs1 ip addr del 10.0.0.100/32 dev lo
expect_eq "… so the host is as before" "$before" "$(snapshot rs1)"

# several VIPs over several starts; ARP stays while any VIP added by start remains
in_rs rs1 "$LD" realserver start 10.0.0.100 > /dev/null
in_rs rs1 "$LD" realserver start 10.0.0.101 > /dev/null
check "stopping one VIP keeps the ARP settings for the other" bash -c \
  "ip netns exec rs1 '$LD' realserver stop 10.0.0.100 | grep -q 'ARP settings kept: 1 VIP'"
expect_eq "… still in effect" 1 "$(in_rs rs1 cat /proc/sys/net/ipv4/conf/all/arp_ignore)"
in_rs rs1 "$LD" realserver stop 10.0.0.101 > /dev/null
expect_eq "stopping the last one restores everything" "$before" "$(snapshot rs1)"

# rs2 was set up by hand (topology.sh): start finds nothing to do, stop undoes nothing
rs2_before=$(snapshot rs2)
check "start on a real server prepared by hand" in_rs rs2 "$LD" realserver start "$VIPS"
check "stop on it" in_rs rs2 "$LD" realserver stop "$VIPS"
expect_eq "… leaves it exactly as it was" "$rs2_before" "$(snapshot rs2)"
expect_eq "status on it exits 0" 0 "$(status_rc rs2)"

# a VIP on an interface that answers ARP for it is reported, not hidden
in_rs rs2 ip addr add 10.0.0.100/32 dev eth0
expect_eq "status reports a VIP also on eth0 (exit 3)" 3 "$(status_rc rs2)"
in_rs rs2 ip addr del 10.0.0.100/32 dev eth0

expect_eq "an unknown interface is an error, and nothing changes" \
  "1 $before" "$(rc=0; in_rs rs1 "$LD" realserver start 10.0.0.100 --dev nosuch0 2>/dev/null || rc=$?; echo "$rc $(snapshot rs1)")"
expect_eq "a subnet is refused as a VIP (usage error)" 255 \
  "$(rc=0; in_rs rs1 "$LD" realserver start 10.0.0.0/24 2>/dev/null || rc=$?; echo $rc)"

# the LSB init script (dist/init.d/), driving the binary under test
INIT=$VM_DIR/../../dist/init.d/ldirectord-realserver
printf 'VIPS="10.0.0.100 fd00::100"\nDEV=lo\nDAEMON=%s\n' "$LD" > /etc/default/ldirectord-realserver
init_rc() { local rc=0; in_rs rs1 sh "$INIT" "$1" > /dev/null 2>&1 || rc=$?; echo "$rc"; }
expect_eq "init script: status before start exits 3" 3 "$(init_rc status)"
expect_eq "init script: start" 0 "$(init_rc start)"
expect_eq "init script: status after start exits 0" 0 "$(init_rc status)"
expect_eq "init script: reload (start again) exits 0" 0 "$(init_rc reload)"
expect_eq "init script: stop" 0 "$(init_rc stop)"
expect_eq "… and the host is as before" "$before" "$(snapshot rs1)"
expect_eq "init script: an unknown action is a usage error" 2 "$(init_rc frobnicate)"
rm -f /etc/default/ldirectord-realserver

"$TOPOLOGY" down
rm -rf /run/ldirectord
finish
