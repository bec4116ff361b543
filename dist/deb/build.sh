#!/usr/bin/env bash
# build.sh [--binary PATH] [--out DIR] [--version V] — builds the Debian package
# ldirectord-rs_<V>_<arch>.deb from this repository with dpkg-deb (no debhelper needed).
#
# It installs what the Perl packages install, where they install it, and replaces them:
#   /usr/sbin/ldirectord                          the binary
#   /etc/ha.d/resource.d/ldirectord               heartbeat v1 resource script: a symlink to it
#   /usr/lib/ocf/resource.d/heartbeat/ldirectord  the OCF agent (resource-agents' own copy is
#                                                 diverted, so resource-agents stays installed)
#   /lib/systemd/system/ldirectord.service        Type=notify, hardened
#   /lib/systemd/system/ldirectord-realserver.service, /etc/init.d/ldirectord-realserver
#                                                 the real-server side at boot (`ldirectord
#                                                 realserver`), not enabled; the init script
#                                                 is a conffile
#   /usr/share/man/man8/ldirectord.8.gz, man5/ldirectord.cf.5.gz,
#   man7/ocf_heartbeat_ldirectord.7.gz            whatever of man/ exists
#   /usr/share/doc/ldirectord-rs/examples/*.cf    config-examples/
# and creates, only where missing, /etc/ha.d/ldirectord.cf (the Debian dummy: no virtual
# service), /etc/default/ldirectord, /etc/default/ldirectord-realserver (VIPS empty: the
# real-server units do nothing) and /etc/logrotate.d/ldirectord: never conffiles, so an
# operator's files from the Perl package are taken over untouched.
# Control: Provides, Conflicts and Replaces ldirectord (dpkg removes the Perl package).
#
# Default binary: a release build (cargo build --release). The VM suite packs the debug
# binary it tests (--binary).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BINARY='' OUT='' VERSION=''
while (($#)); do
  case $1 in
    --binary) BINARY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --version) VERSION=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
[[ -n $VERSION ]] || VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)-1
if [[ -z $BINARY ]]; then
  cargo build --release --bin ldirectord
  target=${CARGO_TARGET_DIR:-$ROOT/target}
  BINARY=$target/release/ldirectord
fi
[[ -x $BINARY ]] || { echo "build.sh: no binary at $BINARY" >&2; exit 1; }
[[ -n $OUT ]] || OUT=${CARGO_TARGET_DIR:-$ROOT/target}/debian
mkdir -p "$OUT"
ARCH=$(dpkg --print-architecture)
PKG=ldirectord-rs
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/ldirectord-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
chmod 755 "$STAGE"

d() { install -d -m 755 "$STAGE/$1"; }
d usr/sbin; d etc/ha.d/resource.d; d usr/lib/ocf/resource.d/heartbeat; d lib/systemd/system
d etc/init.d
d "usr/share/doc/$PKG/examples"; d DEBIAN
install -m 755 "$BINARY" "$STAGE/usr/sbin/ldirectord"
# a debug build carries its symbols; a package does not need them
strip --strip-unneeded "$STAGE/usr/sbin/ldirectord" 2>/dev/null || true
ln -s /usr/sbin/ldirectord "$STAGE/etc/ha.d/resource.d/ldirectord"
install -m 755 dist/ocf/ldirectord "$STAGE/usr/lib/ocf/resource.d/heartbeat/ldirectord"
install -m 644 dist/systemd/ldirectord.service "$STAGE/lib/systemd/system/ldirectord.service"
install -m 644 dist/systemd/ldirectord-realserver.service "$STAGE/lib/systemd/system/"
install -m 755 dist/init.d/ldirectord-realserver "$STAGE/etc/init.d/"
for page in man/*.[0-9]; do
  [[ -e $page ]] || continue
  section=${page##*.}
  d "usr/share/man/man$section"
  manpage=$STAGE/usr/share/man/man$section/${page##*/}.gz
  gzip -9n < "$page" > "$manpage"
done
for f in config-examples/*.cf; do install -m 644 "$f" "$STAGE/usr/share/doc/$PKG/examples/"; done
install -m 644 dist/deb/ldirectord.cf "$STAGE/usr/share/doc/$PKG/examples/ldirectord.cf.dummy"
install -m 644 dist/default/ldirectord-realserver "$STAGE/usr/share/doc/$PKG/examples/ldirectord-realserver.default"
install -m 644 dist/deb/copyright "$STAGE/usr/share/doc/$PKG/copyright"
gzip -9n < README.md > "$STAGE/usr/share/doc/$PKG/README.md.gz"
printf '%s (%s) unstable; urgency=medium\n\n  * Built from the repository by dist/deb/build.sh.\n\n -- ldirectord-rs maintainers <root@localhost>  %s\n' \
  "$PKG" "$VERSION" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
  gzip -9n > "$STAGE/usr/share/doc/$PKG/changelog.Debian.gz"

# Shared libraries → Depends (libc6 at the newest glibc symbol version the binary uses).
glibc=$(objdump -T "$STAGE/usr/sbin/ldirectord" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
depends="libc6 (>= ${glibc:-2.34})"
while read -r lib; do
  pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
  [[ -n $pkg && $pkg != libc6 && $depends != *"$pkg"* ]] && depends+=", $pkg"
done < <(ldd "$STAGE/usr/sbin/ldirectord" | awk '$3 ~ /^\// { print $3 }')

for script in preinst postinst prerm postrm; do
  install -m 755 "dist/deb/$script" "$STAGE/DEBIAN/$script"
done
echo /etc/init.d/ldirectord-realserver > "$STAGE/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: ldirectord-rs maintainers <root@localhost>
Installed-Size: $size
Depends: $depends
Recommends: logrotate
Suggests: heartbeat | pacemaker, resource-agents, ipvsadm
Provides: ldirectord
Conflicts: ldirectord
Replaces: ldirectord
Section: admin
Priority: optional
Description: Linux Virtual Server director (drop-in replacement for ldirectord)
 ldirectord monitors the real servers behind the virtual services of the
 Linux Virtual Server (IPVS) and keeps the kernel's table in step: it reads
 the same ldirectord.cf and command line as the Perl ldirectord, programs
 IPVS itself over generic netlink, and checks real servers concurrently.
 .
 This package replaces the Perl ldirectord package; it includes the heartbeat
 resource script, the OCF resource agent ocf:heartbeat:ldirectord (diverting
 the one of resource-agents), a hardened systemd unit, and the real-server
 side ("ldirectord realserver": the VIPs on the loopback, ARP kept quiet) with
 its systemd unit and init script, not enabled.
CONTROL
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"
deb=$OUT/${PKG}_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$deb" >&2
echo "$deb"
