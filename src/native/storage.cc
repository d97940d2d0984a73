// xenpv_native, part 3: what the `file` flavour needs of a host file or
// block device that Node's fs cannot do.
//
//   punchHole(fd, offset, length)     fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
//   blkZeroout(fd, offset, length)    ioctl(BLKZEROOUT,  {offset, length})
//   blkGetSize64(fd)                  ioctl(BLKGETSIZE64) -> bytes
//   ofdLock(fd, exclusive)            fcntl(F_OFD_SETLK) on the whole file:
//                                     true = taken, false = held by another
//                                     open file description (EAGAIN/EACCES)
//
// OFD locks (Linux >= 3.15) belong to the open file description, not to the
// process: two opens in one process conflict (as two processes do), and the
// lock goes away with the last descriptor of that open. This is what QEMU
// uses for its image locking.
//
// All calls are synchronous system calls on the calling thread; each
// returns its result or throws Error{errno, syscall}. The TypeScript
// wrapper (storage.ts) validates arguments first.
#include <node.h>
#include <v8.h>

#include "throw.h"

#include <cerrno>
#include <cmath>
#include <cstdint>

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace {

using v8::Boolean;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Value;

using xenpv_native::Throw;

bool ToU53(Local<Value> v, uint64_t* out) {
  if (!v->IsNumber()) return false;
  double d = v.As<Number>()->Value();
  if (!std::isfinite(d) || d < 0 || d > 9007199254740991.0 || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

bool ToFd(Isolate* iso, Local<Value> v, int* fd) {
  uint64_t n = 0;
  if (!ToU53(v, &n) || n > 0x7fffffff) { Throw(iso, "fd: not a file descriptor"); return false; }
  *fd = static_cast<int>(n);
  return true;
}

// (fd, offset, length) with offset + length representable in off_t.
bool RangeArgs(const FunctionCallbackInfo<Value>& args, int* fd, uint64_t* off, uint64_t* len) {
  Isolate* iso = args.GetIsolate();
  if (!ToFd(iso, args[0], fd)) return false;
  if (!ToU53(args[1], off)) { Throw(iso, "offset: not a non-negative integer"); return false; }
  if (!ToU53(args[2], len) || *len == 0) { Throw(iso, "length: not a positive integer"); return false; }
  if (*off + *len > 9007199254740991ull) { Throw(iso, "length: range too large"); return false; }
  return true;
}

void PunchHole(const FunctionCallbackInfo<Value>& args) {
  int fd; uint64_t off, len;
  if (!RangeArgs(args, &fd, &off, &len)) return;
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len)) != 0) {
    Throw(args.GetIsolate(), "fallocate(PUNCH_HOLE)", errno, "fallocate");
  }
}

void BlkRange(const FunctionCallbackInfo<Value>& args, unsigned long request, const char* name) {
  int fd; uint64_t off, len;
  if (!RangeArgs(args, &fd, &off, &len)) return;
  uint64_t range[2] = {off, len};
  if (ioctl(fd, request, range) != 0) Throw(args.GetIsolate(), name, errno, "ioctl");
}

void BlkZeroout(const FunctionCallbackInfo<Value>& args) { BlkRange(args, BLKZEROOUT, "ioctl(BLKZEROOUT)"); }

void BlkGetSize64(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd;
  if (!ToFd(iso, args[0], &fd)) return;
  uint64_t bytes = 0;
  if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) { Throw(iso, "ioctl(BLKGETSIZE64)", errno, "ioctl"); return; }
  if (bytes > 9007199254740991ull) { Throw(iso, "BLKGETSIZE64: size does not fit in 2^53"); return; }
  args.GetReturnValue().Set(Number::New(iso, static_cast<double>(bytes)));
}

void OfdLock(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd;
  if (!ToFd(iso, args[0], &fd)) return;
  struct flock fl = {};
  fl.l_type = args[1]->IsTrue() ? F_WRLCK : F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // the whole file, however large it grows
  fl.l_pid = 0;  // required for OFD locks
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) { args.GetReturnValue().Set(Boolean::New(iso, true)); return; }
  if (errno == EAGAIN || errno == EACCES) { args.GetReturnValue().Set(Boolean::New(iso, false)); return; }
  Throw(iso, "fcntl(F_OFD_SETLK)", errno, "fcntl");
}

}  // namespace

void RegisterStorage(v8::Local<v8::Object> exports) {
  NODE_SET_METHOD(exports, "punchHole", PunchHole);
  NODE_SET_METHOD(exports, "blkZeroout", BlkZeroout);
  NODE_SET_METHOD(exports, "blkGetSize64", BlkGetSize64);
  NODE_SET_METHOD(exports, "ofdLock", OfdLock);
}
