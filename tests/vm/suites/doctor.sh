#!/usr/bin/env bash
# ldirectord doctor on a real director (the VM's root namespace of the DR topology): what
# it finds, what it blocks on, its exit status, and that it changes nothing.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

LD=$LDIRECTORD_BIN
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cf() {  # NAME TEXT: write a configuration file, print its path
  printf '%s\n' "$2" > "$WORK/$1.cf"
  echo "$WORK/$1.cf"
}
doctor_rc() {  # CONFIG: exit status of doctor, its output in $WORK/out
  local rc=0
  "$LD" doctor "$1" > "$WORK/out" 2>&1 || rc=$?
  echo "$rc"
}
has() { grep -qF -- "$1" "$WORK/out" || { cat "$WORK/out"; return 1; }; }

"$TOPOLOGY" up > /dev/null
DR=$(cf dr 'virtual=10.0.0.100:80
	real=10.0.0.11:80 gate
	real=10.0.0.12:80 gate
	fallback=127.0.0.1:80 gate
	scheduler=wlc
	checktype=connect')

table_before=$(ipvsadm -Sn)
expect_eq "a ready DR director: exit 0" 0 "$(doctor_rc "$DR")"
check "… ip_vs found loaded" has "ok    ip_vs is loaded"
check "… the scheduler module found" has "scheduler wlc: ip_vs_wlc is"
check "… the VIP found on br0" has "ok    VIP 10.0.0.100 is on br0"
check "… the real servers found on a directly attached network" has "real 10.0.0.11 (gate) is on a directly attached network (br0)"
check "… the fallback found local" has "ok    real 127.0.0.1 is this host"
check "… no sync daemon" has "info  no IPVS sync daemon runs"
expect_eq "doctor changes nothing (IPVS table)" "$table_before" "$(ipvsadm -Sn)"
check "--json is JSON with a severity per finding" bash -c \
  "'$LD' doctor --json '$DR' | jq -e 'length > 5 and all(.severity | IN(\"ok\",\"info\",\"warn\",\"fail\"))'"

# NAT without forwarding
NAT=$(cf nat 'virtual=10.0.0.100:8080
	real=10.0.0.11:80 masq
	scheduler=rr
	checktype=connect')
sysctl -qw net.ipv4.ip_forward=0
expect_eq "NAT without ip_forward blocks" 1 "$(doctor_rc "$NAT")"
check "… and says how to fix it" has "fix: sysctl -w net.ipv4.ip_forward=1"
sysctl -qw net.ipv4.ip_forward=1
expect_eq "… with ip_forward=1 it does not" 0 "$(doctor_rc "$NAT")"
sysctl -qw net.ipv4.ip_forward=0

# a scheduler the kernel does not have
BAD=$(cf bad 'virtual=10.0.0.100:80
	real=10.0.0.11:80 gate
	scheduler=nosuch
	checktype=connect')
expect_eq "an unknown scheduler blocks" 1 "$(doctor_rc "$BAD")"
check "… named with its line" has "scheduler nosuch (first used at $WORK/bad.cf:1): no ip_vs_nosuch"

# direct routing to a real server behind a gateway
ip route add 192.0.2.0/24 via 10.0.0.11
GW=$(cf gw 'virtual=10.0.0.100:80
	real=192.0.2.5:80 gate
	scheduler=rr
	checktype=connect')
expect_eq "DR to a real server behind a gateway blocks" 1 "$(doctor_rc "$GW")"
check "… naming the gateway" has "real 192.0.2.5 ($WORK/gw.cf:2, gate) is reached through the gateway 10.0.0.11"
ip route del 192.0.2.0/24 via 10.0.0.11

# the director answering no ARP at all
sysctl -qw net.ipv4.conf.all.arp_ignore=8
expect_eq "arp_ignore=8 on the VIP's interface blocks" 1 "$(doctor_rc "$DR")"
check "… and says why" has "VIP 10.0.0.100 is on br0, but arp_ignore=8 there"
sysctl -qw net.ipv4.conf.all.arp_ignore=0

# the VIP elsewhere (managed by the cluster): a warning, not a block
ip addr del 10.0.0.100/32 dev br0
expect_eq "a VIP not on this host only warns" 0 "$(doctor_rc "$DR")"
check "… mentioning the cluster manager" has "WARN  VIP 10.0.0.100 ($WORK/dr.cf:1) is not on this host"
ip addr add 10.0.0.100/32 dev br0

# a running sync daemon is reported
ipvsadm --start-daemon master --mcast-interface br0 --syncid 7
doctor_rc "$DR" > /dev/null
check "a sync daemon is reported" has "info  IPVS sync daemon: master on br0, syncid 7"
ipvsadm --stop-daemon master

# without privileges (the configuration must be readable to them)
chmod 755 "$WORK"
chmod 644 "$DR"
check "as nobody: no CAP_NET_ADMIN blocks" bash -c \
  "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all '$LD' doctor '$DR' > '$WORK/out' 2>&1; [[ \$? == 1 ]] && grep -q 'FAIL  no CAP_NET_ADMIN' '$WORK/out'"

"$TOPOLOGY" down
finish
