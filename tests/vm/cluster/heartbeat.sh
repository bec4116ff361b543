# shellcheck shell=bash
# heartbeat.sh — heartbeat v1 on the directors of topology.sh --pair, for cluster suites.
# Sourced after lib.sh. Needs the suite line "# vm-debs: heartbeat".
#
#   hb_install [PKG...]         unpack heartbeat and its dependencies; hacluster user
#   hb_configure HARESOURCES    /etc/ha.d/{ha.cf,authkeys,haresources} (shared by both
#                               directors: /etc is the VM's); deadtime $HB_DEADTIME s
#   hb_start DIRECTOR           heartbeat in DIRECTOR's namespaces, with its own
#                               /var/lib/heartbeat (uuid, logs) bound from $HB_STATE/DIRECTOR
#                               and its /run laid out as at boot (the packages' tmpfiles.d)
#   hb_log DIRECTOR             its log; hb_debug DIRECTOR: the resource scripts' output
#   hb_save NAME                copies $HB_STATE (logs) to the host's results directory
#                               ($LDIRECTORD_VM_RESULTS/NAME-heartbeat), for a failed run
#   ns_kill DIRECTOR            KILL every process in DIRECTOR's mount namespace
HB_STATE=${HB_STATE:-/tmp/cluster-hb}
HB_KEEPALIVE=${HB_KEEPALIVE:-500ms}
HB_DEADTIME=${HB_DEADTIME:-3}

hb_install() {  # [PKG...]: the suite's "# vm-debs:" packages (default: heartbeat)
  if (($#)); then unpack_debs "$@" || return 1; else unpack_debs heartbeat || return 1; fi
  getent group haclient > /dev/null || groupadd -r haclient
  getent passwd hacluster > /dev/null ||
    useradd -r -g haclient -d /var/lib/heartbeat -s /usr/sbin/nologin hacluster
  [[ -x /usr/libexec/heartbeat/heartbeat ]]
}

hb_configure() {
  mkdir -p /etc/ha.d
  # ucast to both addresses: heartbeat skips its own. (bcast needs a broadcast address on
  # eth0, which the topology does not set.)
  cat > /etc/ha.d/ha.cf <<CF
logfile /var/lib/heartbeat/ha-log
debugfile /var/lib/heartbeat/ha-debug
logfacility none
keepalive $HB_KEEPALIVE
warntime 2
deadtime $HB_DEADTIME
initdead 10
ucast eth0 10.0.0.1
ucast eth0 10.0.0.3
auto_failback off
node dir1
node dir2
crm no
CF
  printf 'auth 1\n1 crc\n' > /etc/ha.d/authkeys
  chmod 600 /etc/ha.d/authkeys
  printf '%s\n' "$1" > /etc/ha.d/haresources
}

hb_start() {
  local d=$1
  mkdir -p "$HB_STATE/$d"
  "$TOPOLOGY" exec "$d" sh -c '
    mount --bind "$1" /var/lib/heartbeat &&
    mkdir -p /var/lib/heartbeat/cores/root /var/lib/heartbeat/cores/hacluster &&
    chown -R hacluster:haclient /var/lib/heartbeat &&
    chown root /var/lib/heartbeat/cores/root &&
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/heartbeat.conf \
      /usr/lib/tmpfiles.d/resource-agents.conf &&
    /usr/libexec/heartbeat/heartbeat > /dev/null 2>&1' sh "$HB_STATE/$d"
}

hb_log() {
  cat "$HB_STATE/$1/ha-log" 2>/dev/null
}

hb_debug() {  # what the resource scripts printed (ResourceManager sends it to the debug file)
  grep -v -E 'Gmain_timeout_dispatch|G_CH_dispatch|G_SIG_dispatch|Late heartbeat' \
    "$HB_STATE/$1/ha-debug" 2>/dev/null
}

hb_save() {
  [[ -d ${LDIRECTORD_VM_RESULTS:-} ]] || return 0
  rm -rf "$LDIRECTORD_VM_RESULTS/$1-heartbeat"
  cp -r "$HB_STATE" "$LDIRECTORD_VM_RESULTS/$1-heartbeat" 2>/dev/null || true
  echo "heartbeat logs: $LDIRECTORD_VM_RESULTS/$1-heartbeat"
}

ns_kill() {
  local ns pid
  ns=$(stat -L -c %i "/run/topology/ns/$1.mnt" 2>/dev/null) || return 0
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [[ $(stat -L -c %i "/proc/$pid/ns/mnt" 2>/dev/null) == "$ns" ]] && kill -9 "$pid" 2>/dev/null
  done
  return 0
}
