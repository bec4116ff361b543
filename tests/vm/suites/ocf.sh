#!/usr/bin/env bash
# The OCF resource agent (dist/ocf/ldirectord running the binary under test) against the real
# kernel: resource-agents' ocf-tester passes on it, and its deep monitor (pid lock, control
# socket, IPVS table as the daemon reports it) catches a table changed behind the daemon's
# back. resource-agents is unpacked alone: ocf-tester and ocf-shellfuncs are shell, and
# ocf-tester validates the meta-data with xmllint against resource-agents' ra-api-1.dtd.
# vm-debs: resource-agents! libxml2-utils
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

ROOT=$(cd "$VM_DIR/../.." && pwd)
BIN=${LDIRECTORD_BIN:-${CARGO_TARGET_DIR:-target}/debug/ldirectord}
AGENT=$ROOT/dist/ocf/ldirectord
WORK=/tmp/ocf-suite
CF=/etc/ha.d/ocf-test.cf
rm -rf "$WORK"
mkdir -p "$WORK" /etc/ha.d
cleanup() {
  /usr/sbin/ldirectord "$CF" stop > /dev/null 2>&1 || true
  rm -f /usr/sbin/ldirectord
  "$TOPOLOGY" down > /dev/null 2>&1 || true
}
trap cleanup EXIT

unpack() {
  local dir deb
  unpack_debs 'resource-agents!' libxml2-utils || return 1
  dir=$(debs_dir 'resource-agents!' libxml2-utils)
  for deb in "$dir"/resource-agents_*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C / || return 1
  done
  [[ -x /usr/sbin/ocf-tester && -e /usr/share/resource-agents/ra-api-1.dtd ]]
}
check "resource-agents (ocf-tester) unpacks" unpack
# Where the package puts it, and where the agent looks when the ldirectord parameter is not
# set (ocf-tester runs meta-data and usage without the -o parameters).
install -m 755 "$BIN" /usr/sbin/ldirectord

"$TOPOLOGY" up --reals 2 > /dev/null
cat > "$CF" <<CF
checkinterval = 30
checktimeout = 2
logfile = "$WORK/ldirectord.log"
virtual = 10.0.0.100:8080
    real = 10.0.0.11:80 gate
    real = 10.0.0.12:80 gate
    checktype = connect
    scheduler = wrr
CF

check "ocf-tester passes on the agent (start, stop, monitor, validate-all, meta-data, reload)" \
  ocf-tester -n lvs -o configfile="$CF" "$AGENT"

ocf() {  # ACTION [VAR=VALUE...]: the agent as Pacemaker runs it; prints the exit code
  local action=$1 rc=0
  shift
  env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=lvs OCF_RESKEY_configfile="$CF" \
    "$@" "$AGENT" "$action" > "$WORK/ocf.out" 2>&1 || rc=$?
  echo "$rc"
  { echo "--- $action $*"; cat "$WORK/ocf.out"; } >> "$WORK/ocf.all"
}
expect_eq "start" 0 "$(ocf start)"
expect_eq "the deep monitor passes on the table as programmed" 0 "$(ocf monitor)"
ipvsadm -a -t 10.0.0.100:8080 -r 10.0.0.99:8080 -g
expect_eq "a real server added behind the daemon's back fails the monitor" \
  1 "$(ocf monitor OCF_RESKEY_CRM_meta_timeout=4000)"
check "... and the agent says which" \
  grep -q "has a real server 10.0.0.99:8080 that is not in the configuration" "$WORK/ocf.out"
expect_eq "check_kernel=false looks only at the daemon" \
  0 "$(ocf monitor OCF_RESKEY_check_kernel=false)"
ipvsadm -d -t 10.0.0.100:8080 -r 10.0.0.99:8080
expect_eq "the monitor passes again once the table is right" 0 "$(ocf monitor)"
expect_eq "stop" 0 "$(ocf stop)"
expect_eq "monitor after stop: not running" 7 "$(ocf monitor)"
ipvsadm -C
if ((FAILED)); then
  echo "--- what the agent said"; cat "$WORK/ocf.all"
  echo "--- ldirectord's log"; tail -n 30 "$WORK/ldirectord.log" || true
fi
finish
