#!/usr/bin/env bash
# bench-ipvs.sh [-r REPEATS] — our netlink client against ipvsadm, in one VM run, same tables.
#
#   program  1,000 services x 10 real servers into an empty table, then delete them:
#            examples/ipvs-restore (the library's client) vs ipvsadm -R, fed the same rules
#   list     a table of 100,000 real servers (1,000 x 100): ldirectord list -n vs ipvsadm -Ln
#
# Release builds on the host; every figure is a whole process (start, work, exit) timed
# inside the VM, REPEATS times (default 5), the two tools alternating. Prints median, min and
# max per tool and the ratio of medians, and checks the targets: ours <= 0.5x ipvsadm to
# program, <= 1.0x to list. Exit status 1 when a target is missed or a tool misbehaves
# (wrong table, different listing), 125 when the VM cannot run.
# Under TCG everything is ~10x slower than on the host: the ratios are what to read.
set -euo pipefail

VM_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$VM_DIR/../.." && pwd)
REPEATS=5
SERVICES=1000 REALS=10 LIST_SERVICES=1000 LIST_REALS=100

now_ns() { date +%s%N; }

# rules for N services x M real servers (TCP, 10.1.x.y:80, masquerading, distinct ports)
rules() {
  awk -v n="$1" -v m="$2" 'BEGIN {
    for (s = 0; s < n; s++) {
      vip = sprintf("10.1.%d.%d:80", int(s / 250), s % 250 + 1)
      printf "-A -t %s -s wlc\n", vip
      for (r = 0; r < m; r++)
        printf "-a -t %s -r 10.2.%d.%d:%d -m -w %d\n", vip, int(r / 250), r % 250 + 1, 8000 + s % 1000, r % 5 + 1
    }
  }'
}

# ------------------------------------------------------------------ inside the VM
in_vm() {
  local dir=$1 restore=$2 ours=$3 i
  [[ ${LDIRECTORD_VM:-} == 1 ]] || { echo "bench: --in-vm outside the VM" >&2; exit 2; }
  local failed=0 ; local -A samples=()
  timed() {  # NAME CMD...: appends seconds to samples[NAME]
    local name=$1 t
    shift
    t=$(now_ns)
    "$@"
    samples[$name]+="$(( ($(now_ns) - t) / 1000 )) "
  }
  must_have() {  # LINES WHAT: the table must have that many lines in ipvsadm -Sn
    local n
    n=$(ipvsadm -Sn | wc -l)
    ((n == $1)) || { echo "bench: FAIL: $2 left $n rules, expected $1" >&2; failed=1; }
  }
  ipvsadm -C
  for ((i = 1; i <= REPEATS; i++)); do
    local order=(ipvsadm ours)
    ((i % 2 == 0)) && order=(ours ipvsadm)
    for tool in "${order[@]}"; do
      if [[ $tool == ipvsadm ]]; then
        timed "program ipvsadm" ipvsadm -R < "$dir/add.rules"
        must_have $((SERVICES * (REALS + 1))) "ipvsadm -R"
        timed "delete ipvsadm" ipvsadm -R < "$dir/delete.rules"
      else
        timed "program ours" "$restore" < "$dir/add.rules"
        must_have $((SERVICES * (REALS + 1))) "ipvs-restore"
        timed "delete ours" "$restore" < "$dir/delete.rules"
      fi
      must_have 0 "deleting with $tool"
    done
  done

  "$restore" < "$dir/list.rules"
  must_have $((LIST_SERVICES * (LIST_REALS + 1))) "ipvs-restore (listing table)"
  ipvsadm -Ln > "$dir/ipvsadm.out"
  if ! "$ours" list -n > "$dir/ours.out"; then
    echo "bench: FAIL: ldirectord list -n failed" >&2; failed=1
  elif ! cmp -s "$dir/ipvsadm.out" "$dir/ours.out"; then
    echo "bench: FAIL: ldirectord list -n differs from ipvsadm -Ln" >&2; failed=1
  fi
  for ((i = 1; i <= REPEATS; i++)); do
    if ((i % 2)); then
      timed "list ipvsadm" ipvsadm -Ln > /dev/null
      timed "list ours" "$ours" list -n > /dev/null || true
    else
      timed "list ours" "$ours" list -n > /dev/null || true
      timed "list ipvsadm" ipvsadm -Ln > /dev/null
    fi
  done
  ipvsadm -C

  local name
  for name in "${!samples[@]}"; do echo "$name ${samples[$name]}"; done > "$dir/samples"
  ((failed == 0))
}

if [[ ${1:-} == --in-vm ]]; then
  REPEATS=$5
  in_vm "$2" "$3" "$4"
  exit
fi

# ------------------------------------------------------------------ on the host
while (($#)); do
  case $1 in
    -r) REPEATS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
echo "=== release build on the host"
cargo build --release --bin ldirectord --example ipvs-restore
target=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)
dir=$target/vm-bench
rm -rf "$dir"
mkdir -p "$dir"
rules "$SERVICES" "$REALS" > "$dir/add.rules"
grep '^-A' "$dir/add.rules" | sed 's/^-A \(-t [^ ]*\).*/-D \1/' > "$dir/delete.rules"
rules "$LIST_SERVICES" "$LIST_REALS" > "$dir/list.rules"

status=0
"$VM_DIR/vm.sh" -w "$dir" -t 3600 bash "$VM_DIR/bench-ipvs.sh" --in-vm "$dir" \
  "$target/release/examples/ipvs-restore" "$target/release/ldirectord" "$REPEATS" || status=$?
[[ -s $dir/samples ]] || { echo "bench: no figures (VM status $status)"; exit "$status"; }

# median, min, max in ms of each figure; ratio of medians; targets
awk -v repeats="$REPEATS" '
  { n = 0; for (i = 3; i <= NF; i++) v[n++] = $i / 1000
    for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    key = $1 " " $2
    med[key] = n % 2 ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2; lo[key] = v[0]; hi[key] = v[n - 1] }
  END {
    printf "\n%-9s %-8s %10s %10s %10s   (ms, %d runs each, inside the VM)\n", "task", "tool", "median", "min", "max", repeats
    split("program delete list", tasks, " ")
    for (t = 1; t <= 3; t++) for (k = 1; k <= 2; k++) {
      tool = k == 1 ? "ipvsadm" : "ours"; key = tasks[t] " " tool
      if (key in med) printf "%-9s %-8s %10.1f %10.1f %10.1f\n", tasks[t], tool, med[key], lo[key], hi[key]
    }
    bad = 0
    split("program:0.5 delete:0.5 list:1.0", goals, " ")
    print ""
    for (g = 1; g <= 3; g++) {
      split(goals[g], p, ":"); a = med[p[1] " ours"]; b = med[p[1] " ipvsadm"]
      if (b <= 0) continue
      ok = a / b <= p[2]
      printf "%-9s ours/ipvsadm = %.2f (target <= %.1f)  %s\n", p[1], a / b, p[2], ok ? "met" : "MISSED"
      if (!ok) bad = 1
    }
    exit bad
  }' "$dir/samples" || status=1
exit "$status"
