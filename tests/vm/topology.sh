#!/usr/bin/env bash
# topology.sh — an LVS test bed of network namespaces, for use INSIDE the test VM (vm.sh).
# It refuses to run elsewhere: it creates namespaces, bridges and addresses and flushes IPVS.
#
#   topology.sh up [--mode dr|nat] [--reals N] [--directors 1|2] [--pair] [--ipvs]
#       build it (defaults: dr, 2 real servers, 1 director). --ipvs also programs VIP:80 (rr)
#       with every real server, a baseline for tests that run no ldirectord. --pair (dr only):
#       two directors that are both namespaces (dir1 too), for cluster failover tests.
#   topology.sh down                     tear everything down (namespaces, links, servers, IPVS)
#   topology.sh stop-http NAME | start-http NAME
#       stop / start the HTTP server of rsN (or "fallback": one in dir1 on :80, for
#       ldirectord's fallback=127.0.0.1:80)
#   topology.sh link-down NAME | link-up NAME
#       unplug / replug rsN (or dir2; dir1 with --pair): its packets vanish without any RST
#   topology.sh requests COUNT [TIMEOUT]
#       COUNT fresh HTTP connections client -> VIP:80, each with TIMEOUT s (default 2);
#       prints "requests=C ok=O failed=F rs1=.. rs2=.." (and one line per request with -v)
#   topology.sh exec NAME CMD [ARG]...   run CMD in NAME's namespaces (dir1 = the VM itself)
#   topology.sh vip add|del DIRECTOR     move the VIP (v4 and v6) to/from a director, with a
#                                        gratuitous ARP (for failover tests)
#   topology.sh env                      print the layout as shell variables (VIP=… REALS=…)
#   topology.sh status                   ipvsadm -Ln, namespaces, HTTP servers
#
# Layout (the addresses exist only inside the VM, which has no network card):
#   dir1    the VM's root namespace: bridge br0 10.0.0.1/24 fd00::1/64; holds the VIP by default
#   dir2    (--directors 2) net + mount + UTS namespaces: own IPVS table, own /run, hostname
#           dir2; eth0 10.0.0.3 fd00::3 on br0. With two directors no one holds the VIP
#           until "vip add" says who: that is the failover tool's job.
#   --pair  dir1 is such a namespace too (eth0 10.0.0.1 fd00::1, hostname dir1, own /run);
#           the VM's root namespace only holds the bridge, so either director can be
#           unplugged (link-down dir1|dir2) or have its processes killed.
#   rsN     netns, eth0 10.0.0.(10+N) fd00::(10+N) on br0; busybox httpd :80 serving
#           /index.html "rsN" and /check.txt "OK rsN"
#   client  netns. dr: eth0 10.0.0.2 fd00::2 on br0.
#           nat: eth0 10.0.1.2 fd00:1::2 on bridge brc, routed through dir1 (10.0.1.1).
#   dr      VIP 10.0.0.100 fd00::100; real servers hold it on lo, with arp_ignore=1 and
#           arp_announce=2, and answer the client directly (ipvsadm -g)
#   nat     VIP 10.0.1.100 fd00:1::100 on brc; real servers route back via dir1 (ipvsadm -m)
set -euo pipefail

STATE=/run/topology
WWW=$STATE/www

die() { echo "topology: $*" >&2; exit 1; }
[[ ${LDIRECTORD_VM:-} == 1 ]] || die "run me inside the test VM (tests/vm/vm.sh), never on a real host"
BUSYBOX=$(command -v busybox || echo /run/vm/busybox)

# what "up" recorded: MODE, REALS, DIRECTORS, VIP, VIP6
load() {
  [[ -s $STATE/env ]] || die "not up (topology.sh up first)"
  # shellcheck source=/dev/null
  . "$STATE/env"
}

# NS_PREFIX=(…): the command prefix that runs a program in NAME's namespaces; every prefix
# execs the program, so "${NS_PREFIX[@]}" prog & leaves $! = the program's pid
ns_prefix() {
  case $1 in
    dir1) if [[ -e /run/netns/dir1 ]]; then
            NS_PREFIX=(nsenter --net=/run/netns/dir1 --mount="$STATE/ns/dir1.mnt" --uts="$STATE/ns/dir1.uts" --)
          else
            NS_PREFIX=()
          fi ;;
    dir2) NS_PREFIX=(nsenter --net=/run/netns/dir2 --mount="$STATE/ns/dir2.mnt" --uts="$STATE/ns/dir2.uts" --) ;;
    *) [[ -e /run/netns/$1 ]] || die "no namespace $1"; NS_PREFIX=(ip netns exec "$1") ;;
  esac
}
in_ns() {  # NAME CMD...: run CMD in NAME's namespaces
  ns_prefix "$1"; shift
  "${NS_PREFIX[@]}" "$@"
}

add_host() {  # NAME V4 V6 BRIDGE: a netns with eth0 on BRIDGE
  local name=$1 v4=$2 v6=$3 bridge=$4 i
  # (a namespace deleted by someone else's `ip netns del` may still hold this name's host end
  # for a few seconds: see down)
  for ((i = 0; i < 100; i++)); do ip link show "$name-h" > /dev/null 2>&1 || break; sleep 0.1; done
  ip netns add "$name"
  ip link add "$name-h" type veth peer name eth0 netns "$name"
  ip link set "$name-h" master "$bridge" up
  ip -n "$name" link set lo up
  ip -n "$name" addr add "$v4/24" dev eth0
  ip -n "$name" addr add "$v6/64" dev eth0 nodad
  ip -n "$name" link set eth0 up
}

start_http() {
  local name=$1 where=$1 pid
  [[ $name == fallback ]] && where=dir1
  [[ -d $WWW/$name ]] || die "no HTTP server called $name"
  [[ -s $STATE/$name.pid ]] && return 0
  ns_prefix "$where"
  # its own output goes to a log: a caller's $(topology.sh …) must not wait for the server
  "${NS_PREFIX[@]}" "$BUSYBOX" httpd -f -vv -p 80 -h "$WWW/$name" < /dev/null > "$STATE/$name.log" 2>&1 &
  pid=$!
  echo "$pid" > "$STATE/$name.pid"
  # wait until it listens, so a test's first request does not race the bind
  local i
  for ((i = 0; i < 50; i++)); do
    in_ns "$where" ss -Hltn 'sport = :80' | grep -q . && return 0
    sleep 0.1
  done
  die "httpd $name did not start listening"
}

stop_http() {
  local name=$1
  [[ -s $STATE/$name.pid ]] || return 0
  kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
  wait "$(cat "$STATE/$name.pid")" 2>/dev/null || true
  rm -f "$STATE/$name.pid"
}

add_director() {  # NAME V4 V6: a director in its own net, mount and UTS namespaces on br0
  local name=$1
  add_host "$name" "$2" "$3" br0
  # a mount namespace of its own (fresh /run for pid files and sockets, /sys of its netns)
  # and a hostname of its own; both kept alive by bind mounts on a private mount point
  if ! mountpoint -q "$STATE/ns"; then
    mount --bind "$STATE/ns" "$STATE/ns"
    mount --make-private "$STATE/ns"
  fi
  touch "$STATE/ns/$name.mnt" "$STATE/ns/$name.uts"
  # (nsenter, not "ip netns exec": that one's private mount namespace would swallow the binds)
  nsenter --net="/run/netns/$name" unshare --mount="$STATE/ns/$name.mnt" --uts="$STATE/ns/$name.uts" \
    --propagation private sh -c '
      hostname "$1"
      mount -t tmpfs -o mode=755 tmpfs /run && mkdir -p /run/lock
      umount -l /sys 2>/dev/null; mount -t sysfs sysfs /sys' sh "$name"
}

real_name() {  # rsN, or N, -> rsN
  local n=${1#rs}
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= REALS)) || die "no real server $1 (1..$REALS)"
  echo "rs$n"
}

up() {
  local mode=dr reals=2 directors=1 ipvs=0 pair=0
  while (($#)); do
    case $1 in
      --mode) mode=$2; shift 2 ;;
      --reals) reals=$2; shift 2 ;;
      --directors) directors=$2; shift 2 ;;
      --pair) pair=1; directors=2; shift ;;
      --ipvs) ipvs=1; shift ;;
      *) die "up: unknown option $1" ;;
    esac
  done
  [[ $mode == dr || $mode == nat ]] || die "--mode is dr or nat"
  [[ $reals =~ ^[0-9]+$ ]] && ((reals >= 1 && reals <= 80)) || die "--reals is 1..80"
  [[ $directors == 1 || $directors == 2 ]] || die "--directors is 1 or 2"
  ((pair == 0)) || [[ $mode == dr ]] || die "--pair is for dr only"
  ((pair == 0 || ipvs == 0)) || die "--pair and --ipvs: each director programs its own table"
  [[ -e $STATE/env ]] && die "already up (topology.sh down first)"
  mkdir -p "$STATE/ns" "$WWW"

  local vip vip6 i
  if [[ $mode == dr ]]; then vip=10.0.0.100 vip6=fd00::100; else vip=10.0.1.100 vip6=fd00:1::100; fi
  ip link set lo up
  ip link add br0 type bridge
  if ((pair == 0)); then
    ip addr add 10.0.0.1/24 dev br0
    ip addr add fd00::1/64 dev br0 nodad
  fi
  ip link set br0 up

  for ((i = 1; i <= reals; i++)); do
    add_host "rs$i" "10.0.0.$((10 + i))" "fd00::$((10 + i))" br0
    if [[ $mode == dr ]]; then
      ip netns exec "rs$i" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
        net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
      ip -n "rs$i" addr add "$vip/32" dev lo
      ip -n "rs$i" addr add "$vip6/128" dev lo nodad
    else
      ip -n "rs$i" route add default via 10.0.0.1
      ip -n "rs$i" -6 route add default via fd00::1
    fi
    mkdir -p "$WWW/rs$i"
    echo "rs$i" > "$WWW/rs$i/index.html"
    echo "OK rs$i" > "$WWW/rs$i/check.txt"
  done

  if [[ $mode == dr ]]; then
    add_host client 10.0.0.2 fd00::2 br0
  else
    ip link add brc type bridge
    ip addr add 10.0.1.1/24 dev brc
    ip addr add fd00:1::1/64 dev brc nodad
    ip link set brc up
    add_host client 10.0.1.2 fd00:1::2 brc
    ip -n client route add default via 10.0.1.1
    ip -n client -6 route add default via fd00:1::1
    sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  fi

  if ((pair)); then
    add_director dir1 10.0.0.1 fd00::1
  fi
  if ((directors == 2)); then
    add_director dir2 10.0.0.3 fd00::3
  elif [[ $mode == dr ]]; then
    ip addr add "$vip/32" dev br0
    ip addr add "$vip6/128" dev br0 nodad
  else
    ip addr add "$vip/32" dev brc
    ip addr add "$vip6/128" dev brc nodad
  fi

  mkdir -p "$WWW/fallback"
  echo "fallback" > "$WWW/fallback/index.html"
  echo "OK fallback" > "$WWW/fallback/check.txt"
  local list="" addrs=""
  for ((i = 1; i <= reals; i++)); do list+="rs$i "; addrs+="10.0.0.$((10 + i)) "; done
  cat > "$STATE/env" <<EOF
MODE=$mode
REALS=$reals
DIRECTORS=$directors
PAIR=$pair
VIP=$vip
VIP6=$vip6
REAL_NAMES="${list% }"
REAL_ADDRS="${addrs% }"
EOF
  load
  for ((i = 1; i <= reals; i++)); do start_http "rs$i"; done

  if ((ipvs)); then
    local fwd=-g
    [[ $mode == nat ]] && fwd=-m
    ipvsadm -A -t "$vip:80" -s rr
    for ((i = 1; i <= reals; i++)); do ipvsadm -a -t "$vip:80" -r "10.0.0.$((10 + i)):80" $fwd -w 1; done
  fi
  echo "topology: up, mode=$mode VIP=$vip:80 [$vip6]:80, $reals real servers, $directors director(s)"
}

down() {
  local f
  for f in "$STATE"/*.pid; do [[ -e $f ]] && stop_http "$(basename "$f" .pid)"; done
  clear_connections
  local d
  for d in dir1 dir2; do
    if [[ -e /run/netns/$d ]]; then
      ip netns exec "$d" ipvsadm -C 2>/dev/null || true
      ip netns exec "$d" ipvsadm --stop-daemon master 2>/dev/null || true
      ip netns exec "$d" ipvsadm --stop-daemon backup 2>/dev/null || true
    fi
    umount "$STATE/ns/$d.mnt" "$STATE/ns/$d.uts" 2>/dev/null || true
  done
  umount "$STATE/ns" 2>/dev/null || true
  # The host ends of the veth pairs go first, each taking its peer with it at once: a deleted
  # namespace is dismantled later by a kernel worker (seconds under emulation), and the next
  # `up` then met a host end still there ("RTNETLINK answers: File exists", CI rehearsals
  # r5 and r6).
  local link
  for link in $(ip -o link show type veth | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
    [[ $link == *-h ]] && ip link del "$link" 2>/dev/null || true
  done
  for f in /run/netns/*; do [[ -e $f ]] && ip netns del "$(basename "$f")"; done
  ip link del br0 2>/dev/null || true
  ip link del brc 2>/dev/null || true
  sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
  rm -rf "$STATE"
}

# Empties this namespace's IPVS table, connection entries included. Entries outlive their
# service (2 min in FIN_WAIT under DR, where the director sees only the client's side) and
# revive with the next topology's identical real servers; a client in a new namespace picks
# its source ports afresh, and a SYN that matches a left-over entry goes to that entry's
# real whatever the scheduler and the weights say: two flaky checks in CI rehearsals (a new
# connection to a quiesced real, an uneven round robin). With expire_nodest_conn on, the
# kernel expires the entries of deleted destinations.
clear_connections() {
  local before i
  before=$(cat /proc/sys/net/ipv4/vs/expire_nodest_conn 2>/dev/null) || { ipvsadm -C 2>/dev/null || true; return 0; }
  echo 1 > /proc/sys/net/ipv4/vs/expire_nodest_conn
  ipvsadm -C 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    [[ -z $(ipvsadm -Lnc 2>/dev/null | tail -n +3) ]] && break
    sleep 0.1
  done
  echo "$before" > /proc/sys/net/ipv4/vs/expire_nodest_conn
}

requests() {
  local count=${1:-10} timeout=${2:-2} verbose=${VERBOSE:-0} i out ok=0 failed=0
  local -A served=()
  load
  for ((i = 1; i <= count; i++)); do
    if out=$(ip netns exec client curl -sS --max-time "$timeout" "http://$VIP/" 2>&1); then
      ok=$((ok + 1)); served[$out]=$((${served[$out]:-0} + 1))
    else
      failed=$((failed + 1)); out="FAIL ${out##*curl: }"
    fi
    ((verbose)) && echo "$i: $out"
  done
  local line="requests=$count ok=$ok failed=$failed" name
  for name in $REAL_NAMES fallback; do
    [[ -n ${served[$name]:-} ]] && line+=" $name=${served[$name]}"
  done
  echo "$line"
}

vip() {
  local action=$1 director=$2 dev=eth0
  load
  [[ $director == dir1 && ${PAIR:-0} != 1 ]] && { dev=br0; [[ $MODE == nat ]] && dev=brc; }
  in_ns "$director" ip addr "$action" "$VIP/32" dev "$dev"
  in_ns "$director" ip addr "$action" "$VIP6/128" dev "$dev" nodad 2>/dev/null ||
    in_ns "$director" ip addr "$action" "$VIP6/128" dev "$dev"
  if [[ $action == add ]]; then
    in_ns "$director" "$BUSYBOX" arping -U -c 1 -I "$dev" "$VIP" >/dev/null 2>&1 || true
  fi
}

status() {
  load
  echo "mode=$MODE reals=$REALS directors=$DIRECTORS VIP=$VIP VIP6=$VIP6"
  echo "namespaces: $(ip netns list | awk '{print $1}' | tr '\n' ' ')"
  local name
  for name in $REAL_NAMES fallback; do
    if [[ -s $STATE/$name.pid ]]; then echo "http $name: running"; else echo "http $name: stopped"; fi
  done
  echo "--- dir1"; in_ns dir1 ipvsadm -Ln
  if ((DIRECTORS == 2)); then echo "--- dir2"; in_ns dir2 ipvsadm -Ln; fi
}

command=${1:-}
(($#)) && shift
case $command in
  up) up "$@" ;;
  down) down ;;
  start-http|stop-http)
    load
    name=$1; [[ $name == fallback ]] || name=$(real_name "$1")
    "${command/-/_}" "$name" ;;
  link-down|link-up)
    load
    name=$1
    [[ $name == dir2 || ($name == dir1 && ${PAIR:-0} == 1) ]] || name=$(real_name "$1")
    ip link set "$name-h" "${command#link-}" ;;
  requests) requests "$@" ;;
  exec) load; in_ns "$@" ;;
  vip) [[ ${1:-} == add || ${1:-} == del ]] || die "vip add|del DIRECTOR"; vip "$1" "$2" ;;
  env) load; cat "$STATE/env" ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
