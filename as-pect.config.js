// as-pect runs assembly/__tests__/*.spec.ts with its own (managed) runtime and
// an unshared, module-owned memory; the modules under test only use
// load/store and atomics, so they compile unchanged. Test buffers come from
// memory.data (static, zeroed), never from the page pool of the real build.
export default {
  entries: ['assembly/__tests__/**/*.spec.ts'],
  include: ['assembly/__tests__/**/*.include.ts'],
  disclude: [/node_modules/],
  async instantiate(memory, createImports, instantiate, binary) {
    return instantiate(binary, createImports({ env: { memory } }));
  },
  outputBinary: false,
};
