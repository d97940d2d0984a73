#!/bin/sh
# dom0's /init, baked into the image. It does the least that cannot change
# per run (kernel file systems, the 9p control share), then hands over to the
# dom0-init.sh the harness put on that share, so changing the dom0 setup never
# needs an image rebuild.
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modprobe virtio_pci && modprobe 9pnet_virtio && modprobe 9p
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctl /mnt/ctl && [ -f /mnt/ctl/dom0-init.sh ]; then
  exec /bin/sh /mnt/ctl/dom0-init.sh
fi
echo "xenpv-dom0: no control share (tools/xen-vm/xen-vm.ts mounts one as 'ctl'); powering off"
busybox poweroff -f
