import type { ResolvedMemory } from "./compose.ts";

export interface InstantiateOptions {
  /** For an allocator that imports its memory: the memory to give it. Default: a new one of the initial size. */
  readonly memory?: WebAssembly.Memory;
  /** Further imports, merged in. */
  readonly imports?: WebAssembly.Imports;
}

/**
 * A running allocator. Pointers and sizes are plain numbers (unsigned). Each C function throws
 * a clear error when the module does not export it.
 */
export interface AllocatorInstance {
  readonly instance: WebAssembly.Instance;
  readonly memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(ptr: number): void;
  calloc(n: number, size: number): number;
  realloc(ptr: number, size: number): number;
  aligned_alloc(align: number, size: number): number;
  malloc_usable_size(ptr: number): number;
  /** Any exported function by its function name (e.g. "reset"), wrapped to return unsigned numbers. */
  call(fn: string, ...args: number[]): number;
  /** `memory.buffer.byteLength`: the bytes of memory in use, allocator and host together. */
  memoryBytes(): number;
}

type WasmFn = (...args: number[]) => number | undefined;

export async function instantiateAllocator(
  binary: Uint8Array,
  memory: ResolvedMemory,
  exportMap: ReadonlyMap<string, string>,
  options: InstantiateOptions = {},
): Promise<AllocatorInstance> {
  const imports: WebAssembly.Imports = { ...options.imports };
  let importedMemory: WebAssembly.Memory | undefined;
  if (memory.mode === "import") {
    importedMemory = options.memory ?? new WebAssembly.Memory({ initial: memory.initialPages });
    imports[memory.importModule] = { ...imports[memory.importModule], [memory.name]: importedMemory };
  } else if (options.memory) {
    throw new Error("instantiate: this allocator owns its memory; build it with memory.mode 'import' to pass one");
  }
  const { instance } = await WebAssembly.instantiate(binary as BufferSource, imports);
  const mem = importedMemory ?? (instance.exports[memory.name] as WebAssembly.Memory);
  // Function name (malloc, reset...) -> the exported function.
  const byFunction = new Map<string, WasmFn>();
  for (const [exportName, fn] of exportMap) byFunction.set(fn, instance.exports[exportName] as WasmFn);
  const get = (fn: string): WasmFn => {
    const f = byFunction.get(fn);
    if (!f) throw new Error(`this allocator does not export ${fn} (exports: ${[...byFunction.keys()].join(", ")})`);
    return f;
  };
  const call = (fn: string, ...args: number[]): number => {
    const result = get(fn)(...args);
    return typeof result === "number" ? result >>> 0 : 0;
  };
  return {
    instance,
    memory: mem,
    malloc: (size) => call("malloc", size),
    free: (ptr) => void call("free", ptr),
    calloc: (n, size) => call("calloc", n, size),
    realloc: (ptr, size) => call("realloc", ptr, size),
    aligned_alloc: (align, size) => call("aligned_alloc", align, size),
    malloc_usable_size: (ptr) => call("malloc_usable_size", ptr),
    call,
    memoryBytes: () => mem.buffer.byteLength,
  };
}
