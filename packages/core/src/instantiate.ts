import type { ResolvedMemory } from "./compose.ts";
import { HeapFaultError, STAT_NAMES, type DebugInfo, type LayerStats, type StatsInfo } from "./debug.ts";
import { HEAP_STATS } from "./stats.ts";

export interface InstantiateOptions {
  /** For an allocator that imports its memory: the memory to give it. Default: a new one of the initial size. */
  readonly memory?: WebAssembly.Memory;
  /** Further imports, merged in. */
  readonly imports?: WebAssembly.Imports;
}

/**
 * A running allocator. Pointers and sizes are plain numbers (unsigned). Each C function throws
 * a clear error when the module does not export it.
 *
 * Every argument must be an integer from 0 to 2^32 - 1 (a wasm32 pointer or size; on a memory64
 * build, from 0 to 2^53 - 1, passed to Wasm as an i64): anything else (a negative number, 2^32
 * or more, a fraction, NaN, a string) throws a RangeError naming the function and the argument,
 * and nothing is called. (Wasm would take the number modulo 2^32: `malloc(2 ** 32 + 16)` would
 * return a 16-byte block.) Within that range C semantics hold: an impossible request returns 0.
 * Results are numbers on both widths (memory64 addresses stay below 2^47).
 */
export interface AllocatorInstance {
  readonly instance: WebAssembly.Instance;
  readonly memory: WebAssembly.Memory;
  /** A memory64 build: its exports take and return i64 (bigints; the wrappers here take numbers). */
  readonly memory64: boolean;
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
  /**
   * Debug builds: runs the heap walker (every invariant of every layer; a broken one throws a
   * {@link HeapFaultError}) and returns its statistics. Throws in a release build.
   */
  checkHeap(): HeapReport;
  /**
   * Stats builds (the `stats` option) and debug builds: runs `heap_stats` (every layer's walker;
   * in a debug build, the checking one) and returns its statistics, per layer, top first. Writes
   * nothing into memory and allocates nothing. Throws in a build without statistics.
   */
  heapStats(): HeapReport;
  /**
   * Debug builds: the fault a check of the allocator recorded when it trapped, as an error to
   * throw, and clears it; undefined when none is recorded (always, in a release build). The
   * wrappers above do this themselves; it is for traps that reach JS another way (an allocator
   * called from other Wasm code, such as the trace driver).
   */
  takeFault(cause?: unknown): HeapFaultError | undefined;
}

/** What the heap walker of a debug or stats build reports. */
export interface HeapReport {
  /**
   * Each layer's own blocks, top layer first. A layer's blocks are its parent's used blocks
   * (size-classes' chunks are used cells of the free list under it).
   */
  readonly layers: readonly LayerStats[];
  /** Free bytes in all layers together: memory the allocator holds that no live block uses. */
  readonly freeBytes: number;
  /** The largest free block of any layer. */
  readonly largestFree: number;
  /** `1 - largestFree / freeBytes` (0 when nothing is free): how scattered the free memory is. */
  readonly fragmentation: number;
}

type WasmFn = (...args: (number | bigint)[]) => number | bigint | undefined;

/** The parameters of the C functions, for messages. */
const PARAMS: Readonly<Record<string, readonly string[]>> = {
  malloc: ["size"],
  free: ["ptr"],
  calloc: ["n", "size"],
  realloc: ["ptr", "size"],
  aligned_alloc: ["align", "size"],
  malloc_usable_size: ["ptr"],
};

/** Throws a RangeError unless `value` is an integer in [0, 2^32) (in [0, 2^53) on memory64). */
function checkArgument(fn: string, index: number, value: unknown, memory64: boolean): void {
  const max = memory64 ? Number.MAX_SAFE_INTEGER : 0xffffffff;
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= max) return;
  const name = PARAMS[fn]?.[index] ?? `argument ${index + 1}`;
  const shown = typeof value === "string" ? JSON.stringify(value) : typeof value === "number" ? String(value) : typeof value;
  throw new RangeError(`${fn}: ${name} must be an integer from 0 to ${memory64 ? "2^53" : "2^32"} - 1, got ${shown}`);
}

/** A Wasm integer result (i32, or an i64 as a bigint) as an unsigned number. */
export function unsigned(value: unknown): number {
  if (typeof value === "bigint") return Number(BigInt.asUintN(64, value));
  return typeof value === "number" ? value >>> 0 : 0;
}

export async function instantiateAllocator(
  binary: Uint8Array,
  memory: ResolvedMemory,
  exportMap: ReadonlyMap<string, string>,
  debug: DebugInfo | undefined,
  stats: StatsInfo | undefined,
  options: InstantiateOptions = {},
): Promise<AllocatorInstance> {
  const imports: WebAssembly.Imports = { ...options.imports };
  let importedMemory: WebAssembly.Memory | undefined;
  if (memory.mode === "import") {
    // `index: "i64"` makes a memory64 memory (engines without memory64 ignore it).
    importedMemory =
      options.memory ??
      new WebAssembly.Memory({
        initial: memory.initialPages,
        ...(memory.shared && { maximum: memory.maximumPages!, shared: true }),
        ...(memory.memory64 && { index: "i64" }),
      } as WebAssembly.MemoryDescriptor);
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
  const global = (name: string) => unsigned((instance.exports[name] as WebAssembly.Global).value);
  const takeFault = (cause?: unknown): HeapFaultError | undefined => {
    const site = debug?.sites[global(debug.faultExport) - 1];
    if (!site) return undefined;
    (instance.exports[debug!.faultExport] as WebAssembly.Global).value = memory.memory64 ? 0n : 0;
    return new HeapFaultError(site, global(debug!.faultPtrExport), { cause });
  };
  const call = (fn: string, ...args: number[]): number => {
    const f = get(fn);
    args.forEach((value, i) => checkArgument(fn, i, value, memory.memory64));
    let result;
    try {
      result = f(...(memory.memory64 ? args.map(BigInt) : args));
    } catch (error) {
      // A debug build's check trapped: report its cause.
      throw (error instanceof WebAssembly.RuntimeError && takeFault(error)) || error;
    }
    return unsigned(result);
  };
  /** The statistics the walkers left in their globals. */
  const report = (info: StatsInfo): HeapReport => {
    const layers = info.map(({ layer, exports }) => {
      const values = Object.fromEntries(STAT_NAMES.map((s) => [s, global(exports[s])]));
      return { layer, ...values } as unknown as LayerStats;
    });
    const freeBytes = layers.reduce((sum, l) => sum + l.freeBytes, 0);
    const largestFree = Math.max(0, ...layers.map((l) => l.largestFree));
    return { layers, freeBytes, largestFree, fragmentation: freeBytes ? 1 - largestFree / freeBytes : 0 };
  };
  const checkHeap = (): HeapReport => {
    if (!debug) throw new Error("checkHeap: this is a release build; build with the debug option for the heap walker");
    call("heap_check");
    return report(debug.stats);
  };
  const heapStats = (): HeapReport => {
    if (!stats || !byFunction.has(HEAP_STATS)) {
      throw new Error(`heapStats: this build does not export ${HEAP_STATS}; build with the stats option`);
    }
    call(HEAP_STATS, 0);
    return report(stats);
  };
  return {
    instance,
    memory: mem,
    memory64: memory.memory64,
    malloc: (size) => call("malloc", size),
    free: (ptr) => void call("free", ptr),
    calloc: (n, size) => call("calloc", n, size),
    realloc: (ptr, size) => call("realloc", ptr, size),
    aligned_alloc: (align, size) => call("aligned_alloc", align, size),
    malloc_usable_size: (ptr) => call("malloc_usable_size", ptr),
    call,
    memoryBytes: () => mem.buffer.byteLength,
    checkHeap,
    heapStats,
    takeFault,
  };
}
