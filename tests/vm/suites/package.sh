#!/usr/bin/env bash
# The Debian package (dist/deb/build.sh, packing the binary under test) in the VM's throwaway
# root: it replaces Debian's Perl ldirectord package, installs everything where that package
# and resource-agents put it, passes systemd-analyze verify, and its ldirectord starts from
# /etc/ha.d/ldirectord.cf both by hand and through heartbeat's haresources. (The OCF agent's
# ocf-tester run is suites/ocf.sh.)
# vm-debs: heartbeat ldirectord!
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../cluster/heartbeat.sh
. "$VM_DIR/cluster/heartbeat.sh"

ROOT=$(cd "$VM_DIR/../.." && pwd)
BIN=${LDIRECTORD_BIN:-${CARGO_TARGET_DIR:-target}/debug/ldirectord}
WORK=/tmp/package
rm -rf "$WORK" "$HB_STATE"
mkdir -p "$WORK"
cleanup() {
  ns_kill dir1
  ns_kill dir2
  "$TOPOLOGY" down > /dev/null 2>&1 || true
}
trap cleanup EXIT
wait_for() {  # SECONDS CMD...
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
}

check "heartbeat, resource-agents and their dependencies unpack" hb_install heartbeat 'ldirectord!'
perl_deb=$(ls "$(debs_dir heartbeat 'ldirectord!')"/ldirectord_*.deb)
deb=$("$ROOT/dist/deb/build.sh" --binary "$BIN" --out "$WORK" 2>"$WORK/build.log") ||
  { cat "$WORK/build.log"; }
check "dist/deb/build.sh builds the package" test -s "$deb"

# Debian's Perl package first (its Perl modules are not needed to test the replacement; no
# service may start in the VM).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
check "Debian's ldirectord installs (dependencies forced)" \
  dpkg -i --force-depends "$perl_deb"
echo "# operator's file, kept" >> /etc/ha.d/ldirectord.cf
check "ours replaces it: dpkg removes the Perl package (Conflicts + Replaces)" bash -c "
  dpkg -i '$deb' &&
  [[ \$(dpkg-query -W -f '\${Status}' ldirectord-rs) == 'install ok installed' ]] &&
  [[ \$(dpkg-query -W -f '\${Status}' ldirectord 2>/dev/null) != *' installed' ]]"
check "the operator's /etc/ha.d/ldirectord.cf is untouched" \
  grep -qx "# operator's file, kept" /etc/ha.d/ldirectord.cf
check "files where the Perl packages put them" bash -c '
  [[ -x /usr/sbin/ldirectord && $(readlink /etc/ha.d/resource.d/ldirectord) == /usr/sbin/ldirectord ]] &&
  [[ -x /usr/lib/ocf/resource.d/heartbeat/ldirectord && -e /usr/lib/ocf/resource.d/heartbeat/ldirectord.resource-agents ]] &&
  [[ -e /lib/systemd/system/ldirectord.service && -e /usr/share/man/man8/ldirectord.8.gz ]] &&
  [[ -e /usr/share/man/man7/ocf_heartbeat_ldirectord.7.gz && -e /usr/share/doc/ldirectord-rs/examples/director-pair.cf ]] &&
  [[ -e /lib/systemd/system/ldirectord-realserver.service && -x /etc/init.d/ldirectord-realserver ]] &&
  [[ -e /usr/share/man/man8/ldirectord-realserver.8.gz ]] &&
  /usr/sbin/ldirectord ocf meta-data | grep -q "<parameter name=\"check_kernel\">" &&
  dpkg-divert --list /usr/lib/ocf/resource.d/heartbeat/ldirectord | grep -q ldirectord-rs'
man_check=yes
[[ -e $ROOT/man/ldirectord.cf.5 ]] || man_check=no   # until ldirectord.cf(5) is written
check "the real-server side: its init script is a conffile, its defaults file lists no VIP" bash -c '
  dpkg-query -W -f "\${Conffiles}" ldirectord-rs | grep -q " /etc/init.d/ldirectord-realserver " &&
  grep -qx "VIPS=\"\"" /etc/default/ldirectord-realserver &&
  { /etc/init.d/ldirectord-realserver status 2> /dev/null; [[ $? == 3 ]]; }'
check "systemd-analyze verify accepts the installed units (man pages: $man_check)" \
  systemd-analyze verify --man="$man_check" /lib/systemd/system/ldirectord.service \
  /lib/systemd/system/ldirectord-realserver.service

"$TOPOLOGY" up --pair --reals 2 > /dev/null
cat > /etc/ha.d/ldirectord.cf <<'CF'
checkinterval = 1
checktimeout = 1
negotiatetimeout = 1
logfile = "/var/lib/heartbeat/ldirectord.log"
virtual = 10.0.0.100:80
    real = 10.0.0.11:80 gate
    real = 10.0.0.12:80 gate
    service = http
    request = "check.txt"
    receive = "OK"
    checktype = negotiate
    scheduler = rr
CF
check "the packaged ldirectord starts from /etc/ha.d/ldirectord.cf (no argument), and stops" \
  "$TOPOLOGY" exec dir2 sh -c '
    ldirectord start && ldirectord status | grep -q "10.0.0.11:80 *up" ||
      { sleep 2; ldirectord status | grep -q "10.0.0.11:80 *up"; } ; s=$?
    ldirectord stop && [ $s = 0 ] && [ -z "$(ipvsadm -Sn | grep -v "^-A")" ] || [ $s = 0 ]'
"$TOPOLOGY" exec dir2 ipvsadm -C

# heartbeat's haresources path, on dir1 alone (dir2 is declared dead after initdead).
hb_configure "dir1 IPaddr::10.0.0.100/24/eth0 ldirectord::ldirectord.cf"
hb_start dir1
serving() {
  "$TOPOLOGY" exec dir1 ip -4 addr show dev eth0 | grep -q '10.0.0.100/' &&
    "$TOPOLOGY" exec dir1 /etc/ha.d/resource.d/ldirectord ldirectord.cf status | grep -q 'is running' &&
    [[ $("$TOPOLOGY" requests 2 1) == "requests=2 ok=2 failed=0"* ]]
}
check "heartbeat takes the VIP and starts the packaged ldirectord from haresources (240 s)" \
  wait_for 240 serving dir1
expect_eq "the client is served by both real servers" \
  "requests=4 ok=4 failed=0 rs1=2 rs2=2" "$("$TOPOLOGY" requests 4)"
if ((FAILED)); then
  { hb_log dir1 | grep -vE 'Gmain_timeout_dispatch|Late heartbeat' | tail -n 30
    hb_debug dir1 | tail -n 30
    tail -n 20 "$HB_STATE/dir1/ldirectord.log"; } 2>&1 || true
  hb_save package
fi
ns_kill dir1
"$TOPOLOGY" exec dir1 ipvsadm -C

finish
