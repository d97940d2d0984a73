#!/usr/bin/env bash
# Builds the real-Xen lab image from Debian packages: Xen 4.17, a Linux 6.1 PV
# dom0 kernel (ELF vmlinux, so Xen need not decompress it under TCG) and an
# initramfs holding a minimal bookworm userland, Xen's tools, the kernel
# modules dom0 needs and this machine's node binary.
#
#   build-image.sh OUT_DIR
#
# OUT_DIR receives xen.img, vmlinux, dom0.cpio and manifest.txt. The caller
# (xen-vm.ts) decides when to rebuild; this script always builds from scratch
# in a work folder beside OUT_DIR and moves the result in place at the end, so
# an interrupted build never leaves a half image behind.
set -euo pipefail

out=${1:?usage: build-image.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "xen-vm: building the image needs root (debootstrap, chroot)" >&2; exit 1; }
for tool in debootstrap cpio xz gzip; do
  command -v "$tool" >/dev/null || {
    echo "xen-vm: '$tool' is missing: apt-get install -y debootstrap cpio xz-utils gzip (or bash tools/install-system-deps.sh)" >&2
    exit 1
  }
done

# The archive apt already uses here (the only one this machine reaches).
mirror=$(sed -n 's/^URIs: *\(\S*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
suite=bookworm

work="$out.work"
rm -rf "$work"
mkdir -p "$work"
root="$work/root"
log="$work/build.log"
cleanup() {
  for m in proc sys dev; do mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m" || true; done
}
trap cleanup EXIT
step() { printf 'xen-vm: %s\n' "$*" >&2; }
fail() { echo "xen-vm: $1 failed; last lines of $log:" >&2; tail -n 30 "$log" >&2; exit 1; }

step "debootstrap $suite (minbase) from $mirror"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >>"$log" 2>&1 || fail debootstrap

# Same sources as the host (security updates included), and no service may
# start inside the chroot.
cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
: >"$root/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/proc"

mapfile -t pkgs < <(grep -v -E '^\s*(#|$)' "$here/packages.txt")
step "apt-get install ${#pkgs[@]} packages into the root"
chroot "$root" apt-get update >>"$log" 2>&1 || fail "apt-get update (chroot)"
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$log" 2>&1 \
  || fail "apt-get install (chroot)"

# The kernel comes unpacked, not installed: installing it would build an
# initramfs of its own inside the chroot for nothing.
kpkg=$(chroot "$root" apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || fail "finding the linux-image package"
step "unpack $kpkg"
(cd "$root/tmp" && chroot "$root" sh -c "cd /tmp && apt-get download $kpkg") >>"$log" 2>&1 || fail "apt-get download $kpkg"
mkdir -p "$work/kernel"
dpkg -x "$root"/tmp/"$kpkg"_*.deb "$work/kernel"
kver=$(ls "$work/kernel/lib/modules")

# Only the modules dom0 uses (Xen, block, loop/nbd/dm, 9p over virtio, the
# file systems the tests make), then depmod resolves their dependencies.
step "modules for $kver"
kmods="$work/kernel/lib/modules/$kver"
dst="$root/lib/modules/$kver"
mkdir -p "$dst"
cp "$kmods"/modules.builtin* "$kmods"/modules.order "$dst/"
for sub in kernel/drivers/xen kernel/drivers/block kernel/drivers/md kernel/drivers/virtio \
           kernel/net/9p kernel/fs/9p kernel/fs/netfs kernel/fs/fscache kernel/fs/ext4 kernel/fs/jbd2 \
           kernel/fs/mbcache.ko kernel/fs/fat kernel/fs/nls kernel/lib kernel/crypto kernel/arch/x86/crypto \
           kernel/drivers/char kernel/drivers/nvdimm kernel/drivers/dax; do
  [ -e "$kmods/$sub" ] || continue
  mkdir -p "$dst/$(dirname "$sub")"
  cp -a "$kmods/$sub" "$dst/$(dirname "$sub")/"
done
chroot "$root" depmod "$kver"

# Xen hands dom0 an ELF image directly; pull it out of the bzImage's XZ payload.
step "extract vmlinux"
node "$here/extract-vmlinux.mjs" "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinux" >>"$log" 2>&1 || fail "extracting vmlinux"
gzip -dc "$root"/boot/xen-4.17-amd64.gz >"$work/xen.img" || fail "finding xen-4.17-amd64.gz"

# node from this machine (same Debian 12 libc), and dom0's init.
install -m 0755 "$(command -v node)" "$root/usr/local/bin/node"
install -m 0755 "$here/init.sh" "$root/init"
mkdir -p "$root/dev/pts" "$root/run" "$root/var/run/xenstored" "$root/var/lib/xenstored" "$root/mnt/ctl"
# /etc/xen/scripts/block loops for ever without /dev/stdin; init makes the
# links at boot (devtmpfs), these cover a static /dev too.
ln -sfn /proc/self/fd "$root/dev/fd"

# Trim what a lab never reads.
rm -rf "$root"/usr/share/{doc,man,info,locale,i18n,zoneinfo-icu} "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
       "$root"/boot/* "$root"/tmp/* "$root"/usr/lib/xen-4.17/boot 2>/dev/null || true
umount -l "$root/proc"

step "pack dom0.cpio"
(cd "$root" && find . -xdev | LC_ALL=C sort | cpio -o -H newc --quiet) >"$work/dom0.cpio" || fail "cpio"
{
  echo "kernel $kver"
  echo "xen $(chroot "$root" dpkg-query -W -f='${Version}' xen-utils-4.17 2>/dev/null || echo '?')"
  echo "node $(node --version)"
  echo "built $(date -u +%FT%TZ)"
  echo "cpio_bytes $(stat -c %s "$work/dom0.cpio")"
} >"$work/manifest.txt"

rm -rf "$out"
mkdir -p "$out"
mv "$work/xen.img" "$work/vmlinux" "$work/dom0.cpio" "$work/manifest.txt" "$work/build.log" "$out/"
rm -rf "$work"
trap - EXIT
step "image ready in $out"
