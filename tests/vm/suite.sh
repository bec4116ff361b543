#!/usr/bin/env bash
# suite.sh [--only REGEX] [-t SECONDS] — the real-kernel test suite, in one VM boot.
#
# On the host: builds the ldirectord binary and the kernel test binaries (tests/kernel*.rs)
# with cargo — programs run about 10x slower in the VM —, fetches the Debian packages that
# script suites ask for ("# vm-debs: PKG…", see debs.sh), then boots the VM once (vm.sh) and,
# inside it as root, runs one after the other:
#   * every kernel test binary with --ignored --test-threads=1 --nocapture (their tests are
#     #[ignore]d so that a plain `cargo test` never touches a host's IPVS table);
#   * every script suite tests/vm/suites/*.sh (see lib.sh).
# --only REGEX keeps the items whose name matches. Each item must leave the VM clean (empty
# IPVS table, topology down); one that does not fails. Logs go to <target>/vm-suite/.
# Bounds: 2700 s per item, 3600 s for the whole VM run (-t). Process starts are what a
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
in_vm() {
  local results=$1 name item status t log
  local -a names=() statuses=() times=()
  [[ ${LDIRECTORD_VM:-} == 1 ]] || { echo "suite: --in-vm outside the VM" >&2; exit 2; }
  while IFS=$'\t' read -r name item; do
    log=$results/${name//\//-}.log
    echo
    echo "=== $name"
    t=$(now)
    local -a run=("$item" --ignored --test-threads=1 --nocapture)
    [[ $item == *.sh ]] && run=(bash "$item")
    set +e
    timeout "$ITEM_TIMEOUT" "${run[@]}" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    ((status == 124)) && echo "TIMEOUT after ${ITEM_TIMEOUT} s"
    # what a test leaves behind would make the next one fail for the wrong reason
    if [[ -n $(ipvsadm -Sn) || -e /run/topology ]]; then
      echo "FAIL - $name left IPVS entries or the topology behind; cleaning up:"
      ipvsadm -Sn | sed 's/^/    | /'
      if [[ -e /run/topology ]]; then "$VM_DIR/topology.sh" down || true; fi
      ipvsadm -C
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

if [[ ${1:-} == --in-vm ]]; then in_vm "$2"; exit; fi

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
  for s in "$VM_DIR"/suites/*.sh; do printf 'suites/%s\t%s\n' "${s##*/}" "$s"; done
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
"$VM_DIR/vm.sh" -w "$results" -t "$TIMEOUT" bash "$VM_DIR/suite.sh" --in-vm "$results" || status=$?
echo "vm suite: $(since "$t1") s in the VM, $(since "$t0") s in all"
exit "$status"
