#!/usr/bin/env bash
# Runs both config readers, this ldirectord's (`ldirectord -t`) and the original Perl one
# (perl-ldirectord.sh --check-config), on the same files and reports every file one accepts and
# the other rejects. Each such difference must be listed, with its reason, in
# known-differences.txt; the script fails on an unlisted difference and on a listed one that is
# gone (so the list stays true).
#
#   tests/compat/compare-config.sh [FILE...]    default: examples, invalid and warning corpora,
#                                               tests/compat/cases/
#   LDIRECTORD=path/to/ldirectord               binary to test (default: cargo build, debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/compat
KNOWN=$HERE/known-differences.txt

if [[ -z ${LDIRECTORD:-} ]]; then
  cargo build -q --bin ldirectord
  LDIRECTORD=${CARGO_TARGET_DIR:-target}/debug/ldirectord
fi
"$HERE/perl-ldirectord.sh" --fetch >/dev/null

if [[ $# -gt 0 ]]; then
  files=("$@")
else
  files=(config-examples/*.cf tests/fixtures/invalid/*.cf tests/fixtures/warnings/*.cf "$HERE"/cases/*.cf)
fi

declare -A known=() why=()
while IFS=$'\t' read -r file ours perl reason; do
  [[ -z $file || $file == \#* ]] && continue
  known[$file]="$ours $perl"
  why[$file]=$reason
done <"$KNOWN"

verdict() {
  local rc=0
  "$@" >/dev/null 2>&1 || rc=$?
  case $rc in 0) echo accept ;; 3) echo timeout ;; 1) echo reject ;; *) echo "error($rc)" ;; esac
}

same=0 listed=0 unexpected=0
declare -A seen=()
for f in "${files[@]}"; do
  [[ -f $f ]] || continue
  ours=$(verdict "$LDIRECTORD" -t "$f")
  [[ $ours == timeout ]] && ours="error(3)"
  perl=$(verdict "$HERE/perl-ldirectord.sh" --check-config "$f")
  seen[$f]=1
  if [[ $ours == "$perl" ]]; then
    if [[ -n ${known[$f]:-} ]]; then
      echo "STALE   $f: both ${ours}; remove it from $KNOWN"
      unexpected=$((unexpected + 1))
    else
      same=$((same + 1))
    fi
  elif [[ ${known[$f]:-} == "$ours $perl" ]]; then
    listed=$((listed + 1))
    echo "known   $f: ours: ${ours}, Perl: ${perl} (${why[$f]})"
  else
    unexpected=$((unexpected + 1))
    echo "DIFFER  $f: ours: ${ours}, Perl: ${perl}"
    "$HERE/perl-ldirectord.sh" --check-config "$f" | sed 's/^/          perl: /' || true
    "$LDIRECTORD" -t "$f" 2>&1 | grep -E '^(error|warning):' | sed 's/^/          ours: /' || true
  fi
done
if [[ $# -eq 0 ]]; then
  for f in "${!known[@]}"; do
    [[ -n ${seen[$f]:-} ]] || { echo "STALE   $f: listed in $KNOWN but not found"; unexpected=$((unexpected + 1)); }
  done
fi
echo "compare-config: ${#seen[@]} files: $same agree, $listed known differences, $unexpected unexpected"
[[ $unexpected -eq 0 ]]
