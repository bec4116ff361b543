#!/usr/bin/env bash
# The classic scenario end to end, with this project's daemon in a real IPVS kernel, in
# direct-routing and in NAT mode (issue #6, item 7 a–j):
#   a  table built; requests alternate between the two real servers
#   b  rs1's HTTP server stops: its destination goes within checkinterval + checktimeout
#      + 0.5 s; then 100 requests, 0 failures
#   c  both stop: the fallback (the director's own HTTP server on 127.0.0.1:80) goes in
#   d  rs1 starts: fallback out, rs1 back
#   e  rs2 unplugged (no RST): removed once the check times out
#   f  quiescent=yes: weight 0 instead of removal, an established connection survives
#   g  reload adding rs3: exactly one destination added, no request fails meanwhile
#   h  kill -9 while a client loops, start again: 0 failed requests, table adopted (its
#      counters keep counting instead of restarting from 0)
#   i  reload with a broken config: table unchanged, daemon serving, status says why
#   j  ipvsadm -d of a managed destination: restored within one check interval
# Timings are printed as "measure: …" lines for the README.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

LD=${LDIRECTORD_BIN:?}
WORK=$(mktemp -d /tmp/director-suite.XXXXXX)
CONF=$WORK/web.cf
LOG=$WORK/ldirectord.log
INTERVAL=2
TIMEOUT=2
# b/e: the removal deadline of the issue, in seconds
LIMIT=$(awk -v i=$INTERVAL -v t=$TIMEOUT 'BEGIN { print i + t + 0.5 }')

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# "ADDR:PORT WEIGHT" per destination of the VIP's service, sorted
dests() { ipvsadm -Ln -t "$VIP:80" 2>/dev/null | awk '$1 == "->" && $2 != "RemoteAddress:Port" { print $2, $4 }' | sort; }

# The timing polls read /proc/net/ip_vs with shell builtins: forking ipvsadm every 50 ms
# under emulation would measure ipvsadm. It lists "  -> HEXADDR:HEXPORT Fwd Weight …".
hex_dest() {  # 10.0.0.12:80 -> 0A00000C:0050
  local ip=${1%:*} port=${1##*:} a b c d
  IFS=. read -r a b c d <<< "$ip"
  printf '%02X%02X%02X%02X:%04X' "$a" "$b" "$c" "$d" "$port"
}
has_dest() {  # has_dest ADDR:PORT [WEIGHT]: present (with that weight) in the VIP's service
  local want line in=0 vip
  local -a f
  want=$(hex_dest "$1") vip=$(hex_dest "$VIP:80")
  while IFS= read -r line; do
    if [[ $line == "TCP  "* ]]; then
      [[ $line == "TCP  $vip "* ]] && in=1 || in=0
    elif ((in)) && [[ $line == "  -> $want "* ]]; then
      read -ra f <<< "$line"
      [[ -z ${2:-} || ${f[3]} == "$2" ]] && return 0
    fi
  done < /proc/net/ip_vs
  return 1
}
no_dest() { ! has_dest "$@"; }

# fast_requests N: N fresh connections from the client, in one curl; prints the same line
# as "topology.sh requests" ("requests=N ok=O failed=F rs1=…")
fast_requests() {
  local n=$1 i
  local -a urls=()
  for ((i = 0; i < n; i++)); do urls+=("http://$VIP/"); done
  ip netns exec client curl -s --max-time 2 -H 'Connection: close' -w '\n%{http_code}\n' "${urls[@]}" |
    awk -v n="$n" '
      /^[0-9][0-9][0-9]$/ { if ($1 == 200 && body != "") { ok++; seen[body]++ } body = ""; next }
      NF { body = $1 }
      END {
        line = "requests=" n " ok=" ok + 0 " failed=" n - ok
        split("rs1 rs2 rs3 fallback", names, " ")
        for (i = 1; i <= 4; i++) if (seen[names[i]]) line = line " " names[i] "=" seen[names[i]]
        print line
      }'
}

# show_log WHAT: the daemon's last lines, after a failed timing
show_log() { echo "    last lines of the daemon's log ($1):"; tail -n 15 "$LOG" | sed 's/^/    | /'; }

# wait_for SECONDS CMD...: polls CMD every 50 ms; prints the seconds it took; fails on timeout
wait_for() {
  local limit=$1 t
  shift
  t=$(now)
  while ! "$@" > /dev/null 2>&1; do
    le "$(elapsed "$t")" "$limit" || { echo "timeout"; return 1; }
    sleep 0.05
  done
  elapsed "$t"
}

write_conf() {  # write_conf FWD REALS [GLOBAL LINES...]
  local fwd=$1 reals=$2 i
  shift 2
  {
    echo "checkinterval=$INTERVAL"
    echo "checktimeout=$TIMEOUT"
    echo "failurecount=1"
    echo "autoreload=no"
    echo "logfile=\"$LOG\""
    printf '%s\n' "$@"
    echo "virtual=$VIP:80"
    for ((i = 1; i <= reals; i++)); do echo "	real=10.0.0.$((10 + i)):80 $fwd"; done
    echo "	fallback=127.0.0.1:80 gate"
    echo "	service=http"
    echo "	checktype=negotiate"
    echo "	request=\"check.txt\""
    echo "	receive=\"OK\""
    echo "	scheduler=rr"
    echo "	protocol=tcp"
  } > "$CONF"
}

both_in() { has_dest 10.0.0.11:80 && has_dest 10.0.0.12:80; }
both_weight_1() { has_dest 10.0.0.11:80 1 && has_dest 10.0.0.12:80 1; }

stats_of() {  # total connections of destination $1 so far
  ipvsadm -Ln --stats -t "$VIP:80" | awk -v d="$1" '$1 == "->" && $2 == d { print $3 }'
}

scenario() {
  local mode=$1 fwd=gate t out before after
  [[ $mode == nat ]] && fwd=masq
  $TOPOLOGY up --mode "$mode" --reals 3 > /dev/null
  # shellcheck source=/dev/null
  . /run/topology/env
  $TOPOLOGY stop-http rs3
  $TOPOLOGY start-http fallback
  : > "$LOG"
  write_conf "$fwd" 2

  # a
  t=$(now)
  check "$mode a: ldirectord start exits 0" "$LD" "$CONF" start
  check "$mode a: both real servers in the table" wait_for 10 both_in
  echo "measure: $mode start to programmed table: $(elapsed "$t") s"
  expect_eq "$mode a: requests alternate" "requests=10 ok=10 failed=0 rs1=5 rs2=5" "$(fast_requests 10)"
  check "$mode a: status exits 0 and lists both reals" bash -c "'$LD' '$CONF' status 2>&1 | grep -q 10.0.0.12:80"

  # b
  $TOPOLOGY stop-http rs1
  t=$(now)
  out=$(wait_for 15 no_dest 10.0.0.11:80) || true
  echo "measure: $mode b: HTTP stopped -> removed in $out s (limit $LIMIT s)"
  check "$mode b: rs1 removed within $LIMIT s (took $out)" le "${out/timeout/999}" "$LIMIT"
  le "${out/timeout/999}" "$LIMIT" || show_log b
  expect_eq "$mode b: 100 requests after the removal, 0 failures" \
    "requests=100 ok=100 failed=0 rs2=100" "$(fast_requests 100)"

  # c
  $TOPOLOGY stop-http rs2
  check "$mode c: fallback inserted" wait_for 15 has_dest 127.0.0.1:80
  check "$mode c: no real server left" bash -c "! ipvsadm -Ln -t $VIP:80 | grep -q '10.0.0.1[12]:80'"
  expect_eq "$mode c: clients get the director's page" \
    "requests=5 ok=5 failed=0 fallback=5" "$(fast_requests 5)"

  # d
  $TOPOLOGY start-http rs1
  check "$mode d: rs1 back" wait_for 15 has_dest 10.0.0.11:80
  check "$mode d: fallback removed" wait_for 5 no_dest 127.0.0.1:80
  expect_eq "$mode d: rs1 serves" "requests=4 ok=4 failed=0 rs1=4" "$(fast_requests 4)"

  # e
  $TOPOLOGY start-http rs2
  check "$mode e: rs2 back" wait_for 15 has_dest 10.0.0.12:80
  $TOPOLOGY link-down rs2
  t=$(now)
  out=$(wait_for 15 no_dest 10.0.0.12:80) || true
  echo "measure: $mode e: unplugged -> removed in $out s (limit $LIMIT s)"
  check "$mode e: rs2 removed within $LIMIT s (took $out)" le "${out/timeout/999}" "$LIMIT"
  le "${out/timeout/999}" "$LIMIT" || show_log e
  $TOPOLOGY link-up rs2
  check "$mode e: rs2 back after replug" wait_for 15 has_dest 10.0.0.12:80

  # f: both checks fail while the servers keep serving established connections
  write_conf "$fwd" 2 "quiescent=yes"
  check "$mode f: reload to quiescent=yes" "$LD" "$CONF" reload
  rm -f "$WORK/established"
  ip netns exec client bash -c "exec 3<>/dev/tcp/$VIP/80 && echo open > $WORK/established.open &&
    while [[ ! -e $WORK/established.go ]]; do sleep 0.1; done &&
    printf 'GET / HTTP/1.0\r\n\r\n' >&3 && cat <&3 > $WORK/established" &
  local client=$!
  wait_for 10 test -e "$WORK/established.open" > /dev/null || true
  mv "/run/topology/www/rs1/check.txt" "$WORK/rs1-check.txt"
  mv "/run/topology/www/rs2/check.txt" "$WORK/rs2-check.txt"
  check "$mode f: rs1 quiesced to weight 0" wait_for 15 has_dest 10.0.0.11:80 0
  check "$mode f: rs2 quiesced to weight 0" wait_for 15 has_dest 10.0.0.12:80 0
  check "$mode f: fallback in while every real is quiesced" wait_for 5 has_dest 127.0.0.1:80
  touch "$WORK/established.go"
  wait "$client" || true
  check "$mode f: the established connection was still served by a real server" grep -qE '^rs[12]$' "$WORK/established"
  # One CI rehearsal saw a new connection reach rs2 here at weight 0 (rs2=1); six runs of
  # this suite alone did not repeat it. The likely cause: a connection entry left in the
  # director's table by the previous suite (in DR the director sees only the client's side,
  # and such entries sit in FIN_WAIT for 2 min) revived with the same real server, and a
  # SYN from a reused source port followed it, weight 0 or not (README, "quiescent").
  # topology.sh down now empties the connection table; source ports this run never used
  # rule the rest out, and a failure prints the table, the connections and the daemon's
  # log. (DIRECTOR_F_PORTS: another range, to hunt for it.)
  local ports fresh=${DIRECTOR_F_PORTS:-}
  ports=$(ip netns exec client sysctl -n net.ipv4.ip_local_port_range)
  if [[ -z $fresh ]]; then
    if [[ $mode == dr ]]; then fresh="61000 61498"; else fresh="61500 61998"; fi
  fi
  ip netns exec client sysctl -qw net.ipv4.ip_local_port_range="$fresh"
  local got
  got=$(fast_requests 3)
  ip netns exec client sysctl -qw net.ipv4.ip_local_port_range="$ports"
  expect_eq "$mode f: new connections go to the fallback" "requests=3 ok=3 failed=0 fallback=3" "$got"
  if [[ $got != "requests=3 ok=3 failed=0 fallback=3" ]]; then
    echo "    the table and the connections to it (client ports were $fresh):"
    { ipvsadm -Ln -t "$VIP:80"; ipvsadm -Lnc | grep -F "$VIP:80"; } | sed 's/^/    | /'
    show_log f
  fi
  mv "$WORK/rs1-check.txt" /run/topology/www/rs1/check.txt
  mv "$WORK/rs2-check.txt" /run/topology/www/rs2/check.txt
  check "$mode f: weights restored" wait_for 15 both_weight_1
  check "$mode f: fallback out again" wait_for 5 no_dest 127.0.0.1:80

  # g
  $TOPOLOGY start-http rs3
  before=$(dests)
  write_conf "$fwd" 3 "quiescent=yes"
  fast_requests 40 > "$WORK/g.requests" &
  local loop=$!
  check "$mode g: reload exits 0" "$LD" "$CONF" reload
  check "$mode g: rs3 added" wait_for 15 has_dest 10.0.0.13:80
  wait "$loop" || true
  after=$(dests)
  expect_eq "$mode g: exactly one destination added, the others untouched" \
    "> 10.0.0.13:80 1" "$(diff <(echo "$before") <(echo "$after") | grep '^[<>]')"
  check "$mode g: no request failed during the reload" grep -q "failed=0" "$WORK/g.requests"

  # h
  before=$(stats_of 10.0.0.11:80)
  $TOPOLOGY requests 60 1 > "$WORK/h.requests" &
  loop=$!
  sleep 1
  kill -9 "$(cat /var/run/ldirectord.web.cf.pid)"
  check "$mode h: status says stale after kill -9" bash -c "'$LD' '$CONF' status; [[ \$? == 1 ]]"
  check "$mode h: start again" "$LD" "$CONF" start
  wait "$loop" || true
  check "$mode h: 0 failed requests across kill -9 and restart ($(cat "$WORK/h.requests"))" grep -q "failed=0" "$WORK/h.requests"
  after=$(stats_of 10.0.0.11:80)
  check "$mode h: table adopted, not rebuilt (rs1 connections $before -> $after)" le "$before" "$after"
  check "$mode h: no destination re-added by the restart" bash -c "! tail -n +\$(grep -n 'Starting Linux Director' '$LOG' | tail -1 | cut -d: -f1) '$LOG' | grep -q 'Added real server'"

  # i
  before=$(ipvsadm -Sn)
  cp "$CONF" "$WORK/good.cf"
  sed -i 's/scheduler=rr/scheduler=rr\n\tbogus=1/' "$CONF"
  check "$mode i: reload of a broken file exits 2" bash -c "'$LD' '$CONF' reload; [[ \$? == 2 ]]"
  expect_eq "$mode i: table unchanged" "$before" "$(ipvsadm -Sn)"
  check "$mode i: daemon still serving" bash -c "'$LD' '$CONF' status > $WORK/i.status 2>&1"
  check "$mode i: status says why, with the line" grep -q "web.cf:.*bogus\|bogus.*web.cf\|web.cf:[0-9]" "$WORK/i.status"
  check "$mode i: status shows the configuration error" grep -q "CONFIGURATION ERROR" "$WORK/i.status"
  expect_eq "$mode i: requests still served" "requests=3 ok=3 failed=0" "$(fast_requests 3 | sed 's/ rs.*//')"
  cp "$WORK/good.cf" "$CONF"
  check "$mode i: a fixed file reloads" "$LD" "$CONF" reload

  # j
  ipvsadm -d -t "$VIP:80" -r 10.0.0.12:80
  out=$(wait_for 15 has_dest 10.0.0.12:80) || true
  echo "measure: $mode j: deleted behind our back -> restored in $out s (interval $INTERVAL s)"
  check "$mode j: restored within one interval (took $out)" le "${out/timeout/999}" "$((INTERVAL + 1))"
  le "${out/timeout/999}" "$((INTERVAL + 1))" || show_log j
  check "$mode j: the repair is logged" grep -q "10.0.0.12:80" "$LOG"

  check "$mode: stop exits 0 and waits" "$LD" "$CONF" stop
  check "$mode: cleanstop removed the virtual service" bash -c "[[ -z \$(ipvsadm -Sn) ]]"
  check "$mode: no pid file left" bash -c "[[ ! -e /var/run/ldirectord.web.cf.pid ]]"
  $TOPOLOGY down
}

for mode in dr nat; do
  scenario "$mode"
done
rm -rf "$WORK"
finish
