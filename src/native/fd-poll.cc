// xenpv_native, part 3: readiness of a character device on the event loop.
//
// /dev/xen/xenbus and /dev/xen/evtchn block in read() until the kernel has
// something. A read parked on libuv's thread pool cannot be cancelled: close()
// of the fd does not end it, and at exit libuv joins its pool threads, so the
// process never exits (not even on process.exit()). Both devices implement
// poll() and honour O_NONBLOCK, so instead the fd is watched by a uv_poll_t on
// the loop of the calling thread and read without blocking when it is
// readable. Stopping the watcher ends the wait at once; nothing is left in
// any thread.
//
//   fdPollStart(fd, cb) -> id   uv_poll_init (sets O_NONBLOCK) + start
//                               (UV_READABLE); cb(status, events) on the loop;
//                               status < 0 is a libuv error (e.g. UV_EBADF)
//   fdPollRef(id, ref)          uv_ref / uv_unref: whether it keeps the loop alive
//   fdPollStop(id)              uv_poll_stop + uv_close; cb is never called again.
//                               Call it BEFORE closing the fd.
#include <node.h>
#include <uv.h>
#include <v8.h>

#include "throw.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace {

using v8::Context;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::Global;
using v8::HandleScope;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::Value;

using xenpv_native::Throw;

struct Watcher {
  uv_poll_t handle;
  Isolate* isolate;
  Global<Function> callback;
  Global<Object> receiver;
  double id;
};

// Watchers by id; worker threads may each have their own, hence the lock.
std::mutex watchersLock;
std::map<double, Watcher*> watchers;
double nextId = 1;

Watcher* Find(double id) {
  std::lock_guard<std::mutex> guard(watchersLock);
  auto it = watchers.find(id);
  return it == watchers.end() ? nullptr : it->second;
}

void OnClosed(uv_handle_t* h) {
  Watcher* w = static_cast<Watcher*>(h->data);
  w->callback.Reset();
  w->receiver.Reset();
  delete w;
}

void OnReadable(uv_poll_t* h, int status, int events) {
  Watcher* w = static_cast<Watcher*>(h->data);
  Isolate* iso = w->isolate;
  HandleScope scope(iso);
  Local<Function> fn = w->callback.Get(iso);
  Local<Object> recv = w->receiver.Get(iso);
  Local<Value> argv[2] = {Integer::New(iso, status), Integer::New(iso, events)};
  // MakeCallback runs the microtasks queued by the callback (promise
  // continuations), as any libuv-driven callback in Node does.
  node::MakeCallback(iso, recv, fn, 2, argv, node::async_context{0, 0});
}

bool ArgId(const FunctionCallbackInfo<Value>& args, double* id) {
  if (!args[0]->IsNumber()) return false;
  *id = args[0].As<Number>()->Value();
  return std::isfinite(*id);
}

void FdPollStart(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  if (!args[0]->IsNumber()) { Throw(iso, "fd: not a file descriptor"); return; }
  const double d = args[0].As<Number>()->Value();
  if (!std::isfinite(d) || d < 0 || d > 0x7fffffff || std::floor(d) != d) { Throw(iso, "fd: not a file descriptor"); return; }
  if (!args[1]->IsFunction()) { Throw(iso, "callback: expected a function"); return; }
  uv_loop_t* loop = node::GetCurrentEventLoop(iso);
  if (loop == nullptr) { Throw(iso, "no event loop on this thread"); return; }
  Watcher* w = new Watcher();
  w->isolate = iso;
  int rc = uv_poll_init(loop, &w->handle, static_cast<int>(d));
  if (rc != 0) {
    delete w;
    Throw(iso, std::string("uv_poll_init: ") + uv_strerror(rc), -rc, "poll");
    return;
  }
  w->handle.data = w;
  rc = uv_poll_start(&w->handle, UV_READABLE, OnReadable);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), OnClosed);
    Throw(iso, std::string("uv_poll_start: ") + uv_strerror(rc), -rc, "poll");
    return;
  }
  w->callback.Reset(iso, args[1].As<Function>());
  w->receiver.Reset(iso, Object::New(iso));
  {
    std::lock_guard<std::mutex> guard(watchersLock);
    w->id = nextId++;
    watchers[w->id] = w;
  }
  args.GetReturnValue().Set(Number::New(iso, w->id));
}

void FdPollRef(const FunctionCallbackInfo<Value>& args) {
  double id = 0;
  Watcher* w = ArgId(args, &id) ? Find(id) : nullptr;
  if (w == nullptr) { Throw(args.GetIsolate(), "fdPollRef: no such watcher"); return; }
  if (args[1]->IsTrue()) uv_ref(reinterpret_cast<uv_handle_t*>(&w->handle));
  else uv_unref(reinterpret_cast<uv_handle_t*>(&w->handle));
}

void FdPollStop(const FunctionCallbackInfo<Value>& args) {
  double id = 0;
  if (!ArgId(args, &id)) { Throw(args.GetIsolate(), "fdPollStop: id must be a number"); return; }
  Watcher* w = nullptr;
  {
    std::lock_guard<std::mutex> guard(watchersLock);
    auto it = watchers.find(id);
    if (it == watchers.end()) return;  // stopped already: stopping twice is harmless
    w = it->second;
    watchers.erase(it);
  }
  // Stop first (the fd leaves epoll now), then free once libuv is done with the handle.
  uv_poll_stop(&w->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), OnClosed);
}

}  // namespace

// Called from addon.cc's NODE_MODULE_INIT.
void RegisterFdPoll(Local<Object> exports) {
  NODE_SET_METHOD(exports, "fdPollStart", FdPollStart);
  NODE_SET_METHOD(exports, "fdPollRef", FdPollRef);
  NODE_SET_METHOD(exports, "fdPollStop", FdPollStop);
}
