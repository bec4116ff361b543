#!/usr/bin/env bash
# Runs both health checkers, this ldirectord's (`ldirectord check`) and the original Perl one
# (its own check functions, through perl-checks.pl), against the same loopback servers
# (examples/check-servers.rs: the fakes of the check tests) with the same configuration, and
# reports every case where the verdicts (up/down) differ. Each such difference must be listed,
# with its reason, in checks/known-differences.txt; the script fails on an unlisted difference
# and on a listed one that is gone (so the list stays true).
#
#   tests/compat/compare-checks.sh [CASE...]    default: every case in checks/cases.txt
#   LDIRECTORD=path/to/ldirectord               binary to test (default: cargo build, debug)
#   PERL_CHECKS_DEBUG=3                         also print the Perl checks' debug log
#
# Both run with SSL_CERT_FILE pointing at the test CA (tests/fixtures/tls/ca.pem), which
# stands in for the system roots: the Perl checks (IO::Socket::SSL) and ours (rustls with the
# native roots) both read it. Only loopback addresses are used (127.0.0.1, 127.0.0.2, ::1).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/compat
CASES=$HERE/checks/cases.txt
KNOWN=$HERE/checks/known-differences.txt
TARGET=${CARGO_TARGET_DIR:-target}

if [[ -z ${LDIRECTORD:-} ]]; then
  cargo build -q --bin ldirectord
  LDIRECTORD=$TARGET/debug/ldirectord
fi
cargo build -q --example check-servers
SERVERS=$TARGET/debug/examples/check-servers

root=$("$HERE/perl-ldirectord.sh" --root)
read -r vlib varch < <(perl -MConfig -e 'print "$Config{vendorlib} $Config{vendorarch}\n"')
export PERL5LIB=$root$vlib:$root$varch${PERL5LIB:+:$PERL5LIB}
export PERLIO=perlio
SSL_CERT_FILE=$(pwd)/tests/fixtures/tls/ca.pem
export SSL_CERT_FILE
unset SSL_CERT_DIR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

scratch=$(mktemp -d)
coproc SERVER { exec "$SERVERS"; }
# shellcheck disable=SC2153 # set by coproc
server_pid=$SERVER_PID
# Closing the server's stdin ends it; kill it too in case it is stuck.
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT

declare -A addr=()
while read -r name address <&"${SERVER[0]}"; do
  [[ $name == ready ]] && break
  addr[$name]=$address
done
[[ -n ${addr[http]:-} ]] || { echo "compare-checks: check-servers did not start" >&2; exit 2; }

printf '#!/bin/sh\nexit 0\n' >"$scratch/true.sh"
printf '#!/bin/sh\nexit 1\n' >"$scratch/false.sh"
chmod +x "$scratch/true.sh" "$scratch/false.sh"
printf 'exit 0;\n' >"$scratch/up.pl"
printf 'exit 1;\n' >"$scratch/down.pl"

# One virtual service per case, told apart by its port.
cf=$scratch/compare-checks.cf
printf 'checktimeout=3\nnegotiatetimeout=3\nquiescent=no\n' >"$cf"
declare -A case_port=() case_server=()
order=()
port=20000
while IFS=$'\t' read -r name server directives; do
  [[ -z $name || $name == \#* ]] && continue
  if [[ $# -gt 0 ]] && ! printf '%s\n' "$@" | grep -qxF "$name"; then continue; fi
  port=$((port + 1))
  order+=("$name")
  case_server[$name]=$server
  real=${addr[$server]:-}
  if [[ -z $real ]]; then
    echo "skipped $name: no $server server here"
    continue
  fi
  case_port[$name]=$port
  v=virtual vip=127.0.0.1 r=real
  [[ $real == \[* ]] && v=virtual6 vip='[::1]' r=real6
  directives=${directives//@DIR@/$scratch}
  while [[ $directives =~ @PORT:([a-z0-9-]+)@ ]]; do
    target=${addr[${BASH_REMATCH[1]}]}
    directives=${directives//"${BASH_REMATCH[0]}"/${target##*:}}
  done
  printf '%s=%s:%d\n\t%s=%s masq\n' "$v" "$vip" "$port" "$r" "$real" >>"$cf"
  printf '%s\n' "$directives" | tr ';' '\n' | sed 's/^ */\t/' >>"$cf"
done <"$CASES"

# Both at once: they check the same servers, and neither depends on the other's timing.
start=$SECONDS
timeout -s KILL 600 perl "$HERE/perl-checks.pl" "$root/usr/sbin/ldirectord" "$cf" \
  3>"$scratch/perl.out" >"$scratch/perl.stdout" 2>"$scratch/perl.stderr" &
perl_pid=$!
ours_rc=0
"$LDIRECTORD" check "$cf" >"$scratch/ours.out" 2>"$scratch/ours.stderr" || ours_rc=$?
ours_time=$((SECONDS - start))
perl_rc=0
wait "$perl_pid" || perl_rc=$?
perl_time=$((SECONDS - start))
if [[ $ours_rc -gt 1 ]]; then
  cat "$scratch/ours.stderr" >&2
  echo "compare-checks: ldirectord check exited $ours_rc" >&2
  exit 2
fi
if [[ $perl_rc -ne 0 ]]; then
  tail -20 "$scratch/perl.stderr" >&2
  echo "compare-checks: the Perl checks exited $perl_rc" >&2
  exit 2
fi

# PERL_CHECKS_DEBUG=3 makes the Perl side log what it does (ld_debug); show it.
[[ -z ${PERL_CHECKS_DEBUG:-} ]] || cat "$scratch/perl.stderr" "$scratch/perl.stdout"
declare -A ours=() ours_why=() perl=() perl_why=()
# VIRTUAL REAL CHECK VERDICT LATENCY(2 words) REASON...; the check name may have blanks.
while read -r line; do
  read -ra f <<<"$line"
  [[ ${f[0]} == VIRTUAL ]] && continue
  vport=${f[0]##*:}
  for ((i = 2; i < ${#f[@]}; i++)); do
    case ${f[i]} in up | down | skipped | invalid) break ;; esac
  done
  ours[$vport]=${f[i]:-?}
  ours_why[$vport]=${f[*]:i+3}
done <"$scratch/ours.out"
while IFS=$'\t' read -r vport _ verdict note; do
  perl[$vport]=$verdict
  perl_why[$vport]=$note
done <"$scratch/perl.out"

declare -A known=() why=()
while IFS=$'\t' read -r name o p reason; do
  [[ -z $name || $name == \#* ]] && continue
  known[$name]="$o $p"
  why[$name]=$reason
done <"$KNOWN"

same=0 listed=0 unexpected=0 compared=0
for name in "${order[@]}"; do
  vport=${case_port[$name]:-}
  [[ -n $vport ]] || continue
  compared=$((compared + 1))
  o=${ours[$vport]:-missing} p=${perl[$vport]:-missing}
  if [[ $o == "$p" ]]; then
    if [[ -n ${known[$name]:-} ]]; then
      echo "STALE   $name: both ${o}; remove it from $KNOWN"
      unexpected=$((unexpected + 1))
    else
      same=$((same + 1))
      printf 'alike   %-32s %s\n' "$name" "$o"
    fi
  elif [[ ${known[$name]:-} == "$o $p" ]]; then
    listed=$((listed + 1))
    printf 'known   %-32s ours: %s, Perl: %s (%s)\n' "$name" "$o" "$p" "${why[$name]}"
  else
    unexpected=$((unexpected + 1))
    printf 'DIFFER  %-32s ours: %s, Perl: %s\n' "$name" "$o" "$p"
    echo "          ours: ${ours_why[$vport]:-}"
    echo "          perl: ${perl_why[$vport]:-}"
  fi
done
if [[ $# -eq 0 ]]; then
  for name in "${!known[@]}"; do
    [[ -n ${case_port[$name]:-} || -n ${case_server[$name]:-} ]] ||
      { echo "STALE   $name: listed in $KNOWN but not a case"; unexpected=$((unexpected + 1)); }
  done
fi
echo "compare-checks: $compared cases: $same alike, $listed known differences, $unexpected unexpected" \
  "(ours ${ours_time}s, Perl ${perl_time}s wall)"
[[ $unexpected -eq 0 ]]
