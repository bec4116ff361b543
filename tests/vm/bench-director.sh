#!/usr/bin/env bash
# bench-director.sh — this ldirectord against the Perl one and against ipvsadm -R, in one VM
# run (issue #6, item 8). Timings under TCG emulation: compare within one run only.
#
#   tests/vm/bench-director.sh [-n TRIALS] [--debug]
#
# --debug measures the debug build (no release build needed; slower, so the figures are a
# bound on ours).
# On the host: builds ldirectord in release mode, fetches the Perl ldirectord
# (tests/compat/perl-ldirectord.sh; the VM has no network), boots the VM. Inside:
#   1. start -> fully programmed table, 10 virtuals x 10 live real servers: Perl, then ours
#   2. start -> fully programmed table, 100 x 10: ours, and `ipvsadm -R` of the same table
#   3. a real server's death -> its removal, TRIALS times (default 20), failurecount=1
#   4. idle RSS and CPU time per check cycle with 10 x 10 (ours and Perl)
# and prints a Markdown table of the figures.
set -euo pipefail
VM_DIR=$(cd "$(dirname "$0")" && pwd)
TRIALS=20
PROFILE=release
while (($#)); do
  case $1 in
    -n) TRIALS=$2; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    --in-vm) break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ ${1:-} != --in-vm ]]; then
  cd "$VM_DIR/../.."
  command -v jq > /dev/null || apt-get install -y -q jq > /dev/null
  if [[ $PROFILE == release ]]; then cargo build --release --bin ldirectord; else cargo build --bin ldirectord; fi
  target=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)
  export LDIRECTORD_BIN=$target/$PROFILE/ldirectord BENCH_PROFILE=$PROFILE
  # the VM has no network: fetch the Perl ldirectord here (it is cached under $HOME)
  tests/compat/perl-ldirectord.sh --fetch > /dev/null
  export BENCH_TRIALS=$TRIALS
  exec "$VM_DIR/vm.sh" -t 1500 bash "$VM_DIR/bench-director.sh" --in-vm
fi

[[ ${LDIRECTORD_VM:-} == 1 ]] || { echo "bench: run me through tests/vm/bench-director.sh" >&2; exit 2; }
TOPOLOGY=$VM_DIR/topology.sh
PERL=$VM_DIR/../compat/perl-ldirectord.sh
LD=${LDIRECTORD_BIN:?}
TRIALS=${BENCH_TRIALS:-20}
WORK=$(mktemp -d /tmp/bench.XXXXXX)
INTERVAL=2
RESULTS=()

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
result() { RESULTS+=("| $1 | $2 |"); echo "result: $1: $2"; }

# Live destinations (weight > 0) in the kernel, read without forking: /proc/net/ip_vs lists
# "  -> HEXADDR:PORT Forward Weight ..." per destination.
live_dests() {
  local n=0 line
  local -a f
  while IFS= read -r line; do
    [[ $line == "  -> "[0-9A-F]* ]] || continue
    read -ra f <<< "$line"
    ((f[3] > 0)) && n=$((n + 1))
  done < /proc/net/ip_vs
  echo "$n"
}

# wait_dests N LIMIT: seconds until N live destinations (polling every 10 ms), or "timeout"
wait_dests() {
  local want=$1 limit=$2 t
  t=$(now)
  while (($(live_dests) < want)); do
    if awk -v a="$(elapsed "$t")" -v l="$limit" 'BEGIN { exit !(a > l) }'; then echo timeout; return 1; fi
    sleep 0.01
  done
  elapsed "$t"
}

write_conf() {  # write_conf FILE VIRTUALS REALS LOG
  local file=$1 virtuals=$2 reals=$3 log=$4 v r
  {
    echo "checkinterval=$INTERVAL"
    echo "checktimeout=2"
    echo "failurecount=1"
    echo "quiescent=no"
    echo "logfile=\"$log\""
    for ((v = 1; v <= virtuals; v++)); do
      echo "virtual=$VIP:$((8000 + v))"
      for ((r = 1; r <= reals; r++)); do echo "	real=10.0.0.$((10 + r)):80 gate"; done
      echo "	service=http"
      echo "	request=\"check.txt\""
      echo "	receive=\"OK\""
      echo "	scheduler=wrr"
    done
  } > "$file"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# idle PID NAME: RSS and CPU per check cycle over 5 cycles
idle() {
  local pid=$1 name=$2 c0 c1 hz
  hz=$(getconf CLK_TCK)
  sleep "$INTERVAL"
  c0=$(cpu_ticks "$pid")
  sleep $((INTERVAL * 5))
  c1=$(cpu_ticks "$pid")
  result "$name: idle RSS, 10 x 10" "$(rss_kib "$pid") KiB"
  result "$name: CPU per check cycle (100 checks)" \
    "$(awk -v d=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.1f ms", d * 1000 / hz / 5 }')"
}

$TOPOLOGY up --mode dr --reals 10 > /dev/null
# shellcheck source=/dev/null
. /run/topology/env
trap '$TOPOLOGY down > /dev/null 2>&1 || true' EXIT

# 1. 10 x 10: Perl, then ours
write_conf "$WORK/perl.cf" 10 10 "$WORK/perl.log"
"$PERL" "$WORK/perl.cf" start > "$WORK/perl.out" 2>&1 || { cat "$WORK/perl.out"; exit 1; }
perl_time=$(wait_dests 100 600) || true
result "Perl ldirectord: start -> 10 x 10 programmed" "$perl_time s"
perl_pid=$(cat /var/run/ldirectord.perl.cf.pid)
idle "$perl_pid" "Perl ldirectord"
"$PERL" "$WORK/perl.cf" stop > /dev/null 2>&1 || true
for _ in $(seq 100); do [[ -e /proc/$perl_pid ]] || break; sleep 0.1; done
ipvsadm -C

write_conf "$WORK/ours.cf" 10 10 "$WORK/ours.log"
"$LD" "$WORK/ours.cf" start
ours_time=$(wait_dests 100 60) || true
result "this ldirectord: start -> 10 x 10 programmed" "$ours_time s"
result "speed-up over Perl, 10 x 10" "$(awk -v p="$perl_time" -v o="$ours_time" 'BEGIN { printf "%.0fx", p / o }')"
idle "$(cat /var/run/ldirectord.ours.cf.pid)" "this ldirectord"

# 3. death -> removal, on the running 10 x 10 (rs1 is in all 10 virtuals)
samples=()
for ((i = 1; i <= TRIALS; i++)); do
  $TOPOLOGY stop-http rs1
  t=$(now)
  while grep -q "0A00000B:0050" /proc/net/ip_vs; do sleep 0.01; done
  samples+=("$(elapsed "$t")")
  $TOPOLOGY start-http rs1
  wait_dests 100 30 > /dev/null || { echo "rs1 did not come back"; exit 1; }
  # desynchronise from the check cycle
  sleep "0.$((RANDOM % 10))"
done
printf '%s\n' "${samples[@]}" | sort -n > "$WORK/removal"
p50=$(awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }' "$WORK/removal")
p95=$(awk '{ a[NR] = $1 } END { i = int(NR * 0.95 + 0.999); print a[i] }' "$WORK/removal")
max=$(tail -1 "$WORK/removal")
result "death -> removal, $TRIALS trials, checkinterval $INTERVAL s, failurecount 1" \
  "p50 $p50 s, p95 $p95 s, max $max s (target p95 <= $((INTERVAL)).1 s)"
"$LD" "$WORK/ours.cf" stop
ipvsadm -C

# 2. 100 x 10: ours, then ipvsadm -R of the same table
write_conf "$WORK/big.cf" 100 10 "$WORK/big.log"
"$LD" "$WORK/big.cf" start
big_time=$(wait_dests 1000 120) || true
result "this ldirectord: start -> 100 x 10 programmed" "$big_time s"
ipvsadm -Sn > "$WORK/big.rules"
"$LD" "$WORK/big.cf" stop
ipvsadm -C
t=$(now)
ipvsadm -R < "$WORK/big.rules"
restore_time=$(elapsed "$t")
result "ipvsadm -R of the same 100 x 10 table" "$restore_time s"
result "ratio ours / ipvsadm -R" "$(awk -v o="$big_time" -v r="$restore_time" 'BEGIN { printf "%.2f", o / r }')"
ipvsadm -C

echo
echo "| measure (QEMU TCG, kernel $LDIRECTORD_VM_KERNEL, ${BENCH_PROFILE:-release} build) | value |"
echo "|---|---|"
printf '%s\n' "${RESULTS[@]}"
