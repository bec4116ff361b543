#!/usr/bin/env bash
# suite.sh [--only REGEX] [-t SECONDS] — the real-kernel test suite, in one VM boot.
#
# On the host: builds the ldirectord binary and the kernel test binaries (tests/kernel*.rs)
# with cargo — programs run about 10x slower in the VM —, fetches the Debian packages that
# script suites ask for ("# vm-debs: PKG…", see debs.sh), then boots the VM once (vm.sh) and,
# inside it as root, runs one after the other:
#   * every kernel test binary with --ignored --test-threads=1 --nocapture (their tests are
#     #[ignore]d so that a plain `cargo test` never touches a host's IPVS table);
#   * every script suite tests/vm/suites/*.sh (see lib.sh), and the two-director failover
#     test tests/vm/cluster/failover.sh.
# --only REGEX keeps the items whose name matches. Each item must leave the VM clean (empty
# IPVS table, topology down); one that does not fails. Logs go to <target>/vm-suite/.
# Bounds: 2700 s per item, 3600 s for the whole VM run (-t); an item gets at most what is
# left of the run. An item still there 30 s after its bound (a process stuck in the kernel
# ignores even SIGKILL, and `timeout` would wait for it forever) is reported with what is
# stuck where (processes, kernel stacks, dmesg), and the VM is powered off: the run fails
# with the reason instead of a bare timeout. Process starts are what a
# kernel test pays for under TCG (~70 ms each on an idle host, ~480 ms at host load 20): the
# differential test's 200 tables cost about 25 each (ipvsadm's listings; ours run in-process
# on nine tables in ten), 8-18 s a table at host load ~20 (2026-11-27).
# Prints a summary and "N passed, N failed"; exits non-zero on any failure, and 125 when the VM
# cannot run here.
#
# Environment: LDIRECTORD_VM_* as for vm.sh; CARGO_TARGET_DIR as for cargo.
set -euo pipefail

VM_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$VM_DIR/../.." && pwd)
ONLY=
TIMEOUT=3600
ITEM_TIMEOUT=2700

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------------------ inside the VM
# hung_report NAME: what a hung item left running, and where in the kernel it waits
hung_report() {
  local pid
  echo "HUNG: $1 did not end 30 s after its time limit, even killed; processes:"
  ps -eo pid,ppid,stat,wchan:32,args | awk '!/ \[[^]]*\]$/ { print "    " $0 }'
  for pid in $(ps -eo pid=,stat= | awk '$2 ~ /D/ { print $1 }'); do
    echo "  kernel stack of $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline")):"
    sed 's/^/    /' "/proc/$pid/stack"
  done
  echo "  dmesg (tail):"
  dmesg | tail -n 20 | sed 's/^/    /'
}

in_vm() {
  local results=$1 budget=$2 name item status t log limit watchdog deadline
  local -a names=() statuses=() times=()
  [[ ${LDIRECTORD_VM:-} == 1 ]] || { echo "suite: --in-vm outside the VM" >&2; exit 2; }
  deadline=$(($(date +%s) + budget))
  while IFS=$'\t' read -r name item; do
    log=$results/${name//\//-}.log
    echo
    echo "=== $name"
    t=$(now)
    limit=$((deadline - $(date +%s)))
    ((limit < ITEM_TIMEOUT)) || limit=$ITEM_TIMEOUT
    if ((limit < 10)); then
      echo "NOT RUN: no time left in the VM run (-t)"
      names+=("$name") statuses+=(124) times+=(0)
      continue
    fi
    local -a run=("$item" --ignored --test-threads=1 --nocapture)
    [[ $item == *.sh ]] && run=(bash "$item")
    ( sleep $((limit + 30)) || exit 0  # killed: the item ended in time
      set +e +o pipefail  # (a report cut short by a failed command would skip the power-off)
      hung_report "$name" | tee "$results/hung" >&2
      sync; echo o > /proc/sysrq-trigger ) &
    watchdog=$!
    set +e
    timeout -k 10 "$limit" "${run[@]}" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    # (each may find its process gone already: never an error, under set -e)
    pkill -P "$watchdog" 2>/dev/null || true
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
    ((status == 124 || status == 137)) && echo "TIMEOUT after ${limit} s"
    # what a test leaves behind would make the next one fail for the wrong reason
    if [[ -n $(ipvsadm -Sn) || -e /run/topology || -n $(ipvsadm -L --daemon) ]]; then
      echo "FAIL - $name left IPVS entries, sync daemons or the topology behind; cleaning up:"
      { ipvsadm -Sn; ipvsadm -L --daemon; } | sed 's/^/    | /'
      if [[ -e /run/topology ]]; then "$VM_DIR/topology.sh" down || true; fi
      ipvsadm -C
      ipvsadm --stop-daemon master 2> /dev/null || true
      ipvsadm --stop-daemon backup 2> /dev/null || true
      ((status)) || status=1
    fi
    names+=("$name") statuses+=("$status") times+=("$(since "$t")")
  done < "$results/items"

  local i passed=0 failed=0
  echo
  echo "=== summary (kernel $LDIRECTORD_VM_KERNEL)"
  for i in "${!names[@]}"; do
    if ((statuses[i] == 0)); then
      passed=$((passed + 1)); printf '  pass  %-36s %7s s\n' "${names[i]}" "${times[i]}"
    else
      failed=$((failed + 1)); printf '  FAIL  %-36s %7s s  (status %s, log %s)\n' \
        "${names[i]}" "${times[i]}" "${statuses[i]}" "$results/${names[i]//\//-}.log"
    fi
  done
  echo "vm suite: $passed passed, $failed failed"
  ((failed == 0))
}

if [[ ${1:-} == --in-vm ]]; then in_vm "$2" "$3"; exit; fi

# ------------------------------------------------------------------ on the host
while (($#)); do
  case $1 in
    --only) ONLY=$2; shift 2 ;;
    -t) TIMEOUT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "suite: unknown argument $1" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
command -v jq > /dev/null || { echo "suite: needs jq (apt-get install jq)" >&2; exit 125; }

t0=$(now)
target=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)
results=$target/vm-suite
rm -rf "$results"
mkdir -p "$results"

echo "=== host build (cargo build --bin ldirectord --example ipvs-restore; cargo test --no-run)"
cargo build --bin ldirectord --example ipvs-restore
cargo test --no-run --tests --message-format=json-render-diagnostics > "$results/build.json"
{
  jq -r 'select(.reason == "compiler-artifact" and .executable != null
                and (.target.kind | index("test")) and (.target.name | startswith("kernel")))
         | [.target.name, .executable] | @tsv' "$results/build.json" | sort
  for s in "$VM_DIR"/suites/*.sh "$VM_DIR"/cluster/failover.sh; do
    printf '%s/%s\t%s\n' "$(basename "$(dirname "$s")")" "${s##*/}" "$s"
  done
} | awk -F'\t' -v only="$ONLY" 'only == "" || $1 ~ only' > "$results/items"
rm -f "$results/build.json"
[[ -s $results/items ]] || { echo "suite: nothing matches --only '$ONLY'" >&2; exit 2; }
# Debian packages a script suite runs in the VM ("# vm-debs: PKG…"), fetched here: the VM has
# no network.
while IFS=$'\t' read -r name item; do
  [[ $item == *.sh ]] || continue
  read -ra debs <<< "$(sed -n 's/^# vm-debs: //p' "$item")"
  ((${#debs[@]})) || continue
  echo "=== $name needs ${debs[*]}: $("$VM_DIR/debs.sh" "${debs[@]}")"
done < "$results/items"
echo "host build: $(since "$t0") s; $(wc -l < "$results/items") items: $(cut -f1 "$results/items" | tr '\n' ' ')"

export LDIRECTORD_BIN LDIRECTORD_VM_RESULTS
LDIRECTORD_BIN=$target/debug/ldirectord
LDIRECTORD_VM_RESULTS=$results  # shared with the VM: suites may leave logs there
t1=$(now)
status=0
# the items share what is left of the run after the boot, with a minute to spare for the
# report and the power-off
"$VM_DIR/vm.sh" -w "$results" -t "$TIMEOUT" \
  bash "$VM_DIR/suite.sh" --in-vm "$results" $((TIMEOUT - 90)) || status=$?
echo "vm suite: $(since "$t1") s in the VM, $(since "$t0") s in all"
if [[ -s $results/hung ]]; then
  echo "vm suite: FAILED: an item outlived its time limit even killed (stuck in the kernel, or a process of it holding its output open); the VM was powered off (report above)" >&2
  status=1
fi
exit "$status"
