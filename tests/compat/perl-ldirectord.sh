#!/usr/bin/env bash
# Runs the original Perl ldirectord (Debian package `ldirectord`) without installing anything:
# the package and the Perl modules it depends on are fetched once with `apt-get download` and
# unpacked with `dpkg -x` into a cache directory; the host's own perl runs it with PERL5LIB
# pointed there. Used to compare this implementation with the original.
#
#   perl-ldirectord.sh --fetch              fetch and unpack only; prints the unpacked root
#   perl-ldirectord.sh --root               prints the unpacked root (fetching if needed)
#   perl-ldirectord.sh --check-config FILE  run only the Perl config reader on FILE:
#                                           exit 0 = accepted, 1 = rejected (message on stdout),
#                                           2 = could not run, 3 = still reading after
#                                           $LDIRECTORD_PERL_TIMEOUT seconds (default 30)
#   perl-ldirectord.sh ARGS...              run the Perl ldirectord with ARGS
#
# Environment: LDIRECTORD_PERL_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/ldirectord-perl).
# Needs: perl, apt-get (with package lists for a release that has `ldirectord`), dpkg, flock.
set -euo pipefail

CACHE=${LDIRECTORD_PERL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ldirectord-perl}
ROOT=$CACHE/root
DEBS=$CACHE/debs
PERL_LDIRECTORD=$ROOT/usr/sbin/ldirectord

die() { echo "perl-ldirectord: $*" >&2; exit 2; }

# The packages `apt-get install ldirectord` would bring in, minus perl itself (the host's is used).
dependency_list() {
  apt-get install -s --no-install-recommends ldirectord 2>/dev/null |
    awk '/^Inst /{print $2}' |
    grep -vxE 'perl|perl-base|perl-modules-[0-9.]+|libperl[0-9.]+' || true
}

fetch() {
  [[ -x $PERL_LDIRECTORD ]] && return 0
  if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then die "needs apt-get and dpkg"; fi
  mkdir -p "$DEBS"
  exec 9>"$CACHE/.lock"
  flock 9
  [[ -x $PERL_LDIRECTORD ]] && return 0
  local pkgs
  pkgs=$(dependency_list)
  if [[ -z $pkgs ]] && ! dpkg -s ldirectord >/dev/null 2>&1; then
    apt-get update -qq >&2 || true
    pkgs=$(dependency_list)
  fi
  # Installed already on this host: the list is empty, but we still want our own copy.
  [[ -n $pkgs ]] || pkgs=ldirectord
  # shellcheck disable=SC2086
  download() { (cd "$DEBS" && apt-get download -qq $pkgs) 2>&1 | grep -v 'unsandboxed' >&2; return "${PIPESTATUS[0]}"; }
  download || { apt-get update -qq >&2 && download; } || die "apt-get download failed"
  rm -rf "$ROOT.tmp"
  mkdir -p "$ROOT.tmp"
  local deb
  for deb in "$DEBS"/*.deb; do dpkg -x "$deb" "$ROOT.tmp"; done
  [[ -x $ROOT.tmp/usr/sbin/ldirectord ]] || die "no usr/sbin/ldirectord in the fetched packages"
  rm -rf "$ROOT"
  mv "$ROOT.tmp" "$ROOT"
  local debs=("$DEBS"/*.deb)
  echo "perl-ldirectord: unpacked ${#debs[@]} packages into $ROOT" >&2
}

setup_env() {
  command -v perl >/dev/null || die "needs perl"
  local vlib varch
  read -r vlib varch < <(perl -MConfig -e 'print "$Config{vendorlib} $Config{vendorarch}\n"')
  export PERL5LIB=$ROOT$vlib:$ROOT$varch${PERL5LIB:+:$PERL5LIB}
  # Stops the script from re-executing itself to set this.
  export PERLIO=perlio
}

# Runs read_config through `-d FILE status`: with no pid file, `status` parses the file, prints
# "stopped" and exits 3 (1 for a stale pid file); a config error exits 2 before that. `-d` keeps
# it in the foreground, logs to stderr, and lets it use the stub ./ipvsadm of the scratch dir, so
# no ipvsadm is needed.
check_config() {
  local file=$1 scratch out rc
  [[ -f $file ]] || die "no such file: $file"
  file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  printf '#!/bin/sh\nexit 0\n' >"$scratch/ipvsadm"
  chmod +x "$scratch/ipvsadm"
  # A unique config name, so the pid file it looks for (and deletes on error) is never real.
  cp "$file" "$scratch/compat-$$-check.cf"
  rc=0
  # KILL: its TERM handler only sets a flag that the config reader never looks at.
  out=$(cd "$scratch" && timeout -s KILL "${LDIRECTORD_PERL_TIMEOUT:-30}" \
    perl "$PERL_LDIRECTORD" -d "$scratch/compat-$$-check.cf" status 2>&1) || rc=$?
  case $rc in
    137) echo "timeout"; return 3 ;;
    0 | 1 | 3) echo "ok"; return 0 ;;
    2)
      grep -E '^(Error|Warning) ' <<<"$out" | sed "s#$scratch/compat-$$-check.cf#$file#g" || true
      return 1 ;;
    *) echo "$out" >&2; die "perl ldirectord exited $rc on $file" ;;
  esac
}

case ${1:-} in
  --fetch) fetch; echo "$ROOT" ;;
  --root) fetch; echo "$ROOT" ;;
  --check-config)
    [[ $# -eq 2 ]] || die "usage: $0 --check-config FILE"
    fetch; setup_env; check_config "$2" ;;
  *)
    fetch; setup_env
    exec perl "$PERL_LDIRECTORD" "$@" ;;
esac
