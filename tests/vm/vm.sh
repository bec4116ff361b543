#!/usr/bin/env bash
# vm.sh [-w DIR]... [-t SECONDS] [-m MiB] [-c CPUS] [-k] [-v] [--] COMMAND [ARG]...
#
# Runs COMMAND as root inside a throwaway QEMU VM that boots Debian's stock kernel (which has IPVS),
# streams its stdout and stderr, and exits with its status. Made for tests: the host kernel here
# has no ip_vs, and a test that programs IPVS must never touch a host's real table anyway.
#
# Inside the VM:
#   * the host's / is shared read-only over virtio-9p under a tmpfs overlay: every host binary
#     (cargo's build output, ipvsadm, curl, busybox) runs unchanged, writes vanish at power-off;
#   * -w DIR (repeatable) shares a host directory read-write at the same path (results, logs);
#   * the working directory and the exported environment are the caller's, plus
#     LDIRECTORD_VM=1 (tests refuse to touch IPVS without it) and LDIRECTORD_VM_KERNEL=<release>;
#   * ip_vs is loaded; schedulers, veth, bridge, dummy, ipip… load on demand (module autoload);
#   * no network card: only lo and what the commands create, so no packet leaves the VM;
#     name lookups use /etc/hosts only (no DNS), so they cannot time out.
#
# Exit status: COMMAND's; 124 on timeout; 125 when the VM cannot run here (the reason is printed).
#
# Environment:
#   LDIRECTORD_VM_CACHE    kernel, initramfs cache (default /var/cache/ldirectord-vm)
#   LDIRECTORD_VM_KERNEL_PKG  kernel package (default: the one linux-image-amd64 depends on)
#   LDIRECTORD_VM_TIMEOUT  seconds before the VM is killed (default 900; also -t)
#   LDIRECTORD_VM_MEM      guest MiB (default 2048; also -m)
#   LDIRECTORD_VM_CPUS     guest vCPUs (default: host cores, at most 4; also -c)
#   LDIRECTORD_VM_ACCEL    auto (default) | tcg | kvm
#   LDIRECTORD_VM_NO_INSTALL=1  never apt-get install missing host packages, fail instead
#   -v prints the guest console after the run; -k keeps the per-run directory.
set -euo pipefail

# Bump when the generated /init changes: the cached initramfs is keyed on it.
INIT_VERSION=1
CACHE=${LDIRECTORD_VM_CACHE:-/var/cache/ldirectord-vm}
TIMEOUT=${LDIRECTORD_VM_TIMEOUT:-900}
MEM=${LDIRECTORD_VM_MEM:-2048}
CPUS=${LDIRECTORD_VM_CPUS:-$(($(nproc) > 4 ? 4 : $(nproc)))}
ACCEL=${LDIRECTORD_VM_ACCEL:-auto}
BOOT_TIMEOUT=120
VERBOSE=0 KEEP=0
SHARES=()
# Host packages: the first two boot the VM, the rest are what the tests run inside it.
PACKAGES=(qemu-system-x86 busybox-static ipvsadm iproute2 curl xz-utils)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
cannot() { echo "vm: cannot run the VM: $*" >&2; exit 125; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

while (($#)); do
  case $1 in
    -w) [[ -d ${2:-} ]] || { echo "vm: -w needs an existing directory" >&2; exit 2; }
        SHARES+=("$(cd "$2" && pwd -P)"); shift 2 ;;
    -t) TIMEOUT=$2; shift 2 ;;
    -m) MEM=$2; shift 2 ;;
    -c) CPUS=$2; shift 2 ;;
    -k) KEEP=1; shift ;;
    -v) VERBOSE=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "vm: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
(($#)) || usage
t_start=$(now)

# ------------------------------------------------------------------ can this machine run it at all
[[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] || cannot "needs an x86_64 Linux host, this is $(uname -sm)"
[[ $(id -u) == 0 ]] || cannot "needs root (apt-get install, 9p shares of /, and the guest runs as root)"

is_static() { [[ -x $1 ]] && [[ $(LC_ALL=C ldd "$1" 2>&1) == *'not a dynamic'* ]]; }
missing_packages() {
  local -A has=(
    [qemu-system-x86]=$(command -v qemu-system-x86_64 || true)
    [ipvsadm]=$(command -v ipvsadm || true)
    [iproute2]=$(command -v ip || true)
    [curl]=$(command -v curl || true)
    [xz-utils]=$(command -v xz || true)
  )
  is_static "$(command -v busybox || true)" && has[busybox-static]=yes
  local p; for p in "${PACKAGES[@]}"; do [[ -n ${has[$p]:-} ]] || echo "$p"; done
}
mapfile -t need < <(missing_packages)
if ((${#need[@]})); then
  [[ ${LDIRECTORD_VM_NO_INSTALL:-0} == 1 ]] && cannot "missing host packages: ${need[*]}"
  command -v apt-get >/dev/null || cannot "missing host packages (${need[*]}) and no apt-get to install them"
  echo "vm: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; } ||
    cannot "apt-get install ${need[*]} failed"
  mapfile -t need < <(missing_packages)
  ((${#need[@]} == 0)) || cannot "still missing after apt-get install: ${need[*]}"
fi
BUSYBOX=$(command -v busybox)

# ------------------------------------------------------------------ kernel and initramfs, cached
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # parallel runs share the cache; only one fills it

kernel_package() {
  [[ -n ${LDIRECTORD_VM_KERNEL_PKG:-} ]] && { echo "$LDIRECTORD_VM_KERNEL_PKG"; return; }
  local p
  p=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  if [[ -z $p ]]; then
    apt-get update -q >&2 || true
    p=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  fi
  echo "$p"
}

# Unpacks the kernel package (never installs it) into $CACHE/<release>: modules with their
# indexes, and an uncompressed vmlinux that QEMU boots through PVH, which skips the in-guest
# decompression (about 2 s under TCG).
fetch_kernel() {
  local pkg=$1 rel=${1#linux-image-} dir deb off
  dir=$CACHE/$rel
  echo "vm: first run: fetching $pkg into $CACHE (unpacked, not installed)" >&2
  mkdir -p "$CACHE/debs"
  (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg") >&2 ||
    { apt-get update -q >&2 && (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg") >&2; } ||
    cannot "apt-get download $pkg failed"
  deb=$(ls -t "$CACHE/debs/${pkg}"_*.deb | head -n 1)
  rm -rf "$dir.tmp"
  dpkg -x "$deb" "$dir.tmp"
  local mods=$dir.tmp/lib/modules/$rel
  [[ -d $mods ]] || { mkdir -p "$dir.tmp/lib/modules"; mv "$dir.tmp/usr/lib/modules/$rel" "$mods"; }
  compgen -G "$mods/kernel/net/netfilter/ipvs/ip_vs.ko*" >/dev/null || cannot "$pkg has no ip_vs module"
  "$BUSYBOX" depmod -b "$dir.tmp" "$rel"
  off=$(grep -obUaP '\xfd7zXZ\x00' "$dir.tmp/boot/vmlinuz-$rel" | head -n 1 | cut -d: -f1 || true)
  if [[ -n $off ]] && tail -c +$((off + 1)) "$dir.tmp/boot/vmlinuz-$rel" |
       xz -dc --single-stream > "$dir.tmp/boot/vmlinux-$rel" 2>/dev/null &&
     [[ $(head -c 4 "$dir.tmp/boot/vmlinux-$rel" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
    :
  else
    rm -f "$dir.tmp/boot/vmlinux-$rel"   # the bzImage boots too, only slower
  fi
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  ln -sfn "$rel" "$CACHE/current"
}

if [[ -n ${LDIRECTORD_VM_KERNEL_PKG:-} ]]; then
  KREL=${LDIRECTORD_VM_KERNEL_PKG#linux-image-}
  [[ -d $CACHE/$KREL ]] || fetch_kernel "$LDIRECTORD_VM_KERNEL_PKG"
else
  if [[ ! -L $CACHE/current || ! -d $CACHE/current ]]; then
    pkg=$(kernel_package)
    [[ -n $pkg ]] || cannot "cannot resolve the kernel package behind linux-image-amd64 (apt-cache depends)"
    fetch_kernel "$pkg"
  fi
  KREL=$(readlink "$CACHE/current")
fi
KDIR=$CACHE/$KREL
MODDIR=$KDIR/lib/modules/$KREL
KIMAGE=$KDIR/boot/vmlinux-$KREL
[[ -s $KIMAGE ]] || KIMAGE=$KDIR/boot/vmlinuz-$KREL

# Stage 1, the initramfs's /init: mount the host root (9p, read-only) under a tmpfs overlay and
# switch_root into it, so that PID 1 and the kernel's modprobe helper live in the final root.
read -r -d '' INIT <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
fail() { echo "vm init: FAILED: $*"; cat /proc/mounts; poweroff -f; sleep 5; }
for m in virtio_pci 9pnet_virtio 9p overlay virtio-rng; do modprobe $m || fail "modprobe $m"; done
W=$LDVM_RUN R=/newroot
o9=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /lower /rw $R
mount -t 9p -o ro,$o9,cache=loose hostroot /lower || fail "mount the host root"
mount -t tmpfs -o mode=755 tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work $R || fail "overlay"
mkdir -p $R$W && mount -t 9p -o $o9 run $R$W || fail "mount the run directory"
while read -r tag path; do
  mkdir -p "$R$path" && mount -t 9p -o $o9 "$tag" "$R$path" || fail "mount share $path"
done < $R$W/shares
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
ln -sf /proc/self/fd $R/dev/fd
for i in 0:stdin 1:stdout 2:stderr; do ln -sf /proc/self/fd/${i%%:*} $R/dev/${i#*:}; done
mount -t tmpfs -o mode=755 tmpfs $R/run
mkdir -p $R/run/lock $R/run/vm $R/lib/modules/$LDVM_KREL
# the kernel's request_module runs /sbin/modprobe, which reads /lib/modules/<release>
mount --bind $R$LDVM_MODULES $R/lib/modules/$LDVM_KREL || fail "bind the modules"
cp /bin/busybox $R/run/vm/busybox
# hosts without kmod get busybox's module tools
for t in modprobe lsmod insmod rmmod modinfo; do
  [ -x $R/sbin/$t ] || [ -x $R/usr/sbin/$t ] || ln -sf /run/vm/busybox $R/usr/sbin/$t
done
echo /sbin/modprobe > /proc/sys/kernel/modprobe
read up _ < /proc/uptime; echo "$up" > $R$W/booted
umount /proc /sys
exec switch_root $R /run/vm/busybox sh $W/stage2
EOF

init_hash=$(printf '%s\n%s\n%s\n' "$INIT_VERSION" "$KREL" "$INIT" | sha256sum | cut -c1-16)
INITRD=$CACHE/initrd-$KREL-$init_hash.cpio.gz
if [[ ! -s $INITRD ]]; then
  ird=$(mktemp -d "$CACHE/initrd.XXXXXX")
  mkdir -p "$ird"/{bin,proc,sys,dev,lib/modules/"$KREL"}
  cp "$BUSYBOX" "$ird/bin/busybox"
  printf '%s\n' "$INIT" > "$ird/init"; chmod 755 "$ird/init"
  # the modules that reach the 9p root, with their dependencies and a matching modules.dep
  for m in drivers/virtio/virtio_pci net/9p/9pnet_virtio fs/9p/9p fs/overlayfs/overlay \
           drivers/char/hw_random/virtio-rng; do
    line=$(grep -E "^kernel/$m\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep") || cannot "module $m not in $KREL"
    for f in ${line/:/ }; do
      grep -qF "$f:" "$ird/lib/modules/$KREL/modules.dep" 2>/dev/null && continue
      grep -E "^$f:" "$MODDIR/modules.dep" >> "$ird/lib/modules/$KREL/modules.dep"
      mkdir -p "$ird/lib/modules/$KREL/$(dirname "$f")"
      cp "$MODDIR/$f" "$ird/lib/modules/$KREL/$f"
    done
  done
  (cd "$ird" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$ird"
  for f in "$CACHE/initrd-$KREL-"*.cpio.gz; do [[ $f == "$INITRD" ]] || rm -f "$f"; done
fi
flock -u 9
exec 9>&-

# ------------------------------------------------------------------ the run directory (9p tag "run")
RUN=$(mktemp -d "${TMPDIR:-/tmp}/ldirectord-vm.XXXXXX")
QEMU_PID=
cleanup() {
  if [[ -n $QEMU_PID ]]; then kill "$QEMU_PID" 2>/dev/null || true; fi
  if ((KEEP)); then echo "vm: kept $RUN" >&2; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

: > "$RUN/stdout"; : > "$RUN/stderr"; : > "$RUN/shares"
i=0
for s in "${SHARES[@]}"; do echo "s$i $s" >> "$RUN/shares"; i=$((i + 1)); done
export -p | grep -vE '^declare -x (BASH[A-Z_]*|SHELLOPTS|SHLVL|PWD|OLDPWD|_|TERM|HOSTNAME|TMUX[A-Z_]*|SSH_[A-Z_]*|DISPLAY)=' > "$RUN/env" || true
# Stage 2, the new PID 1 in the final root, runs the guest script and powers off.
cat > "$RUN/stage2" <<EOF
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
/run/vm/busybox hostname ldirectord-vm
/run/vm/busybox ip link set lo up
/bin/bash $RUN/guest > $RUN/stdout 2> $RUN/stderr < /dev/null
/run/vm/busybox sync
/run/vm/busybox poweroff -f
EOF
{
  echo ". $(printf %q "$RUN/env")"
  echo "export LDIRECTORD_VM=1 LDIRECTORD_VM_KERNEL=$KREL HOSTNAME=ldirectord-vm TERM=dumb"
  # no DNS: lookups of addresses go to /etc/hosts only (a resolver that must time out first
  # costs ~30 ms per address under TCG)
  echo ": > /etc/resolv.conf; sed -i 's/^hosts:.*/hosts: files/' /etc/nsswitch.conf"
  # copied up into the tmpfs: the resolver rereads them for every lookup, and over 9p that
  # is slow
  echo "touch /etc/hosts /etc/services /etc/protocols"
  echo "modprobe ip_vs || echo 'vm: modprobe ip_vs failed' >&2"
  echo "cd $(printf %q "$PWD") 2>/dev/null || cd /"
  printf '%q ' "$@"; echo
  echo "echo \$? > $(printf %q "$RUN/status")"
} > "$RUN/guest"

case $ACCEL in
  auto) # KVM only where it really works: /dev/kvm here can belong to a paravirtualised host
        # (kvm_pvm) whose CPUs show no vmx/svm, and booting there fails.
        if [[ -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo && [[ ! -d /sys/module/kvm_pvm ]]
        then ACCEL=kvm; else ACCEL=tcg; fi ;;
  kvm|tcg) ;;
  *) echo "vm: LDIRECTORD_VM_ACCEL must be auto, tcg or kvm" >&2; exit 2 ;;
esac

boot() {  # boot in the background; succeed once stage 1 is done, fail if QEMU dies or stalls
  local accel=$1 cpu=max share i=0 limit
  [[ $accel == kvm ]] && cpu=host
  local args=(-nodefaults -no-user-config -display none -no-reboot
    -machine "q35,accel=$accel" -cpu "$cpu" -m "$MEM" -smp "$CPUS"
    -kernel "$KIMAGE" -initrd "$INITRD"
    -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init LDVM_RUN=$RUN LDVM_KREL=$KREL LDVM_MODULES=$MODDIR"
    -serial "file:$RUN/console.log"
    -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
    -device "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"
    -fsdev "local,id=run,path=$RUN,security_model=none"
    -device "virtio-9p-pci,fsdev=run,mount_tag=run"
    -device virtio-rng-pci)
  for share in "${SHARES[@]}"; do
    args+=(-fsdev "local,id=s$i,path=$share,security_model=none,multidevs=remap"
           -device "virtio-9p-pci,fsdev=s$i,mount_tag=s$i")
    i=$((i + 1))
  done
  rm -f "$RUN/booted"
  t_boot=$(now)
  timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${args[@]}" < /dev/null > "$RUN/qemu.log" 2>&1 &
  QEMU_PID=$!
  limit=$BOOT_TIMEOUT
  [[ $accel == kvm ]] && limit=20
  for ((i = 0; i < limit * 10; i++)); do
    [[ -s $RUN/booted ]] && return 0
    kill -0 "$QEMU_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# A boot that never reaches stage 2 (KVM unusable after all, or a rare early hang on a loaded
# host) is retried once, under TCG.
if ! boot "$ACCEL"; then
  kill "$QEMU_PID" 2>/dev/null; wait "$QEMU_PID" 2>/dev/null || true
  echo "vm: the $ACCEL boot did not reach the initramfs's end; retrying under TCG" >&2
  ACCEL=tcg
  if ! boot tcg; then
    kill "$QEMU_PID" 2>/dev/null; wait "$QEMU_PID" 2>/dev/null || true
    { echo "---- qemu"; cat "$RUN/qemu.log"; echo "---- guest console (tail)"
      tr -d '\r' < "$RUN/console.log" | tail -n 40; } >&2
    cannot "the VM did not boot (kernel $KREL, accel tcg)"
  fi
fi
echo "vm: kernel $KREL, $ACCEL, $CPUS vCPU, ${MEM} MiB: booted in $(since "$t_boot") s" >&2

# tail --pid follows until QEMU is gone, then prints what is left and stops
tail -c +1 -f --pid="$QEMU_PID" "$RUN/stdout" &
out_pid=$!
tail -c +1 -f --pid="$QEMU_PID" "$RUN/stderr" >&2 &
err_pid=$!
qemu_status=0
wait "$QEMU_PID" || qemu_status=$?
QEMU_PID=
wait "$out_pid" "$err_pid" || true

if ((VERBOSE)); then { echo "---- guest console"; tr -d '\r' < "$RUN/console.log"; } >&2; fi
if [[ -s $RUN/status ]]; then
  status=$(cat "$RUN/status")
  echo "vm: done in $(since "$t_start") s, status $status" >&2
  exit "$status"
fi
if ((qemu_status == 124 || qemu_status == 137)); then
  echo "vm: TIMEOUT: killed after ${TIMEOUT} s (-t to change)" >&2
  exit 124
fi
{ echo "vm: the VM stopped before the command finished (qemu status $qemu_status)"
  echo "---- qemu"; cat "$RUN/qemu.log"
  echo "---- guest console (tail)"; tr -d '\r' < "$RUN/console.log" | tail -n 40; } >&2
exit 125
