/**
 * The slice of the WebAssembly JS API this package uses. @types/node 20 does
 * not declare it and lib.dom would drag the whole DOM in; these match the
 * WebAssembly JS API spec (and lib.dom's declarations) for what we touch.
 */
declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  type ImportValue = Function | Global | Memory | Table | number;
  type ModuleImports = Record<string, ImportValue>;
  type Imports = Record<string, ModuleImports>;
  type ExportValue = Function | Global | Memory | Table;
  type Exports = Record<string, ExportValue>;
  class Global {
    constructor(descriptor: { value: string; mutable?: boolean }, v?: number | bigint);
    value: number | bigint;
  }
  class Table {
    readonly length: number;
  }
  interface ModuleExportDescriptor {
    kind: 'function' | 'global' | 'memory' | 'table';
    name: string;
  }
  interface ModuleImportDescriptor {
    kind: 'function' | 'global' | 'memory' | 'table';
    module: string;
    name: string;
  }
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
    static exports(module: Module): ModuleExportDescriptor[];
    static imports(module: Module): ModuleImportDescriptor[];
  }
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Exports;
  }
  interface WebAssemblyInstantiatedSource {
    instance: Instance;
    module: Module;
  }
  function instantiate(bytes: ArrayBufferView | ArrayBuffer, imports?: Imports): Promise<WebAssemblyInstantiatedSource>;
  function instantiate(module: Module, imports?: Imports): Promise<Instance>;
  function compile(bytes: ArrayBufferView | ArrayBuffer): Promise<Module>;
  function validate(bytes: ArrayBufferView | ArrayBuffer): boolean;
  class CompileError extends Error {}
  class LinkError extends Error {}
  class RuntimeError extends Error {}
}
