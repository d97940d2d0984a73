// xenpv_native: map file pages over a shared Wasm memory.
//
// Node-API has no SharedArrayBuffer support on Node 20, so this uses V8
// directly: a shared WebAssembly.Memory's `buffer` is one contiguous mapping
// whose base is BackingStore::Data(). mmap(MAP_FIXED|MAP_SHARED) over a
// page-aligned part of it makes Wasm loads/stores hit the file's pages.
//
// The TypeScript wrapper (src/native/index.ts) validates every argument
// against the memory layout first; the checks here are the last line of
// defence (bounds, alignment) and never trust the caller.
//
// Exports:
//   mapIntoMemory(sab, offset, fd, fileOffset, length)   -> undefined
//   unmapFromMemory(sab, offset, length)                  -> undefined
//   memfdCreate(name, size)                               -> fd
//   pageSize()                                            -> sysconf(_SC_PAGESIZE)
// Errors are thrown as Error with `errno` (number) and `syscall` (string)
// set where a system call failed.
#include <node.h>
#include <v8.h>

#include "throw.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

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

using xenpv_native::Throw;

// A non-negative integral double that fits exactly in 2^53.
bool ToSize(Local<Value> v, uint64_t* out) {
  if (!v->IsNumber()) return false;
  double d = v.As<Number>()->Value();
  if (!std::isfinite(d) || d < 0 || d > 9007199254740991.0 || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

struct Region {
  uint8_t* base;
  size_t length;
};

// Resolve (sab, offset, length) to a page-aligned region inside the buffer.
bool ResolveRegion(Isolate* iso, const FunctionCallbackInfo<Value>& args, int offArg, int lenArg,
                   Region* out) {
  if (!args[0]->IsSharedArrayBuffer()) {
    Throw(iso, "buffer: expected a SharedArrayBuffer (WebAssembly.Memory.buffer)");
    return false;
  }
  auto store = args[0].As<SharedArrayBuffer>()->GetBackingStore();
  uint8_t* data = static_cast<uint8_t*>(store->Data());
  size_t byteLength = store->ByteLength();
  uint64_t offset = 0, length = 0;
  if (!ToSize(args[offArg], &offset)) { Throw(iso, "offset: not a non-negative integer"); return false; }
  if (!ToSize(args[lenArg], &length)) { Throw(iso, "length: not a non-negative integer"); return false; }
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (length == 0) { Throw(iso, "length: must be > 0"); return false; }
  if (offset % page != 0) { Throw(iso, "offset: not page-aligned"); return false; }
  if (length % page != 0) { Throw(iso, "length: not a multiple of the page size"); return false; }
  if (offset > byteLength || length > byteLength - offset) {
    Throw(iso, "length: region runs past the end of the buffer");
    return false;
  }
  if (reinterpret_cast<uintptr_t>(data) % page != 0) {
    Throw(iso, "buffer: backing store is not page-aligned");
    return false;
  }
  out->base = data + offset;
  out->length = static_cast<size_t>(length);
  return true;
}

void MapIntoMemory(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  Region r;
  if (!ResolveRegion(iso, args, 1, 4, &r)) return;
  uint64_t fd = 0, fileOffset = 0;
  if (!ToSize(args[2], &fd) || fd > 0x7fffffff) { Throw(iso, "fd: not a file descriptor"); return; }
  if (!ToSize(args[3], &fileOffset)) { Throw(iso, "fileOffset: not a non-negative integer"); return; }
  if (fileOffset % static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) != 0) {
    Throw(iso, "fileOffset: not page-aligned");
    return;
  }
  // Optional 6th argument: map read-only (gntdev maps a read-only grant only for PROT_READ).
  const int prot = args.Length() > 5 && args[5]->IsTrue() ? PROT_READ : PROT_READ | PROT_WRITE;
  struct stat st;
  if (fstat(static_cast<int>(fd), &st) != 0) { Throw(iso, "fd", errno, "fstat"); return; }
  void* at = mmap(r.base, r.length, prot, MAP_SHARED | MAP_FIXED,
                  static_cast<int>(fd), static_cast<off_t>(fileOffset));
  if (at == MAP_FAILED) { Throw(iso, "mmap", errno, "mmap"); return; }
}

void UnmapFromMemory(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  Region r;
  if (!ResolveRegion(iso, args, 1, 2, &r)) return;
  // Fresh private zero pages, as the memory had before mapIntoMemory.
  void* at = mmap(r.base, r.length, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (at == MAP_FAILED) { Throw(iso, "mmap", errno, "mmap"); return; }
}

void MemfdCreate(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  if (!args[0]->IsString()) { Throw(iso, "name: expected a string"); return; }
  uint64_t size = 0;
  if (!ToSize(args[1], &size)) { Throw(iso, "size: not a non-negative integer"); return; }
  String::Utf8Value name(iso, args[0]);
  // No MFD_CLOEXEC: the descriptor is meant to be inherited / opened via
  // /proc/<pid>/fd/<n> by a peer process.
  int fd = memfd_create(*name, 0);
  if (fd < 0) { Throw(iso, "memfd_create", errno, "memfd_create"); return; }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    close(fd);
    Throw(iso, "ftruncate", err, "ftruncate");
    return;
  }
  args.GetReturnValue().Set(Number::New(iso, fd));
}

void PageSize(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(Number::New(args.GetIsolate(), static_cast<double>(sysconf(_SC_PAGESIZE))));
}

}  // namespace

// xen-dev.cc: /dev/xen/{evtchn,gntalloc,gntdev} ioctls.
void RegisterXenDev(v8::Local<v8::Object> exports);
// fd-poll.cc: event-loop readiness of a character device.
void RegisterFdPoll(v8::Local<v8::Object> exports);
// storage.cc: hole punching, block-device ioctls, OFD image locks.
void RegisterStorage(v8::Local<v8::Object> exports);
// wake.cc: one-byte event writes/reads without fs.*Sync's overhead.
void RegisterWake(v8::Local<v8::Object> exports);

// Context-aware so worker_threads may load it too.
NODE_MODULE_INIT(/* exports, module, context */) {
  NODE_SET_METHOD(exports, "mapIntoMemory", MapIntoMemory);
  NODE_SET_METHOD(exports, "unmapFromMemory", UnmapFromMemory);
  NODE_SET_METHOD(exports, "memfdCreate", MemfdCreate);
  NODE_SET_METHOD(exports, "pageSize", PageSize);
  RegisterXenDev(exports);
  RegisterFdPoll(exports);
  RegisterStorage(exports);
  RegisterWake(exports);
}
