{
  "targets": [
    {
      "target_name": "xenpv_native",
      "sources": ["src/native/addon.cc", "src/native/xen-dev.cc", "src/native/fd-poll.cc", "src/native/storage.cc", "src/native/wake.cc"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"],
      "conditions": [
        ["OS!='linux'", {
          "actions": [{
            "action_name": "linux_only",
            "inputs": [], "outputs": ["linux_only"],
            "action": ["sh", "-c", "echo 'xenpv_native: Linux only (mmap MAP_FIXED over Wasm memory, memfd_create)' >&2; exit 1"]
          }]
        }]
      ]
    }
  ]
}
