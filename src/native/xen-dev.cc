// xenpv_native, part 2: thin wrappers over the Linux Xen devices.
//
//   /dev/xen/evtchn    IOCTL_EVTCHN_{BIND_UNBOUND_PORT,BIND_INTERDOMAIN,UNBIND,NOTIFY,RESET}
//                      (read()/write() of ports are plain fs calls in TypeScript)
//   /dev/xen/gntalloc  IOCTL_GNTALLOC_{ALLOC_GREF,DEALLOC_GREF,SET_UNMAP_NOTIFY}
//   /dev/xen/gntdev    IOCTL_GNTDEV_{MAP_GRANT_REF,UNMAP_GRANT_REF}
//
// Every struct and request number comes from the installed Linux UAPI headers
// (/usr/include/xen/sys/*.h, Debian libxen-dev); xenDevAbi() reports what this
// file was compiled with so a test can compare it with a C program built
// against the same headers (test/golden/xen-ioctl.c).
//
// Mapping the pages an ioctl set up (mmap(fd, index) over the Wasm memory)
// goes through addon.cc's mapIntoMemory; read-only foreign mappings pass its
// readOnly flag (PROT_READ: gntdev maps GNTMAP_readonly iff the vma is not
// writable).
//
// Each function returns its result or throws Error{errno, syscall}; the
// TypeScript wrapper (xen-dev.ts) validates arguments first and turns these
// into NativeError.
#include <node.h>
#include <v8.h>

#include "throw.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// domid_t for evtchn.h's ioctl_evtchn_restrict_domid.
#include <xen/xen.h>
#include <xen/event_channel.h>  // evtchn_port_t, the unit of read()/write()
#include <xen/sys/evtchn.h>
#include <xen/sys/gntalloc.h>
#include <xen/sys/gntdev.h>

namespace {

using v8::Array;
using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

// Largest grant batch one call accepts (gntdev's default limit is 64 Ki pages).
constexpr uint64_t kMaxGrants = 65536;

using xenpv_native::Throw;

// A non-negative integral double no larger than `max`.
bool ToUint(Local<Value> v, uint64_t max, uint64_t* out) {
  if (!v->IsNumber()) return false;
  double d = v.As<Number>()->Value();
  if (!std::isfinite(d) || d < 0 || d > static_cast<double>(max) || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

bool ArgFd(Isolate* iso, const FunctionCallbackInfo<Value>& args, int i, int* fd) {
  uint64_t v = 0;
  if (!ToUint(args[i], 0x7fffffff, &v)) { Throw(iso, "fd: not a file descriptor"); return false; }
  *fd = static_cast<int>(v);
  return true;
}

bool ArgU32(Isolate* iso, const FunctionCallbackInfo<Value>& args, int i, const char* name, uint64_t max,
            uint64_t* out) {
  if (!ToUint(args[i], max, out)) {
    Throw(iso, std::string(name) + ": not an integer in [0, " + std::to_string(max) + "]");
    return false;
  }
  return true;
}

// ioctl, retried on EINTR (none of these requests has done anything when it returns EINTR).
int Ioctl(int fd, unsigned long request, void* arg) {
  int rc;
  do {
    rc = ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

void Return(const FunctionCallbackInfo<Value>& args, double v) {
  args.GetReturnValue().Set(Number::New(args.GetIsolate(), v));
}

// ------------------------------------------------------------------ evtchn
// The bind ioctls return the new local port as the ioctl's value.

void EvtchnBindUnboundPort(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t remote = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "remoteDomain", 0xffff, &remote)) return;
  struct ioctl_evtchn_bind_unbound_port op = {};
  op.remote_domain = static_cast<unsigned int>(remote);
  int rc = Ioctl(fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, &op);
  if (rc < 0) { Throw(iso, "IOCTL_EVTCHN_BIND_UNBOUND_PORT", errno, "ioctl"); return; }
  Return(args, rc);
}

void EvtchnBindInterdomain(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t remote = 0, port = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "remoteDomain", 0xffff, &remote) ||
      !ArgU32(iso, args, 2, "remotePort", 0xffffffffu, &port)) return;
  struct ioctl_evtchn_bind_interdomain op = {};
  op.remote_domain = static_cast<unsigned int>(remote);
  op.remote_port = static_cast<unsigned int>(port);
  int rc = Ioctl(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &op);
  if (rc < 0) { Throw(iso, "IOCTL_EVTCHN_BIND_INTERDOMAIN", errno, "ioctl"); return; }
  Return(args, rc);
}

void EvtchnUnbind(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t port = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "port", 0xffffffffu, &port)) return;
  struct ioctl_evtchn_unbind op = {};
  op.port = static_cast<unsigned int>(port);
  if (Ioctl(fd, IOCTL_EVTCHN_UNBIND, &op) < 0) { Throw(iso, "IOCTL_EVTCHN_UNBIND", errno, "ioctl"); return; }
}

void EvtchnNotify(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t port = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "port", 0xffffffffu, &port)) return;
  struct ioctl_evtchn_notify op = {};
  op.port = static_cast<unsigned int>(port);
  if (Ioctl(fd, IOCTL_EVTCHN_NOTIFY, &op) < 0) { Throw(iso, "IOCTL_EVTCHN_NOTIFY", errno, "ioctl"); return; }
}

void EvtchnReset(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  if (!ArgFd(iso, args, 0, &fd)) return;
  if (Ioctl(fd, IOCTL_EVTCHN_RESET, nullptr) < 0) { Throw(iso, "IOCTL_EVTCHN_RESET", errno, "ioctl"); return; }
}

// ---------------------------------------------------------------- gntalloc
// ioctl_gntalloc_alloc_gref ends in a variable array gref_ids[count]; the
// buffer is sized for `count` entries (the struct already holds one).

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// gntallocAllocGref(fd, domid, flags, count) -> { index, grefs: number[] }
void GntallocAllocGref(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t domid = 0, flags = 0, count = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "domid", 0xffff, &domid) ||
      !ArgU32(iso, args, 2, "flags", 0xffff, &flags) || !ArgU32(iso, args, 3, "count", kMaxGrants, &count)) return;
  if (count == 0) { Throw(iso, "count: must be > 0"); return; }
  const size_t bytes = sizeof(struct ioctl_gntalloc_alloc_gref) + (count - 1) * sizeof(uint32_t);
  std::unique_ptr<struct ioctl_gntalloc_alloc_gref, FreeDeleter> op(
      static_cast<struct ioctl_gntalloc_alloc_gref*>(std::calloc(1, bytes)));
  if (!op) { Throw(iso, "gntallocAllocGref", ENOMEM, "calloc"); return; }
  op->domid = static_cast<uint16_t>(domid);
  op->flags = static_cast<uint16_t>(flags);
  op->count = static_cast<uint32_t>(count);
  if (Ioctl(fd, IOCTL_GNTALLOC_ALLOC_GREF, op.get()) < 0) {
    Throw(iso, "IOCTL_GNTALLOC_ALLOC_GREF", errno, "ioctl");
    return;
  }
  Local<Context> ctx = iso->GetCurrentContext();
  Local<Array> grefs = Array::New(iso, static_cast<int>(count));
  for (uint32_t i = 0; i < count; i++) grefs->Set(ctx, i, Number::New(iso, op->gref_ids[i])).Check();
  Local<Object> out = Object::New(iso);
  out->Set(ctx, String::NewFromUtf8Literal(iso, "index"), Number::New(iso, static_cast<double>(op->index))).Check();
  out->Set(ctx, String::NewFromUtf8Literal(iso, "grefs"), grefs).Check();
  args.GetReturnValue().Set(out);
}

// gntallocDeallocGref(fd, index, count)
void GntallocDeallocGref(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t index = 0, count = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "index", 9007199254740991ull, &index) ||
      !ArgU32(iso, args, 2, "count", kMaxGrants, &count)) return;
  struct ioctl_gntalloc_dealloc_gref op = {};
  op.index = index;
  op.count = static_cast<uint32_t>(count);
  if (Ioctl(fd, IOCTL_GNTALLOC_DEALLOC_GREF, &op) < 0) { Throw(iso, "IOCTL_GNTALLOC_DEALLOC_GREF", errno, "ioctl"); return; }
}

// gntallocSetUnmapNotify(fd, index, action, port)
void GntallocSetUnmapNotify(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t index = 0, action = 0, port = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "index", 9007199254740991ull, &index) ||
      !ArgU32(iso, args, 2, "action", 0xffffffffu, &action) || !ArgU32(iso, args, 3, "port", 0xffffffffu, &port)) return;
  struct ioctl_gntalloc_unmap_notify op = {};
  op.index = index;
  op.action = static_cast<uint32_t>(action);
  op.event_channel_port = static_cast<uint32_t>(port);
  if (Ioctl(fd, IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, &op) < 0) {
    Throw(iso, "IOCTL_GNTALLOC_SET_UNMAP_NOTIFY", errno, "ioctl");
    return;
  }
}

// ------------------------------------------------------------------ gntdev

// gntdevMapGrantRef(fd, domid, refs: number[]) -> index (the mmap offset)
void GntdevMapGrantRef(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t domid = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "domid", 0xffff, &domid)) return;
  if (!args[2]->IsArray()) { Throw(iso, "refs: expected an array of grant references"); return; }
  Local<Array> refs = args[2].As<Array>();
  const uint64_t count = refs->Length();
  if (count == 0 || count > kMaxGrants) { Throw(iso, "refs: between 1 and 65536 grant references"); return; }
  const size_t bytes = sizeof(struct ioctl_gntdev_map_grant_ref) + (count - 1) * sizeof(struct ioctl_gntdev_grant_ref);
  std::unique_ptr<struct ioctl_gntdev_map_grant_ref, FreeDeleter> op(
      static_cast<struct ioctl_gntdev_map_grant_ref*>(std::calloc(1, bytes)));
  if (!op) { Throw(iso, "gntdevMapGrantRef", ENOMEM, "calloc"); return; }
  Local<Context> ctx = iso->GetCurrentContext();
  for (uint32_t i = 0; i < count; i++) {
    uint64_t ref;
    Local<Value> v;
    if (!refs->Get(ctx, i).ToLocal(&v) || !ToUint(v, 0xffffffffu, &ref)) {
      Throw(iso, "refs: every grant reference must be an integer in [0, 4294967295]");
      return;
    }
    op->refs[i].domid = static_cast<uint32_t>(domid);
    op->refs[i].ref = static_cast<uint32_t>(ref);
  }
  op->count = static_cast<uint32_t>(count);
  if (Ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, op.get()) < 0) {
    Throw(iso, "IOCTL_GNTDEV_MAP_GRANT_REF", errno, "ioctl");
    return;
  }
  Return(args, static_cast<double>(op->index));
}

// gntdevUnmapGrantRef(fd, index, count): after the pages were munmapped.
void GntdevUnmapGrantRef(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd = -1;
  uint64_t index = 0, count = 0;
  if (!ArgFd(iso, args, 0, &fd) || !ArgU32(iso, args, 1, "index", 9007199254740991ull, &index) ||
      !ArgU32(iso, args, 2, "count", kMaxGrants, &count)) return;
  struct ioctl_gntdev_unmap_grant_ref op = {};
  op.index = index;
  op.count = static_cast<uint32_t>(count);
  if (Ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &op) < 0) { Throw(iso, "IOCTL_GNTDEV_UNMAP_GRANT_REF", errno, "ioctl"); return; }
}

// -------------------------------------------------------------------- ABI

#define XEN_ABI_ENTRY(name, value) \
  o->Set(ctx, String::NewFromUtf8Literal(iso, name), Number::New(iso, static_cast<double>(value))).Check()

// xenDevAbi() -> { name: number }: request numbers, struct sizes and field
// offsets as compiled here. Names match test/golden/xen-ioctl.c.
void XenDevAbi(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  Local<Context> ctx = iso->GetCurrentContext();
  Local<Object> o = Object::New(iso);
  XEN_ABI_ENTRY("IOCTL_EVTCHN_BIND_INTERDOMAIN", IOCTL_EVTCHN_BIND_INTERDOMAIN);
  XEN_ABI_ENTRY("IOCTL_EVTCHN_BIND_UNBOUND_PORT", IOCTL_EVTCHN_BIND_UNBOUND_PORT);
  XEN_ABI_ENTRY("IOCTL_EVTCHN_UNBIND", IOCTL_EVTCHN_UNBIND);
  XEN_ABI_ENTRY("IOCTL_EVTCHN_NOTIFY", IOCTL_EVTCHN_NOTIFY);
  XEN_ABI_ENTRY("IOCTL_EVTCHN_RESET", IOCTL_EVTCHN_RESET);
  XEN_ABI_ENTRY("IOCTL_GNTALLOC_ALLOC_GREF", IOCTL_GNTALLOC_ALLOC_GREF);
  XEN_ABI_ENTRY("IOCTL_GNTALLOC_DEALLOC_GREF", IOCTL_GNTALLOC_DEALLOC_GREF);
  XEN_ABI_ENTRY("IOCTL_GNTALLOC_SET_UNMAP_NOTIFY", IOCTL_GNTALLOC_SET_UNMAP_NOTIFY);
  XEN_ABI_ENTRY("IOCTL_GNTDEV_MAP_GRANT_REF", IOCTL_GNTDEV_MAP_GRANT_REF);
  XEN_ABI_ENTRY("IOCTL_GNTDEV_UNMAP_GRANT_REF", IOCTL_GNTDEV_UNMAP_GRANT_REF);
  XEN_ABI_ENTRY("GNTALLOC_FLAG_WRITABLE", GNTALLOC_FLAG_WRITABLE);
  XEN_ABI_ENTRY("UNMAP_NOTIFY_CLEAR_BYTE", UNMAP_NOTIFY_CLEAR_BYTE);
  XEN_ABI_ENTRY("UNMAP_NOTIFY_SEND_EVENT", UNMAP_NOTIFY_SEND_EVENT);
  XEN_ABI_ENTRY("sizeof_ioctl_evtchn_bind_interdomain", sizeof(struct ioctl_evtchn_bind_interdomain));
  XEN_ABI_ENTRY("sizeof_ioctl_evtchn_bind_unbound_port", sizeof(struct ioctl_evtchn_bind_unbound_port));
  XEN_ABI_ENTRY("sizeof_ioctl_gntalloc_alloc_gref", sizeof(struct ioctl_gntalloc_alloc_gref));
  XEN_ABI_ENTRY("offsetof_ioctl_gntalloc_alloc_gref_domid", offsetof(struct ioctl_gntalloc_alloc_gref, domid));
  XEN_ABI_ENTRY("offsetof_ioctl_gntalloc_alloc_gref_flags", offsetof(struct ioctl_gntalloc_alloc_gref, flags));
  XEN_ABI_ENTRY("offsetof_ioctl_gntalloc_alloc_gref_count", offsetof(struct ioctl_gntalloc_alloc_gref, count));
  XEN_ABI_ENTRY("offsetof_ioctl_gntalloc_alloc_gref_index", offsetof(struct ioctl_gntalloc_alloc_gref, index));
  XEN_ABI_ENTRY("offsetof_ioctl_gntalloc_alloc_gref_gref_ids", offsetof(struct ioctl_gntalloc_alloc_gref, gref_ids));
  XEN_ABI_ENTRY("sizeof_ioctl_gntalloc_dealloc_gref", sizeof(struct ioctl_gntalloc_dealloc_gref));
  XEN_ABI_ENTRY("sizeof_ioctl_gntalloc_unmap_notify", sizeof(struct ioctl_gntalloc_unmap_notify));
  XEN_ABI_ENTRY("sizeof_ioctl_gntdev_grant_ref", sizeof(struct ioctl_gntdev_grant_ref));
  XEN_ABI_ENTRY("sizeof_ioctl_gntdev_map_grant_ref", sizeof(struct ioctl_gntdev_map_grant_ref));
  XEN_ABI_ENTRY("offsetof_ioctl_gntdev_map_grant_ref_index", offsetof(struct ioctl_gntdev_map_grant_ref, index));
  XEN_ABI_ENTRY("offsetof_ioctl_gntdev_map_grant_ref_refs", offsetof(struct ioctl_gntdev_map_grant_ref, refs));
  XEN_ABI_ENTRY("sizeof_ioctl_gntdev_unmap_grant_ref", sizeof(struct ioctl_gntdev_unmap_grant_ref));
  XEN_ABI_ENTRY("sizeof_evtchn_port_t", sizeof(evtchn_port_t));
  args.GetReturnValue().Set(o);
}

#undef XEN_ABI_ENTRY

}  // namespace

// Called from addon.cc's NODE_MODULE_INIT.
void RegisterXenDev(Local<Object> exports) {
  NODE_SET_METHOD(exports, "evtchnBindUnboundPort", EvtchnBindUnboundPort);
  NODE_SET_METHOD(exports, "evtchnBindInterdomain", EvtchnBindInterdomain);
  NODE_SET_METHOD(exports, "evtchnUnbind", EvtchnUnbind);
  NODE_SET_METHOD(exports, "evtchnNotify", EvtchnNotify);
  NODE_SET_METHOD(exports, "evtchnReset", EvtchnReset);
  NODE_SET_METHOD(exports, "gntallocAllocGref", GntallocAllocGref);
  NODE_SET_METHOD(exports, "gntallocDeallocGref", GntallocDeallocGref);
  NODE_SET_METHOD(exports, "gntallocSetUnmapNotify", GntallocSetUnmapNotify);
  NODE_SET_METHOD(exports, "gntdevMapGrantRef", GntdevMapGrantRef);
  NODE_SET_METHOD(exports, "gntdevUnmapGrantRef", GntdevUnmapGrantRef);
  NODE_SET_METHOD(exports, "xenDevAbi", XenDevAbi);
}
