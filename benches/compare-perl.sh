#!/usr/bin/env bash
# Per-check CPU cost of the Perl check_http, measured like benches/checks_10k.rs: the same
# loopback server (the bench binary's --server mode), CPU time of the checking loop only.
# Uses the Perl ldirectord's own modules fetched by tests/compat/perl-ldirectord.sh.
#   benches/compare-perl.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
root=$(bash tests/compat/perl-ldirectord.sh --root)
read -r vlib varch < <(perl -MConfig -e 'print "$Config{vendorlib} $Config{vendorarch}\n"')
export PERL5LIB=$root$vlib:$root$varch:$root/usr/share/perl5${PERL5LIB:+:$PERL5LIB}
cargo bench --no-run --bench checks_10k >/dev/null 2>&1
bench=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/checks_10k-* | grep -v '\.d$' | head -1)
coproc SERVER { exec "$bench" --server; }
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
read -r port <&"${SERVER[0]}"
perl benches/perl_check_http.pl "$port" "$N"
