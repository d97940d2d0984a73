#!/usr/bin/env bash
# System packages the tests and tools use, one a line with what needs it.
# Idempotent; quiet when everything is present.
set -euo pipefail
PKGS=(
  libxen-dev        # Xen's public headers: golden layouts, ioctl ABI, C peers
  xenstore-utils    # Xen's own xenstore clients: xenstored conformance
  python3-pyxs      # pyxs: xenstored conformance
  gcc g++ make python3  # node-gyp (the native addon), the C peers
  qemu-system-x86 debootstrap cpio xz-utils  # the real-Xen lab (tools/xen-vm)
  lvm2              # oracle of src/lvm
  mount             # mount, losetup: tmpfs and loop devices for the storage tests
  libnbd-bin python3-libnbd  # nbdinfo, nbdcopy, nbdsh: oracles of src/nbd
  dosfstools mtools e2fsprogs curl wrk  # oracles and load generator of src/fs and src/serve
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
