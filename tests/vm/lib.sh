# shellcheck shell=bash
# lib.sh — helpers for script suites (tests/vm/suites/*.sh), sourced inside the test VM.
#
#   check "what must hold" CMD [ARG]...   runs CMD; prints "ok - …" or "FAIL - …" with CMD's
#                                         output, and counts
#   expect_eq "what" EXPECTED ACTUAL      string comparison, diff on failure
#   finish                                prints "N passed, N failed"; exit status 1 on any failure
#   unpack_debs PKG...                    unpacks what debs.sh fetched for PKG… (the suite's
#                                         "# vm-debs:" line) over the VM's throwaway root,
#                                         except the PKG! ones; debs_dir PKG... is where
#
# Suites run as root in the VM, one after the other; each leaves the VM as it found it
# (topology down, IPVS table empty): the runner checks.
set -euo pipefail
[[ ${LDIRECTORD_VM:-} == 1 ]] || { echo "${0##*/}: run me through tests/vm/suite.sh, inside the VM" >&2; exit 2; }

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034  # for the suites
TOPOLOGY=$VM_DIR/topology.sh
PASSED=0 FAILED=0

check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    PASSED=$((PASSED + 1)); echo "ok - $what"
  else
    FAILED=$((FAILED + 1)); echo "FAIL - $what"
    echo "    \$ $*"
    sed 's/^/    | /' <<< "$out"
  fi
}

expect_eq() {
  local what=$1 expected=$2 actual=$3
  if [[ $expected == "$actual" ]]; then
    PASSED=$((PASSED + 1)); echo "ok - $what"
  else
    FAILED=$((FAILED + 1)); echo "FAIL - $what"
    diff <(echo "$expected") <(echo "$actual") | sed 's/^/    | /' || true
  fi
}

debs_dir() {  # PKG...: where debs.sh put them
  local name
  name=$(printf '%s\n' "$@" | sort -u | paste -sd+)
  echo "${LDIRECTORD_VM_CACHE:-/var/cache/ldirectord-vm}/debs/extra/$name"
}

unpack_debs() {
  local dir deb p skip
  dir=$(debs_dir "$@")
  [[ -s $dir/.complete ]] || { echo "unpack_debs: $dir missing (suite.sh fetches it: # vm-debs: $*)" >&2; return 1; }
  for deb in "$dir"/*.deb; do
    [[ -e $deb ]] || continue
    skip=0
    for p in "$@"; do [[ $p == *'!' && ${deb##*/} == "${p%!}"_* ]] && skip=1; done
    ((skip)) && continue
    # --keep-directory-symlink: /lib, /bin, /sbin are symlinks into /usr (merged /usr)
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C / || return 1
  done
  ldconfig
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  ((FAILED == 0))
}
