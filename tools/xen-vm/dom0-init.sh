#!/bin/sh
# Run by /init on every boot, from the harness's control share (/mnt/ctl):
# prepares dom0 as a Xen toolstack would (modules, xenfs, xenstored,
# xen-init-dom0), mounts the checkout at the host's path, runs the script,
# records its status on the share and powers the machine off.
#
# /mnt/ctl/env defines XENPV_CWD (host checkout path), XENPV_MODE (run|shell).
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-dumb} LANG=C.UTF-8
. /mnt/ctl/env

say() { echo "xenpv-dom0: $*"; }
finish() {
  echo "$1" >/mnt/ctl/status
  sync
  say "status $1, powering off"
  busybox poweroff -f
  # poweroff did not end the machine: QEMU's isa-debug-exit port does.
  printf "\\$(printf %o "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
  sleep 5
}

mkdir -p /dev/pts /dev/shm /dev/mqueue /run /tmp /var/run/xenstored /var/lib/xenstored /var/log/xen
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
# /etc/xen/scripts/block spins for ever without these (no udev here).
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname dom0
# Loopback up: no init system here does it (the NBD tests listen on 127.0.0.1).
busybox ip link set lo up || say "cannot bring lo up"

# The kernel's frontend (xen-blkfront) is left out on purpose: it claims every
# dom0 vbd. A test that wants it loads it and unloads it after.
# One modprobe for all: every fork+exec costs 0.1-0.5 s under TCG.
modprobe -a xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xen-blkback loop nbd dm-mod \
  || say "some module did not load (see above)"
mount -t xenfs xenfs /proc/xen || { say "cannot mount xenfs: is this a Xen dom0?"; finish 97; }

# cxenstored, as the xencommons init script starts it.
XENSTORED_ROOTDIR=/var/lib/xenstored /usr/lib/xen-4.17/bin/xenstored --pid-file /run/xenstored.pid \
  || { say "xenstored did not start"; finish 96; }
/usr/lib/xen-4.17/bin/xen-init-dom0 >/dev/null || { say "xen-init-dom0 failed"; finish 95; }

mkdir -p "$XENPV_CWD"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose src "$XENPV_CWD" \
  || { say "cannot mount the checkout share"; finish 94; }
cd "$XENPV_CWD"
export XENPV_DOM0=1 XENPV_VM_CTL=/mnt/ctl
say "ready ($(uname -r), $(nproc) vCPU, xen $(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null))"

if [ "$XENPV_MODE" = shell ]; then
  say "interactive shell; 'exit' powers off"
  setsid sh -c 'exec sh -i </dev/hvc0 >/dev/hvc0 2>&1'
  finish 0
fi
start=$(date +%s)
# Through a pipe, not the console: hvc0 is a terminal, and tools that see one
# (vitest) redraw progress in place many times a second into the serial log.
{ sh /mnt/ctl/script </dev/null; echo $? >/tmp/xenpv-status; } 2>&1 | cat
rc=$(cat /tmp/xenpv-status)
say "script finished in $(( $(date +%s) - start )) s"
finish "$rc"
