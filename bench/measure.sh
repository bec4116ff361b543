#!/usr/bin/env bash
# bench/measure.sh — the measuring half of bench/compare, run inside the IPVS VM by it (its
# environment, BENCH_*, comes from there). Appends one line per figure to
# $BENCH_RUN/results.tsv:  MEASURE <tab> SYSTEM <tab> N <tab> VALUE
# where VALUE is a number (seconds, KiB, count), "cap:S" (did not finish within S seconds;
# "cap:S:live:K" with K destinations live by then, "cap:S:notrun:M[:T]" not run because
# size M took longer or took T s), "skip:budget" (no time left for it)
# or "fail:WHY". Logs of every daemon go to $BENCH_RUN/logs.
#
# The real servers: one namespace `reals` behind a veth pair; 10.64.0.0/14 is a local route
# there (every address in it is the namespace's own), and ONE process, compare_tool serve,
# answers HTTP on port 80 for all of them. A real server "dies" when that process resets its
# address's connections (/__dead/IP); a black hole is a tc u32 filter on the namespace's
# ingress that drops every packet to real 0 of each virtual (addresses ending in hex 1).
set -euo pipefail
[[ ${LDIRECTORD_VM:-} == 1 ]] || { echo "measure: runs in the VM, through bench/compare" >&2; exit 2; }
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
RUN=${BENCH_RUN:?} LD=${LDIRECTORD_BIN:?} TOOL=${COMPARE_TOOL:?}
PERL=${BENCH_ROOT:?}/tests/compat/perl-ldirectord.sh
CONF=$RUN/conf LOGS=$RUN/logs RESULTS=$RUN/results.tsv
CAP=${BENCH_PERL_CAP:-600} REPEATS=${BENCH_REPEATS:-3} PERL_REPEATS=${BENCH_PERL_REPEATS:-3}
INTERVAL=${BENCH_CHECKINTERVAL:-5}
# Our own limit: far above any expected figure, so that a hang fails instead of blocking.
OURS_CAP=${BENCH_OURS_CAP:-1800}
# The whole measuring ends within BENCH_BUDGET seconds (0: no limit), counted here (the
# guest's clock, not the host's): every measurement that would start too late is recorded
# as "skip:budget" and the caps shrink to what is left, so the VM always comes back with
# what was measured.
DEADLINE=0
((${BENCH_BUDGET:-0} > 0)) && DEADLINE=$((EPOCHSECONDS + BENCH_BUDGET))
RESERVE=20
CTL=http://172.30.0.2
WORK=/tmp/bench
mkdir -p "$WORK"

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"; say "result: $1 $2 N=$3: $4"; }
ctl() { curl -fsS --max-time 10 "$CTL/$1"; }

# seconds left before the deadline (minus a reserve for stopping and clearing)
left() { if ((DEADLINE)); then echo $((DEADLINE - EPOCHSECONDS - RESERVE)); else echo 999999; fi; }
# have_time S: true when at least S seconds are left
have_time() { (($(left) >= $1)); }
# capped LIMIT: LIMIT, or what is left of the run when that is less (at least 1)
capped() { local l; l=$(left); ((l < $1)) && { ((l > 1)) && echo "$l" || echo 1; } || echo "$1"; }

{
  printf 'vm_cpu\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  printf 'vm_kernel_uname\t%s\n' "$(uname -r)"
  printf 'ipvsadm_version\t%s\n' "$(ipvsadm --version 2>&1 | head -1)"
  printf 'ldirectord_version\t%s\n' "$("$LD" --version 2>&1 | head -1)"
} >> "$RUN/meta.tsv"

# --- the real servers --------------------------------------------------------------------
reals_up() {
  # A director checking 10,000 reals every 5 s opens 2,000 connections a second, and each
  # stays 60 s in TIME_WAIT on the director: with the default port range (28,232 ports) and
  # no TIME_WAIT reuse, connect() ends up scanning a nearly full range inside the kernel. A
  # full run without these settings soft-locked both vCPUs there for 15 minutes after the
  # N = 10,000 session (ours and Perl make the same connections; a director of that size
  # needs the same two settings).
  sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
  ip netns add reals
  ip link add bench0 type veth peer name bench1
  ip link set bench1 netns reals
  ip addr add 172.30.0.1/30 dev bench0
  ip link set bench0 up
  ip -n reals link set lo up
  ip -n reals addr add 172.30.0.2/30 dev bench1
  ip -n reals link set bench1 up
  ip -n reals route add local 10.64.0.0/14 dev lo
  ip route add 10.64.0.0/14 via 172.30.0.2
  ip netns exec reals "$TOOL" serve 0.0.0.0:80 > "$LOGS/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do ctl __stats > /dev/null 2>&1 && return 0; sleep 0.1; done
  echo "measure: the reals' server did not come up" >&2
  return 1
}
black_holes() {  # on | off
  if [[ $1 == on ]]; then
    ip netns exec reals tc qdisc add dev bench1 ingress
    ip netns exec reals tc filter add dev bench1 parent ffff: protocol ip prio 1 u32 \
      match ip dst 10.64.0.0/14 match u32 0x00000001 0x0000000f at 16 action drop
  else
    ip netns exec reals tc qdisc del dev bench1 ingress
  fi
}
requests() { ctl __stats | awk '$1 == "requests" { print $2 }'; }

# address of real r of virtual v, and its service
real_addr() { local o=$((16 * $1 + $2 + 1)); echo "10.$((64 + o / 65536)).$((o / 256 % 256)).$((o % 256))"; }
service_of() { echo "tcp:192.0.2.1:$((10001 + $1))"; }

# --- starting and stopping the three systems ---------------------------------------------
pid_of() { cat "/var/run/ldirectord.$1.pid" 2> /dev/null; }

# start SYSTEM N LIMIT [LIVE]: starts SYSTEM (ours, perl) with its N config; prints the
# seconds until LIVE (default N) destinations are live, or cap:LIMIT. The poller runs from
# before the start.
start() {
  local sys=$1 n=$2 limit=$3 live=${4:-$2} cf=$CONF/$1-$2.cf t0 t1 w
  rm -f "$WORK/$sys-$n.log"
  "$TOOL" wait-live "$live" "$limit" > "$WORK/wait" &
  w=$!
  t0=$(now)
  case $sys in
    ours) "$LD" "$cf" start >> "$LOGS/ours-start.out" 2>&1 ||
            { kill "$w" 2> /dev/null; wait "$w" || true; echo "fail:start"; return 0; } ;;
    perl) "$PERL" "$cf" start >> "$LOGS/perl-start.out" 2>&1 ||
            { kill "$w" 2> /dev/null; wait "$w" || true; echo "fail:start"; return 0; } ;;
  esac
  wait "$w" || true
  t1=$(< "$WORK/wait")
  # over the cap: how far it got is part of the figure ("cap:S:live:K")
  if [[ $t1 == timeout* ]]; then echo "cap:$limit:live:${t1#timeout }"; else span "$t0" "$t1"; fi
}

# stop SYSTEM N: stops it and empties the table (neither is measured)
stop() {
  local sys=$1 n=$2 cf=$CONF/$1-$2.cf pid
  pid=$(pid_of "$sys-$n.cf") || true
  case $sys in
    ours) "$LD" "$cf" stop > /dev/null 2>&1 || { [[ -n $pid ]] && kill -9 "$pid" 2> /dev/null; } ;;
    # The Perl stop purges every real with one ipvsadm process each: minutes at large N.
    perl) if [[ -n $pid ]]; then
            kill -9 "$pid" 2> /dev/null || true
            pkill -9 -P "$pid" 2> /dev/null || true
          fi
          rm -f "/var/run/ldirectord.$sys-$n.cf.pid" ;;
  esac
  ipvsadm -C
  [[ -e $WORK/$sys-$n.log ]] && cp "$WORK/$sys-$n.log" "$LOGS/$sys-$n.$(date +%s).log"
  return 0
}

restore() {  # restore N: ipvsadm -R of the N table; prints its seconds
  local n=$1 t0 took live
  t0=$(now)
  ipvsadm -R < "$CONF/ipvsadm-$n.rules"
  took=$(elapsed "$t0")
  live=$("$TOOL" live)
  if ((live == n)); then echo "$took"; else echo "fail:$live-of-$n-live"; fi
}

# --- 1. cold start to a fully programmed table -------------------------------------------
# starts SIZES FIRST LAST: repeats FIRST..LAST of ours, `ipvsadm -R` and the Perl ldirectord
# at each size. The main program calls it several times, cheap sizes first, so that a run
# cut by its time budget has every size once before any is repeated. At BENCH_SESSION_N the
# first start of ours is a session's (below). The Perl ldirectord repeats only PERL_REPEATS
# times and stops at the first size over its cap; a size is not run either when the previous
# one took more than a tenth of the cap (its checks run one real after another, so ten times
# the reals take ten times as long at least).
PERL_OVER="" PERL_PREV=""
starts() {
  local sizes=$1 first=$2 last=$3 n i v
  for ((i = first; i <= last; i++)); do
    for n in $sizes; do
      if ! have_time 30; then record start ours "$n" skip:budget; continue; fi
      say "start: N=$n, repeat $i"
      if ((i == 1 && n == BENCH_SESSION_N)); then
        session ours "$n" $((INTERVAL * 4)) "$BENCH_SESSION_TRIALS" as-start
      else
        v=$(start ours "$n" "$(capped "$OURS_CAP")"); stop ours "$n"; record start ours "$n" "$v"
      fi
      v=$(restore "$n"); ipvsadm -C; record start ipvsadm "$n" "$v"
      [[ " $BENCH_PERL_SIZES " == *" $n "* ]] || continue
      if [[ -n $PERL_OVER ]]; then
        # (an if, not `&&`: a false test as the loop's last command made starts return 1,
        # which ended the run under set -e once a Perl start had hit its cap)
        if ((i == 1)); then record start perl "$n" "cap:$CAP:notrun:$PERL_OVER"; fi
      elif ((i == 1)) && [[ -n $PERL_PREV ]] && greater "$(awk -v p="${PERL_PREV#*:}" 'BEGIN { print p * 10 }')" "$CAP"; then
        PERL_OVER=$PERL_PREV
        record start perl "$n" "cap:$CAP:notrun:$PERL_OVER"
      elif ((i <= PERL_REPEATS)) && have_time 60; then
        v=$(start perl "$n" "$(capped "$CAP")"); stop perl "$n"; record start perl "$n" "$v"
        if [[ $v == cap:* ]]; then PERL_OVER=$n
        elif [[ $v != fail:* ]] && ((i == 1)); then PERL_PREV=$n:$v
        fi
      fi
    done
  done
  return 0
}

# --- 2. one daemon's life at size N: resources, reload, detection --------------------------
# A start at 10,000 reals takes minutes under emulation: one start serves all three.
#   resources  CPU per 1,000 checks over WINDOW s of steady state (user + system of the
#              daemon and its reaped children / checks the server answered), idle RSS at the
#              end of the window, peak RSS (VmHWM, the start included);
#   reload     the file replaced by one with an 11th real in the last virtual, then
#              `CONF reload`: seconds until that real is live, and the kernel operations the
#              daemon logged from the reload until one checkinterval after it was;
#   detection  TRIALS times: a random real dies (its connections reset from then on), the
#              seconds until the kernel no longer has it live; it comes back before the next.
OP_LINES='(Added|Deleted|Changed|Purged|Quiescent|Restored|Readd Quiescent) (real|virtual|fallback) server'
# reload_ops NEW < LOG: "CAUSED ALL": the kernel operations logged, and those on the new real
# NEW or on reals whose health did not change in the same window (ours logs "real server
# IP:PORT (…) is up|down"; on a loaded emulated host checks time out and reals flap, which
# is not the reload's doing). The Perl ldirectord logs no health lines: both counts are its
# logged operations.
reload_ops() {
  awk -v ops="$OP_LINES" -v new="$1" '
    { lines[NR] = $0 }
    match($0, /real server [0-9.]+:[0-9]+ \(.*\) is (up|down)/) {
      split(substr($0, RSTART + 12), f, " "); if (f[1] != new) flapped[f[1]] = 1
    }
    END {
      for (i = 1; i <= NR; i++) {
        if (lines[i] !~ ops) continue
        all++
        if (match(lines[i], /server: [0-9.]+:[0-9]+/)) {
          real = substr(lines[i], RSTART + 8, RLENGTH - 8)
          if (real in flapped) continue
        }
        caused++
      }
      printf "%d %d\n", caused, all
    }'
}
session() {
  local sys=$1 n=$2 window=$3 trials=$4 as_start=${5:-} cf=$CONF/$1-$2.cf base v pid hz
  local c0 c1 r0 r1 lines last new t0 t1 ops i vi ri addr svc t_dead t_gone w
  base=$([[ $sys == perl ]] && echo "$CAP" || echo "$OURS_CAP")
  if ! have_time $((window + INTERVAL * 3 + 60)); then
    record cpu_per_1k "$sys" "$n" skip:budget; record reload_time "$sys" "$n" skip:budget
    record detect "$sys" "$n" skip:budget; return 0
  fi
  say "session: $sys N=$n (resources over ${window}s, reload, $trials detection trials)"
  v=$(start "$sys" "$n" "$(capped "$base")")
  [[ -n $as_start ]] && record start "$sys" "$n" "$v"
  if [[ $v == cap:* || $v == fail:* ]]; then
    stop "$sys" "$n"
    record cpu_per_1k "$sys" "$n" "$v"; record reload_time "$sys" "$n" "$v"; record detect "$sys" "$n" "$v"
    return 0
  fi
  pid=$(pid_of "$sys-$n.cf")
  hz=$(clock_hz)

  sleep "$INTERVAL"
  c0=$(cpu_ticks "$pid") r0=$(requests)
  sleep "$window"
  c1=$(cpu_ticks "$pid") r1=$(requests)
  record cpu_per_1k "$sys" "$n" "$(awk -v c=$((c1 - c0)) -v hz="$hz" -v r=$((r1 - r0)) 'BEGIN { printf "%.4f", r ? c / hz / r * 1000 : -1 }')"
  record checks_in_window "$sys" "$n" "$((r1 - r0))"
  record rss_idle "$sys" "$n" "$(rss_kib "$pid")"
  record rss_peak "$sys" "$n" "$(peak_rss_kib "$pid")"

  if have_time $((INTERVAL * 4)); then
    last=$((n / 10 - 1))
    new=$(real_addr "$last" 10)
    cp "$cf" "$cf.orig"
    lines=$(wc -l < "$WORK/$sys-$n.log")
    "$TOOL" wait-dest "$(service_of "$last")" "$new:80" present "$(capped "$base")" > "$WORK/wait" &
    w=$!
    cp "$cf.plus1" "$cf.tmp" && mv "$cf.tmp" "$cf"
    t0=$(now)
    case $sys in
      ours) "$LD" "$cf" reload >> "$LOGS/ours-reload.out" 2>&1 || true ;;
      perl) "$PERL" "$cf" reload >> "$LOGS/perl-reload.out" 2>&1 || true ;;
    esac
    wait "$w" || true
    t1=$(< "$WORK/wait")
    # Operations still being applied after the new real show up in the count too.
    sleep "$INTERVAL"
    tail -n +$((lines + 1)) "$WORK/$sys-$n.log" > "$LOGS/$sys-$n.reload.log"
    ops=$(reload_ops "$new:80" < "$LOGS/$sys-$n.reload.log")
    if [[ $t1 == timeout* ]]; then record reload_time "$sys" "$n" "cap:$(capped "$base")"
    else
      record reload_time "$sys" "$n" "$(span "$t0" "$t1")"
      record reload_ops "$sys" "$n" "${ops% *}"
      record reload_ops_all "$sys" "$n" "${ops#* }"
    fi
  else
    record reload_time "$sys" "$n" skip:budget
  fi

  : > "$WORK/detect"
  for ((i = 1; i <= trials; i++)); do
    have_time $((INTERVAL * 3)) || { echo skip:budget >> "$WORK/detect"; break; }
    vi=$((RANDOM % (n / 10))) ri=$((RANDOM % 10))
    addr=$(real_addr "$vi" "$ri") svc=$(service_of "$vi")
    sleep_random "$INTERVAL"
    "$TOOL" wait-dest "$svc" "$addr:80" absent "$(capped "$base")" > "$WORK/wait" &
    w=$!
    t_dead=$(ctl "__dead/$addr")
    wait "$w" || true
    t_gone=$(< "$WORK/wait")
    ctl "__alive/$addr" > /dev/null
    if [[ $t_gone == timeout* ]]; then echo "cap:$(capped "$base")" >> "$WORK/detect"; continue; fi
    span "$t_dead" "$t_gone" >> "$WORK/detect"
    "$TOOL" wait-dest "$svc" "$addr:80" present "$(capped "$base")" > /dev/null || true
  done
  while read -r v; do if [[ -n $v ]]; then record detect "$sys" "$n" "$v"; fi; done < "$WORK/detect"

  stop "$sys" "$n"
  [[ -e $cf.orig ]] && mv "$cf.orig" "$cf"
  return 0
}

# --- 4. the check cycle with 100 black holes in 1,000 ------------------------------------
# Ours: the first cycle after start, from the first check the server saw to the last black
# hole's "is down" line. Perl: a steady-state pass, from the period between two checks of
# the same live real (10.64.0.2, checked right after the first black hole) minus the
# checkinterval Perl sleeps between passes.
measure_cycle_ours() {
  local n=$BENCH_CYCLE_N holes=$((BENCH_CYCLE_N / 10)) i v f first t_end
  black_holes on
  for ((i = 1; i <= REPEATS; i++)); do
    if ! have_time 60; then record cycle ours "$n" skip:budget; break; fi
    say "cycle: ours N=$n with $holes black holes, repeat $i/$REPEATS"
    ctl __reset > /dev/null
    rm -f "$WORK/ours-$n.log"
    "$TOOL" follow "$WORK/ours-$n.log" " is down" "$holes" "$(capped "$OURS_CAP")" > "$WORK/follow" &
    f=$!
    v=$(start ours "$n" "$(capped "$OURS_CAP")" $((n - holes)))
    wait "$f" || true
    t_end=$(< "$WORK/follow")
    first=$(ctl __stats | awk '$1 == "first" { print $2 }')
    stop ours "$n"
    record start_with_holes ours "$n" "$v"
    if [[ $t_end == timeout ]]; then record cycle ours "$n" "cap:$OURS_CAP"
    else record cycle ours "$n" "$(span "$first" "$t_end")"; fi
  done
  black_holes off
}
measure_cycle_perl() {
  local n=$BENCH_PERL_CYCLE_N holes=$((BENCH_PERL_CYCLE_N / 10)) limit t0 times
  if ! have_time 120; then record cycle perl "$n" skip:budget; return 0; fi
  # two passes at least: each black hole costs a checktimeout, one after another
  limit=$(capped $((CAP * 3)))
  say "cycle: perl N=$n with $holes black holes (one steady-state pass, limit ${limit}s)"
  black_holes on
  ctl __reset > /dev/null
  ctl __watch/10.64.0.2 > /dev/null
  "$PERL" "$CONF/perl-$n.cf" start >> "$LOGS/perl-start.out" 2>&1 || true
  t0=$(now)
  times=()
  while ((${#times[@]} < 3)) && ! greater "$(elapsed "$t0")" "$limit"; do
    sleep 2
    read -ra times <<< "$(ctl __stats | awk '$1 == "watch" { $1 = ""; print }')"
  done
  stop perl "$n"
  black_holes off
  if ((${#times[@]} < 3)); then record cycle perl "$n" "cap:$limit"
  else record cycle perl "$n" "$(awk -v a="${times[1]}" -v b="${times[2]}" -v i="$INTERVAL" 'BEGIN { printf "%.3f", b - a - i }')"; fi
}

# --- 6. listing 100,000 destinations -----------------------------------------------------
measure_list() {
  local n=$1 v i t0
  if ! have_time 120; then record list ours "$n" skip:budget; return 0; fi
  say "list: N=$n"
  v=$(restore "$n")
  [[ $v == fail:* ]] && { record list ours "$n" "$v"; record list ipvsadm "$n" "$v"; ipvsadm -C; return 0; }
  for ((i = 1; i <= REPEATS; i++)); do
    have_time 30 || break
    if ((i % 2)); then
      t0=$(now); "$LD" list -n > "$WORK/list.ours"; record list ours "$n" "$(elapsed "$t0")"
      t0=$(now); ipvsadm -Ln > "$WORK/list.ipvsadm"; record list ipvsadm "$n" "$(elapsed "$t0")"
    else
      t0=$(now); ipvsadm -Ln > "$WORK/list.ipvsadm"; record list ipvsadm "$n" "$(elapsed "$t0")"
      t0=$(now); "$LD" list -n > "$WORK/list.ours"; record list ours "$n" "$(elapsed "$t0")"
    fi
  done
  if cmp -s "$WORK/list.ours" "$WORK/list.ipvsadm"; then record list_identical ours "$n" 1
  else record list_identical ours "$n" 0; fi
  ipvsadm -C
}

# --- the watchdog --------------------------------------------------------------------------
# Every step has its own limit, yet a CI run once went silent for ten minutes in the middle of
# a session (no kernel message either) until the VM's timeout killed everything, and left no
# trace of where it waited. A minute after the budget, the watchdog says what is still running
# and where each process waits in the kernel, with the ends of the daemons' logs, then powers
# the VM off: the run fails with its reason, and the host reports what was measured by then.
hung_report() {
  local pid
  echo "measure: HUNG: still measuring $1 s after the time budget ran out; processes:"
  ps -eo pid,ppid,stat,etimes,wchan:32,args | awk '!/ \[[^]]*\]$/ { print "    " $0 }'
  for pid in $(ps -eo pid=,stat= | awk '$2 ~ /D/ { print $1 }'); do
    echo "  kernel stack of $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null)):"
    sed 's/^/    /' "/proc/$pid/stack" 2> /dev/null || true
  done
  for pid in $(ps -eo pid=,comm= | awk '$2 == "ldirectord" || $2 ~ /^compare_tool/ { print $1 }'); do
    echo "  threads of $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null)):"
    for t in /proc/"$pid"/task/*; do
      printf '    %s %s %s\n' "${t##*/}" "$(cut -d' ' -f3 "$t/stat" 2> /dev/null)" "$(cat "$t/wchan" 2> /dev/null)"
    done
  done
  echo "  last lines of the results and of the daemons' logs:"
  tail -n 3 "$RESULTS" "$WORK"/*.log 2> /dev/null | sed 's/^/    /'
  echo "  dmesg (tail):"
  dmesg | tail -n 20 | sed 's/^/    /'
}
watchdog() {
  local grace=60
  sleep $((DEADLINE - EPOCHSECONDS + grace)) || return 0
  set +e +o pipefail  # (a report cut short by a failed command would skip the power-off)
  hung_report "$grace" >&2
  sync
  echo o > /proc/sysrq-trigger
}

# -----------------------------------------------------------------------------------------
ipvsadm -C
reals_up
WATCHDOG=""
if ((DEADLINE)); then watchdog & WATCHDOG=$!; fi
trap 'kill $SERVER_PID 2> /dev/null || true; ipvsadm -C || true
      if [[ -n $WATCHDOG ]]; then pkill -P "$WATCHDOG" 2> /dev/null || true; kill "$WATCHDOG" 2> /dev/null || true; fi' EXIT
: > "$RESULTS"
if ((DEADLINE)); then say "time budget: $(left) s"; fi

# Cheap and telling first, so that a run cut by its time budget still has most figures:
# every start size once up to the session size, the other measures, the larger sizes (they
# may take the rest of the budget), then the repeats; the Perl check cycle (minutes per
# pass) last.
small=() big=()
for n in $BENCH_SIZES; do
  if ((n < BENCH_SESSION_N)); then small+=("$n"); else big+=("$n"); fi
done
starts "${small[*]}" 1 1
starts "${big[0]:-}" 1 1
measure_cycle_ours
measure_list "$BENCH_LIST_N"
session ours "$BENCH_PERL_SESSION_N" $((INTERVAL * 4)) "$BENCH_DETECT_TRIALS"
session perl "$BENCH_PERL_SESSION_N" $((INTERVAL * 12)) "$BENCH_PERL_DETECT_TRIALS"
starts "${big[*]:1}" 1 1
starts "${small[*]}" 2 "$REPEATS"
starts "${big[*]}" 2 "$REPEATS"
((BENCH_PERL_CYCLE)) && measure_cycle_perl
say "done"
