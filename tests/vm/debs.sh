#!/usr/bin/env bash
# debs.sh PKG... — ON THE HOST: fetch the Debian packages PKG and those of their dependencies
# (without recommends) that the host lacks, with apt-get download (never installed), into
# $LDIRECTORD_VM_CACHE/debs/extra/<PKG+PKG…>/, once. Prints that directory. Inside the VM,
# lib.sh's unpack_debs PKG... unpacks them over the throwaway root (the VM's root is the
# host's, so "what the host lacks" is what the VM lacks). PKG! fetches that package alone,
# without its dependencies, and unpack_debs leaves it for the suite (to dpkg -i it).
#
# suite.sh runs it for every selected suite that names packages on a line "# vm-debs: PKG…".
set -euo pipefail
(($#)) || { echo "usage: debs.sh PKG..." >&2; exit 2; }
CACHE=${LDIRECTORD_VM_CACHE:-/var/cache/ldirectord-vm}
name=$(printf '%s\n' "$@" | sort -u | paste -sd+)
dir=$CACHE/debs/extra/$name
if [[ -s $dir/.complete ]]; then echo "$dir"; exit 0; fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.debs.lock"
flock 9
if [[ -s $dir/.complete ]]; then echo "$dir"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
with=() alone=()
for p in "$@"; do
  if [[ $p == *'!' ]]; then alone+=("${p%!}"); else with+=("$p"); fi
done
closure() {
  ((${#with[@]})) || return 0
  apt-get install -s -q --no-install-recommends "${with[@]}" 2>/dev/null | awk '/^Inst / { print $2 }'
}
resolvable() { ((${#with[@]} == 0)) || apt-get install -s -q --no-install-recommends "${with[@]}" > /dev/null 2>&1; }
resolvable || apt-get update -q >&2 || true
resolvable || { echo "debs.sh: apt cannot resolve ${with[*]} on this host" >&2; exit 125; }
mapfile -t pkgs < <(closure)
pkgs+=("${alone[@]}")
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
if ((${#pkgs[@]})); then
  (cd "$dir.tmp" && apt-get download -q -o APT::Sandbox::User=root "${pkgs[@]}") >&2 ||
    { apt-get update -q >&2 && (cd "$dir.tmp" && apt-get download -q -o APT::Sandbox::User=root "${pkgs[@]}") >&2; } ||
    { echo "debs.sh: apt-get download ${pkgs[*]} failed" >&2; exit 125; }
fi
printf '%s\n' "${pkgs[@]}" > "$dir.tmp/.complete"
echo "installed-on-host" >> "$dir.tmp/.complete"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$dir"
