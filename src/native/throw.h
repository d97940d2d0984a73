// Shared by the addon's translation units: turn an errno (or a message)
// into a JS Error carrying `errno` and `syscall`, as Node's own errors do.
#pragma once

#include <node.h>
#include <v8.h>

#include <cstring>
#include <string>

namespace xenpv_native {

inline void Throw(v8::Isolate* iso, const std::string& msg, int err = 0, const char* syscall = nullptr) {
  std::string text = msg;
  if (err != 0) text += std::string(": ") + strerror(err);
  v8::Local<v8::Value> exc = v8::Exception::Error(v8::String::NewFromUtf8(iso, text.c_str()).ToLocalChecked());
  v8::Local<v8::Context> ctx = iso->GetCurrentContext();
  if (err != 0) {
    v8::Local<v8::Object> o = exc.As<v8::Object>();
    o->Set(ctx, v8::String::NewFromUtf8Literal(iso, "errno"), v8::Number::New(iso, err)).Check();
    if (syscall != nullptr) {
      o->Set(ctx, v8::String::NewFromUtf8Literal(iso, "syscall"),
             v8::String::NewFromUtf8(iso, syscall).ToLocalChecked()).Check();
    }
  }
  iso->ThrowException(exc);
}

}  // namespace xenpv_native
