/*
 * Golden values for src/native/xen-dev.cc: the /dev/xen ioctl request
 * numbers, struct sizes and field offsets, as gcc computes them from the
 * installed Linux UAPI headers (Debian libxen-dev, /usr/include/xen/sys).
 * Prints one JSON object; names match xenDevAbi() of the addon.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <xen/xen.h>
#include <xen/event_channel.h>
#include <xen/sys/evtchn.h>
#include <xen/sys/gntalloc.h>
#include <xen/sys/gntdev.h>

#define E(name, value) printf("%s\"%s\": %lu", first ? "" : ",\n  ", name, (unsigned long)(value)), first = 0

int main(void) {
  int first = 1;
  printf("{\n  ");
  E("IOCTL_EVTCHN_BIND_INTERDOMAIN", IOCTL_EVTCHN_BIND_INTERDOMAIN);
  E("IOCTL_EVTCHN_BIND_UNBOUND_PORT", IOCTL_EVTCHN_BIND_UNBOUND_PORT);
  E("IOCTL_EVTCHN_UNBIND", IOCTL_EVTCHN_UNBIND);
  E("IOCTL_EVTCHN_NOTIFY", IOCTL_EVTCHN_NOTIFY);
  E("IOCTL_EVTCHN_RESET", IOCTL_EVTCHN_RESET);
  E("IOCTL_GNTALLOC_ALLOC_GREF", IOCTL_GNTALLOC_ALLOC_GREF);
  E("IOCTL_GNTALLOC_DEALLOC_GREF", IOCTL_GNTALLOC_DEALLOC_GREF);
  E("IOCTL_GNTALLOC_SET_UNMAP_NOTIFY", IOCTL_GNTALLOC_SET_UNMAP_NOTIFY);
  E("IOCTL_GNTDEV_MAP_GRANT_REF", IOCTL_GNTDEV_MAP_GRANT_REF);
  E("IOCTL_GNTDEV_UNMAP_GRANT_REF", IOCTL_GNTDEV_UNMAP_GRANT_REF);
  E("GNTALLOC_FLAG_WRITABLE", GNTALLOC_FLAG_WRITABLE);
  E("UNMAP_NOTIFY_CLEAR_BYTE", UNMAP_NOTIFY_CLEAR_BYTE);
  E("UNMAP_NOTIFY_SEND_EVENT", UNMAP_NOTIFY_SEND_EVENT);
  E("sizeof_ioctl_evtchn_bind_interdomain", sizeof(struct ioctl_evtchn_bind_interdomain));
  E("sizeof_ioctl_evtchn_bind_unbound_port", sizeof(struct ioctl_evtchn_bind_unbound_port));
  E("sizeof_ioctl_gntalloc_alloc_gref", sizeof(struct ioctl_gntalloc_alloc_gref));
  E("offsetof_ioctl_gntalloc_alloc_gref_domid", offsetof(struct ioctl_gntalloc_alloc_gref, domid));
  E("offsetof_ioctl_gntalloc_alloc_gref_flags", offsetof(struct ioctl_gntalloc_alloc_gref, flags));
  E("offsetof_ioctl_gntalloc_alloc_gref_count", offsetof(struct ioctl_gntalloc_alloc_gref, count));
  E("offsetof_ioctl_gntalloc_alloc_gref_index", offsetof(struct ioctl_gntalloc_alloc_gref, index));
  E("offsetof_ioctl_gntalloc_alloc_gref_gref_ids", offsetof(struct ioctl_gntalloc_alloc_gref, gref_ids));
  E("sizeof_ioctl_gntalloc_dealloc_gref", sizeof(struct ioctl_gntalloc_dealloc_gref));
  E("sizeof_ioctl_gntalloc_unmap_notify", sizeof(struct ioctl_gntalloc_unmap_notify));
  E("sizeof_ioctl_gntdev_grant_ref", sizeof(struct ioctl_gntdev_grant_ref));
  E("sizeof_ioctl_gntdev_map_grant_ref", sizeof(struct ioctl_gntdev_map_grant_ref));
  E("offsetof_ioctl_gntdev_map_grant_ref_index", offsetof(struct ioctl_gntdev_map_grant_ref, index));
  E("offsetof_ioctl_gntdev_map_grant_ref_refs", offsetof(struct ioctl_gntdev_map_grant_ref, refs));
  E("sizeof_ioctl_gntdev_unmap_grant_ref", sizeof(struct ioctl_gntdev_unmap_grant_ref));
  E("sizeof_evtchn_port_t", sizeof(evtchn_port_t));
  printf("\n}\n");
  return 0;
}
