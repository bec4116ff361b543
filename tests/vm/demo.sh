#!/usr/bin/env bash
# demo.sh — the classic LVS scenario as a timeline, in a throwaway VM with a real IPVS kernel:
# a director (this project's ldirectord) in front of two real web servers; rs1 dies, then rs2,
# the director's own fallback page takes over, then rs1 comes back.
#
#   tests/vm/demo.sh            build, boot the VM, run the scenario (about a minute)
#
# Every line is "seconds since start  what": ">>>" marks what the demo does, "table" the
# kernel's IPVS table whenever it changes (polled every 0.1 s), "log" ldirectord's own log,
# "client" what ten fresh HTTP requests from the client got.
set -euo pipefail
VM_DIR=$(cd "$(dirname "$0")" && pwd)

if [[ ${1:-} != --in-vm ]]; then
  cd "$VM_DIR/../.."
  cargo build --quiet --bin ldirectord
  command -v jq > /dev/null || apt-get install -y -q jq > /dev/null
  target=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)
  export LDIRECTORD_BIN=$target/debug/ldirectord
  exec "$VM_DIR/vm.sh" -t 600 bash "$VM_DIR/demo.sh" --in-vm
fi

[[ ${LDIRECTORD_VM:-} == 1 ]] || { echo "demo: run me through tests/vm/demo.sh" >&2; exit 2; }
TOPOLOGY=$VM_DIR/topology.sh
LD=${LDIRECTORD_BIN:?}
WORK=$(mktemp -d /tmp/demo.XXXXXX)
CONF=$WORK/demo.cf
T0=$(date +%s.%N)

stamp() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.2f s", b - a }'; }
say() { echo "$(stamp)  $*"; }
names() { sed 's/10\.0\.0\.11:80/rs1/; s/10\.0\.0\.12:80/rs2/; s/127\.0\.0\.1:80/fallback/'; }
table() {
  ipvsadm -Ln -t "$VIP:80" 2>/dev/null |
    awk '$1 == "->" && $2 != "RemoteAddress:Port" { printf "%s(w%s) ", $2, $4 }' | names
}
client() {
  local line
  line=$($TOPOLOGY requests 10 1)
  say "client   ${line#requests=10 }"
}
wait_table() {  # wait_table REGEX: until the table matches
  local i
  for ((i = 0; i < 300; i++)); do
    [[ $(table) =~ $1 ]] && return 0
    sleep 0.1
  done
  say "demo: timed out waiting for the table to match /$1/"
  return 1
}
cleanup() {
  local status=$?
  set +e
  [[ -n ${WATCH:-} ]] && kill "$WATCH" 2> /dev/null
  [[ -n ${TAIL:-} ]] && kill "$TAIL" 2> /dev/null
  "$LD" "$CONF" stop > /dev/null 2>&1
  $TOPOLOGY down > /dev/null 2>&1
  exit "$status"
}
trap cleanup EXIT

$TOPOLOGY up --mode dr --reals 2 > /dev/null
# shellcheck source=/dev/null
. /run/topology/env
$TOPOLOGY start-http fallback
cat > "$CONF" <<EOF
checkinterval=2
checktimeout=3
logfile="$WORK/ldirectord.log"
quiescent=no
virtual=$VIP:80
	real=10.0.0.11:80 gate
	real=10.0.0.12:80 gate
	fallback=127.0.0.1:80 gate
	service=http
	request="check.txt"
	receive="OK"
	scheduler=rr
EOF
: > "$WORK/ldirectord.log"
echo "director 10.0.0.1, VIP $VIP:80 (direct routing), rs1 10.0.0.11, rs2 10.0.0.12,"
echo "fallback: the director's own web server on 127.0.0.1:80; checks every 2 s, timeout 3 s"
echo

(
  last=
  while true; do
    now=$(table)
    [[ $now != "$last" ]] && say "table    ${now:-(empty)}"
    last=$now
    sleep 0.1
  done
) &
WATCH=$!
tail -n 0 -F "$WORK/ldirectord.log" 2>/dev/null | while IFS= read -r line; do
  say "log      ${line#*] }"
done &
TAIL=$!

say ">>> ldirectord $CONF start"
"$LD" "$CONF" start
wait_table 'rs1.*rs2|rs2.*rs1'
client

say ">>> rs1: stop its web server"
$TOPOLOGY stop-http rs1
wait_table '^rs2\(w1\) $'
client

say ">>> rs2: stop its web server too"
$TOPOLOGY stop-http rs2
wait_table 'fallback'
client

say ">>> rs1: start its web server again"
$TOPOLOGY start-http rs1
wait_table '^rs1\(w1\) $'
client

say ">>> ldirectord status"
"$LD" "$CONF" status 2>&1 | sed 's/^/           /'

$TOPOLOGY start-http rs2
wait_table 'rs1.*rs2|rs2.*rs1'
client
say ">>> ldirectord stop"
"$LD" "$CONF" stop
sleep 0.3
say "done"
