// xenpv_native, part 5: one-byte event wakes on a FIFO (or any fd), for
// event ports whose peer is a foreign process (tools/bench/cross-thread).
//
// fs.writeSync / fs.readSync cost about 2-3 us of Node-side work around a
// one-byte syscall (argument validation, a Buffer view, the libuv fs
// request). These are the bare syscalls:
//
//   fdWriteByte(fd) -> 1      write(fd, &1, 1), retried on EINTR
//   fdReadBytes(fd) -> n      read(fd, buf, 64), blocking, retried on EINTR;
//                             n bytes were taken (0 = end of file)
//
// A failed syscall throws an Error with `errno` and `syscall` set (EBADF for
// a closed fd, EAGAIN for a full or empty non-blocking one); a non-integer
// fd throws before any syscall. Blocking: call fdReadBytes only off the
// main thread (a worker), as fs.readSync would be.
#include <node.h>
#include <v8.h>

#include "throw.h"

#include <cerrno>
#include <cmath>
#include <cstdint>

#include <unistd.h>

namespace {

using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::Value;

using xenpv_native::Throw;

bool ToFd(Isolate* iso, Local<Value> v, int* fd) {
  if (!v->IsNumber()) { Throw(iso, "fd: not a number"); return false; }
  double d = v.As<Number>()->Value();
  if (!std::isfinite(d) || std::floor(d) != d || d < 0 || d > 2147483647.0) {
    Throw(iso, "fd: not a file descriptor");
    return false;
  }
  *fd = static_cast<int>(d);
  return true;
}

void FdWriteByte(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd;
  if (!ToFd(iso, args[0], &fd)) return;
  static const uint8_t one = 1;
  ssize_t n;
  do { n = write(fd, &one, 1); } while (n < 0 && errno == EINTR);
  if (n < 0) { Throw(iso, "write", errno, "write"); return; }
  args.GetReturnValue().Set(static_cast<double>(n));
}

void FdReadBytes(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  int fd;
  if (!ToFd(iso, args[0], &fd)) return;
  uint8_t buf[64];
  ssize_t n;
  do { n = read(fd, buf, sizeof buf); } while (n < 0 && errno == EINTR);
  if (n < 0) { Throw(iso, "read", errno, "read"); return; }
  args.GetReturnValue().Set(static_cast<double>(n));
}

}  // namespace

void RegisterWake(Local<Object> exports) {
  NODE_SET_METHOD(exports, "fdWriteByte", FdWriteByte);
  NODE_SET_METHOD(exports, "fdReadBytes", FdReadBytes);
}
