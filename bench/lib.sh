# shellcheck shell=bash
# Helpers shared by the benchmarks that run in the IPVS VM: bench/compare and
# tests/vm/bench-director.sh. Source it; it defines functions only.
#
# Times are wall-clock Unix seconds with microseconds ($EPOCHREALTIME: no fork, which costs
# about 70 ms under TCG emulation).

now() { printf '%s\n' "$EPOCHREALTIME"; }
# seconds since $1 (a `now`), 3 decimals
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'; }
# $2 - $1, 3 decimals
span() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
# true when $1 > $2 (decimals)
greater() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
# sleep a random time in [0, $1) seconds, to desynchronise from a check cycle
sleep_random() { sleep "$(awk -v m="$1" -v r="$RANDOM" 'BEGIN { printf "%.3f", m * r / 32768 }')"; }

# Live destinations (weight > 0) in the kernel, read without forking: /proc/net/ip_vs lists
# "  -> HEXADDR:PORT Forward Weight ..." per destination. For small tables; large ones are
# counted by compare_tool over netlink.
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
    if greater "$(elapsed "$t")" "$limit"; then echo timeout; return 1; fi
    sleep 0.01
  done
  elapsed "$t"
}

# CPU time of a process and its reaped children, in clock ticks (stat fields 14-17)
cpu_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
clock_hz() { getconf CLK_TCK; }
# resident set now and its peak (VmHWM), KiB
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
peak_rss_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# percentile P FILE: the P-th percentile (nearest rank) of the numbers in FILE, one a line
percentile() {
  sort -g "$2" | awk -v p="$1" '{ a[NR] = $1 } END { if (NR == 0) exit 1; i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print a[i] }'
}
