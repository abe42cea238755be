import binaryen from "binaryen";
import { C_FUNCTIONS, emitCApi, type CFunction } from "./c-api.ts";
import { Codegen, PAGE_SIZE } from "./codegen.ts";
import type {
  AllocatorFunctions,
  BuildGoal,
  BuildLimits,
  EmitContext,
  MemoryDescription,
  PageBackend,
  Parent,
  ReservedRange,
  Strategy,
} from "./contracts.ts";
import { DebugBuild, STAT_NAMES, StatGlobals, type DebugInfo, type StatName, type StatsInfo } from "./debug.ts";
import { emitHeapStats, HEAP_STATS } from "./stats.ts";
import { AllocConfigError, check, checkOptions, describeValue, isPowerOfTwo } from "./errors.ts";
import { assumesExclusiveMemory, growBackend, MEMORY64_MAX_PAGES, WASM32_MAX_PAGES } from "./grow-backend.ts";
import { instantiateAllocator, type AllocatorInstance, type InstantiateOptions } from "./instantiate.ts";
import { withOptimizeSettings, type OptimizeMode } from "./optimize.ts";
import {
  DEFAULT_STATE_ADDRESS,
  emitLocked,
  resolveThreads,
  THREAD_STATE_BYTES,
  type ResolvedThreads,
  type ThreadOptions,
} from "./threads.ts";
import { emitThreadCache, resolveThreadCache, THREAD_CACHE_FLUSH, type ResolvedThreadCache, type ThreadCacheOptions } from "./thread-cache.ts";

/** The heap walker a debug build exports. */
export const HEAP_CHECK = "heap_check";

/** The C functions exported when `exports` is not given. */
export const DEFAULT_EXPORTS: readonly CFunction[] = ["malloc", "free", "calloc", "realloc", "aligned_alloc"];

/** The default minimum alignment of every block: 8 bytes (i64 and f64). */
export const DEFAULT_MIN_ALIGN = 8;

/** What every allocator is made of. */
export interface AllocatorOptions {
  /** The strategy stack, top first: `[sizeClasses(), freeList()]`, or a single strategy. */
  readonly strategy: Strategy | readonly Strategy[];
  /** Where fresh pages come from. Default: {@link growBackend} (`memory.grow`). */
  readonly backend?: PageBackend;
  /** Alignment of every block malloc returns: a power of two from the pointer size to 65536. Default 8. */
  readonly minAlign?: number;
  /**
   * What the emitted code favours: "speed" lets strategies add fast paths that cost bytes, "size"
   * leaves them out (see `EmitContext.goal`). Default: "speed" when `buildAllocator` optimises for
   * speed, else "size" (so `installAllocator` into a module that will be optimised for speed should
   * pass "speed").
   */
  readonly goal?: BuildGoal;
  /** Prefix of every emitted name (see {@link Codegen}). Default `~alloc`. */
  readonly prefix?: string;
  /**
   * Use bulk-memory instructions (`memory.fill`, `memory.copy`). Default: true for a standalone
   * module; for {@link installAllocator}, whether the target module has the feature enabled.
   */
  readonly bulkMemory?: boolean;
  /**
   * A debug build (default false): free memory is poisoned and checked when reused; a double
   * free, an invalid pointer or a broken invariant traps, and the instance wrapper reports the
   * cause as a {@link HeapFaultError}; the function `heap_check` walks every layer's structures,
   * checks every invariant and records statistics. Slower and larger; a release build contains
   * none of this code.
   */
  readonly debug?: boolean;
  /**
   * Heap statistics (default false): exports `heap_stats(ptr)`, which walks every layer and
   * writes bytes and blocks in use and free, and the largest free block, per layer (see
   * `stats.ts` for the struct), in a release build: the walkers without the debug build's checks.
   * Costs code (measured in the README) and nothing on malloc and free but for the counters a
   * layer keeps where it cannot walk (bump's live blocks, size-classes' blocks in use).
   */
  readonly stats?: boolean;
  /**
   * A thread-safe build (default false): every function may be called from any number of threads
   * at once, each thread an instance of the module over one shared memory. The heap's state lives
   * in a small area of that memory instead of in globals, and every function runs under one lock
   * (`i32.atomic.rmw.cmpxchg`, spinning; or sleeping in `memory.atomic.wait32` with `wait`). A
   * standalone module then imports a shared memory with a maximum; {@link installAllocator} needs
   * the module's memory to be shared. `true`, or {@link ThreadOptions} (`wait`, `stateAddress`).
   */
  readonly threads?: boolean | ThreadOptions;
  /**
   * Thread caches for a thread-safe build (default false): each thread keeps freed small blocks
   * (up to `maxSize` bytes, 512 by default) in lists of its own and serves small mallocs from
   * them without the lock, so threads scale. `thread_cache_flush` is then exported: a thread
   * calls it before it ends to hand its cache back (without it, at most `classes * classBytes`
   * bytes stay cached). Needs `threads`, and a top strategy whose `usableSize` may run without the
   * lock (size-classes). `true`, or {@link ThreadCacheOptions} (`maxSize`, `classBytes`). See
   * `thread-cache.ts`.
   */
  readonly threadCache?: boolean | ThreadCacheOptions;
  /**
   * A 64-bit allocator (default false): pointers and sizes are i64 and the memory is a memory64
   * memory (the C functions take and return i64: `size_t` is 64-bit on wasm64). Engines run it
   * behind a flag or not at all yet (Node 20: `--experimental-wasm-memory64`, up to 4 GiB). For
   * {@link installAllocator}, the default is the width of the module's memory, and a mismatch is
   * refused.
   */
  readonly memory64?: boolean;
}

/**
 * Which functions to export: a list of names (C functions such as `malloc`, or extras of the top
 * strategy such as bump's `reset`), or a map from those names to the export names to use.
 */
export type ExportRequest = readonly string[] | Readonly<Record<string, string>>;

/** The memory of a standalone allocator module. */
export interface MemoryOptions {
  /** "export" (default): the module defines its memory and exports it. "import": it imports one. */
  readonly mode?: "export" | "import";
  /** Export name, or import field name. Default "memory". */
  readonly name?: string;
  /** Import module name. Default "env". */
  readonly importModule?: string;
  /** Initial pages (the minimum an imported memory must have). Default: what the backend needs, at least 1. */
  readonly initialPages?: number;
  /**
   * Declared maximum pages of the module's own memory (default 65535 on wasm32; none on memory64:
   * the engine's limit applies, at most 2^31 - 1), or of a thread-safe build's shared memory import
   * (default 65536: any shared memory a host passes fits under it). Not used for other imports.
   */
  readonly maximumPages?: number;
}

export interface BuildOptions extends AllocatorOptions {
  readonly memory?: MemoryOptions;
  /** Default: malloc, free, calloc, realloc, aligned_alloc. */
  readonly exports?: ExportRequest;
  /** "size" (default, like -Oz), "speed" (like -O3), or "none". */
  readonly optimize?: OptimizeMode;
}

/** The memory of a built allocator, with every default resolved. */
export interface ResolvedMemory {
  readonly mode: "export" | "import";
  readonly name: string;
  readonly importModule: string;
  readonly initialPages: number;
  readonly maximumPages: number | undefined;
  /** A thread-safe build's memory: imported, shared, with the maximum above. */
  readonly shared: boolean;
  /** A memory64 memory (and i64 pointers): {@link AllocatorOptions.memory64}. */
  readonly memory64: boolean;
}

/** A standalone allocator module. */
export interface BuiltAllocator {
  /** The module's bytes. */
  readonly binary: Uint8Array;
  /** The module as WebAssembly text. */
  readonly text: string;
  /** Byte size of the module. */
  readonly size: number;
  /** Export names in order: functions, then the memory when it is exported. */
  readonly exports: readonly string[];
  readonly memory: ResolvedMemory;
  /** Debug builds: the fault sites and the exported debug globals; undefined in a release build. */
  readonly debug: DebugInfo | undefined;
  /**
   * Debug and stats builds: per layer (top first), the exported statistics globals, in the order
   * of `heap_stats`' records; undefined otherwise.
   */
  readonly stats: StatsInfo | undefined;
  /** Compiles and instantiates the module, with typed wrappers for its exports. */
  instantiate(options?: InstantiateOptions): Promise<AllocatorInstance>;
}

export interface InstallOptions extends AllocatorOptions {
  /** Which functions to emit (C functions or extras of the top strategy). Default: the five C functions. */
  readonly functions?: readonly string[];
  /** Also export some of them from the module (names as in {@link BuildOptions.exports}). Default: none. */
  readonly exports?: ExportRequest;
}

/** An allocator installed into a module: the internal names of its functions, for `module.call`. */
export interface InstalledAllocator {
  /** Function name (e.g. "malloc") to emitted internal name (e.g. "~alloc/malloc"). */
  readonly functions: Readonly<Record<string, string>>;
  /** Export name to function name, for the exports that were added. */
  readonly exports: Readonly<Record<string, string>>;
  /**
   * Debug builds: the fault sites, and the internal names of the fault and statistics globals
   * (export them with `module.addGlobalExport` to read them from JS). Undefined in a release build.
   */
  readonly debug: DebugInfo | undefined;
  /** Debug and stats builds: the internal names of each layer's statistics globals (top first). */
  readonly stats: StatsInfo | undefined;
}

/**
 * Installs an allocator's functions into an existing Binaryen module, which must have a memory
 * (the allocator uses its first one). A memory64 memory gets a 64-bit allocator (`memory64`,
 * default: the memory's width; the module must enable the memory64 feature).
 * A shared memory needs the `threads` option (and the module the atomics feature): the allocator
 * then locks, and keeps its state in 256 bytes of the memory above everything the module is known
 * to use there (or at `threads.stateAddress`). Nothing is optimised: that is the module owner's call.
 * Several allocators can share one module if each has its own `prefix`, unless one of them
 * assumes its grow backend is `exclusive` (then nothing else in the module may grow the memory).
 *
 * Everything is checked before the module changes: the options, names (the prefix must be unused
 * in the module, and export names free), a static region against the module's data segments and
 * stack, exclusivity. On any error the module is left as it was, and configuration errors are
 * {@link AllocConfigError}s naming the problem.
 */
export function installAllocator(module: binaryen.Module, options: InstallOptions): InstalledAllocator {
  check(
    module instanceof binaryen.Module,
    `installAllocator: the first argument must be a binaryen.Module from the binaryen.js instance @alloc/core uses ` +
      `(its "binaryen" export), got ${describeValue(module)}`,
  );
  checkOptions("installAllocator", options);
  check(module.hasMemory(), "installAllocator: the module has no memory; add one (module.setMemory) first");
  const info = module.getMemoryInfo();
  const memory64 = options.memory64 ?? info.is64;
  check(
    memory64 === info.is64,
    `installAllocator: memory64 is ${describeValue(options.memory64)} but the module's memory is a ${info.is64 ? "memory64" : "wasm32"} ` +
      `memory: the allocator's pointer width must be the memory's (${info.is64 ? "memory64: true" : "memory64: false"}, or leave it out)`,
  );
  check(
    !memory64 || (module.getFeatures() & binaryen.Features.Memory64) !== 0,
    "installAllocator: the module's memory is a memory64 memory but the module does not enable the memory64 feature; " +
      "enable it (module.setFeatures)",
  );
  const threads = resolveThreads(options.threads);
  check(
    !info.shared || threads,
    "installAllocator: the module's memory is shared (threads): set the threads option (threads: true) for an allocator " +
      "that takes a lock and keeps its state in that memory; without it, threads would race",
  );
  check(
    info.shared || !threads,
    "installAllocator: threads is set but the module's memory is not shared: threads share a memory only when it is " +
      "declared shared (module.setMemory(..., shared: true)); drop threads for a single-threaded module",
  );
  check(
    !threads || (module.getFeatures() & binaryen.Features.Atomics) !== 0,
    "installAllocator: threads needs the atomics feature: enable it (module.setFeatures(... | binaryen.Features.Atomics))",
  );
  const memory = withStateArea(threads, {
    mode: info.module ? "import" : "existing",
    initialPages: info.initial,
    maximumPages: info.max,
    reserved: reservedRanges(module),
    memory64,
  });
  const hasBulk = (module.getFeatures() & binaryen.Features.BulkMemoryOpt) !== 0;
  const bulkMemory = options.bulkMemory ?? hasBulk;
  check(
    !bulkMemory || hasBulk,
    "installAllocator: bulkMemory is on but the module does not enable the bulk-memory feature; " +
      "enable it (module.setFeatures) or pass bulkMemory: false",
  );
  const functions =
    options.functions ?? (options.threadCache !== undefined && options.threadCache !== false ? [...DEFAULT_EXPORTS, THREAD_CACHE_FLUSH] : DEFAULT_EXPORTS);
  check(
    Array.isArray(functions) && functions.every((f) => typeof f === "string"),
    `installAllocator: functions must be a list of function names, got ${describeValue(functions)}`,
  );
  const plan = planBuild(options, functions, options.exports ?? []);
  plan.backend.validate?.(memory);

  // Names: every emitted name is under the prefix, so an unused prefix means no clash.
  const before = namesOf(module);
  const prefix = `${options.prefix ?? DEFAULT_PREFIX}/`;
  const taken = [...before.functions, ...before.globals].find((name) => name.startsWith(prefix));
  check(
    taken === undefined,
    `installAllocator: the module already has names under the prefix "${prefix}" (such as "${taken}"; ` +
      `another allocator?): give this allocator another prefix (the "prefix" option)`,
  );
  for (const [fn, exportName] of plan.exports) {
    check(!before.exports.has(exportName), `installAllocator: the module already exports "${exportName}"; export "${fn}" under another name`);
  }
  // Exclusivity: an exclusive allocator must be the only code that grows the memory.
  const exclusive = assumesExclusiveMemory(plan.backend);
  if (exclusive) {
    const grower = before.functions.find((name) => growsMemory(module, name));
    check(
      grower === undefined,
      `installAllocator: the grow backend is exclusive, but function "${grower}" of the module grows the memory too ` +
        `(${exclusiveOwner.has(module) ? "another allocator" : "its own code"}); drop exclusive: an exclusive allocator must be the only code that grows its memory`,
    );
  }

  try {
    const { functions: emitted, debug, stats } = emit(module, { ...options, bulkMemory, memory64 }, memory, plan);
    const owner = exclusiveOwner.get(module);
    if (owner !== undefined) {
      const grower = namesOf(module).functions.find((name) => !before.functions.includes(name) && growsMemory(module, name));
      check(
        grower === undefined,
        `installAllocator: the allocator under "${owner}" in this module is exclusive (it must be the only code that ` +
          `grows the memory), and this one grows it too (in "${grower}"): give this one a backend that does not grow ` +
          `(a static region), or install both without exclusive`,
      );
    }
    const exports: Record<string, string> = {};
    for (const [fn, exportName] of plan.exports) {
      module.addFunctionExport(emitted[fn]!, exportName);
      exports[exportName] = fn;
    }
    if (exclusive) exclusiveOwner.set(module, prefix);
    return { functions: emitted, exports, debug, stats };
  } catch (error) {
    rollBack(module, before);
    throw asConfigError(error, "installAllocator");
  }
}

/** The default {@link AllocatorOptions.prefix}. */
const DEFAULT_PREFIX = "~alloc";

/** Modules holding an exclusive allocator, with its prefix. */
const exclusiveOwner = new WeakMap<binaryen.Module, string>();

interface ModuleNames {
  readonly functions: readonly string[];
  readonly globals: readonly string[];
  readonly exports: ReadonlySet<string>;
}

function namesOf(module: binaryen.Module): ModuleNames {
  const list = <T>(count: number, at: (i: number) => T) => Array.from({ length: count }, (_, i) => at(i));
  return {
    functions: list(module.getNumFunctions(), (i) => binaryen.getFunctionInfo(module.getFunctionByIndex(i)).name),
    globals: list(module.getNumGlobals(), (i) => binaryen.getGlobalInfo(module.getGlobalByIndex(i)).name),
    exports: new Set(list(module.getNumExports(), (i) => binaryen.getExportInfo(module.getExportByIndex(i)).name)),
  };
}

/** Removes every function, global and export added since `before` was taken. */
function rollBack(module: binaryen.Module, before: ModuleNames): void {
  const now = namesOf(module);
  for (const name of now.exports) if (!before.exports.has(name)) module.removeExport(name);
  const functions = new Set(before.functions), globals = new Set(before.globals);
  for (const name of now.functions) if (!functions.has(name)) module.removeFunction(name);
  for (const name of now.globals) if (!globals.has(name)) module.removeGlobal(name);
}

/** Whether the body of function `name` (not an import) contains `memory.grow`. */
function growsMemory(module: binaryen.Module, name: string): boolean {
  const { body } = binaryen.getFunctionInfo(module.getFunction(name));
  return body !== 0 && /\(memory\.grow\b/.test(binaryen.emitText(body));
}

/**
 * An error from emitting: configuration errors pass; Binaryen's own (thrown as opaque objects
 * whose `String()` is `[object Object]`) become an AllocConfigError that says where.
 */
function asConfigError(error: unknown, where: string): unknown {
  if (error instanceof Error) return error;
  return new AllocConfigError(`${where}: Binaryen refused the generated code (a name or type clash with the module?)`);
}

/**
 * The byte ranges of the module's memory that its data segments, stack and static data use, as
 * far as they can be read (see {@link MemoryDescription.reserved}).
 */
function reservedRanges(module: binaryen.Module): ReservedRange[] {
  const ranges: ReservedRange[] = [];
  // binaryen.js has these; its typings do not (they name older functions).
  const segments = module as unknown as {
    getNumDataSegments(): number;
    getDataSegmentByIndex(i: number): number;
    getDataSegmentInfo(ref: number): { name: string; offset: number | null; data: ArrayBuffer; passive: boolean };
  };
  for (let i = 0; i < segments.getNumDataSegments(); i++) {
    const ref = segments.getDataSegmentByIndex(i);
    let segment: ReturnType<typeof segments.getDataSegmentInfo> | undefined;
    try {
      segment = segments.getDataSegmentInfo(ref);
    } catch {
      // Binaryen cannot give an offset that is not a constant (`global.get $__memory_base`).
      ranges.push({ start: 0, end: Infinity, what: `data segment #${i} (its offset is not a constant)` });
      continue;
    }
    if (!segment || segment.passive || segment.offset === null) continue;
    ranges.push({ start: segment.offset, end: segment.offset + segment.data.byteLength, what: `data segment "${segment.name}"` });
  }
  // The stack and static data of a module linked by LLVM: below __heap_base; the stack grows
  // down from the stack pointer's initial value.
  const constGlobal = (name: string): number | undefined => {
    const exported = module.getExport(name);
    const internal = exported ? binaryen.getExportInfo(exported).value : name;
    const ref = module.getGlobal(internal);
    if (!ref) return undefined;
    const { init, module: from } = binaryen.getGlobalInfo(ref);
    if (from || !init || binaryen.getExpressionInfo(init).id !== binaryen.ConstId) return undefined;
    const value = (binaryen.getExpressionInfo(init) as binaryen.ConstInfo).value;
    return typeof value === "number" ? value >>> 0 : undefined;
  };
  const heapBase = constGlobal("__heap_base");
  if (heapBase) ranges.push({ start: 0, end: heapBase, what: "static data and the stack (below __heap_base)" });
  const stackPointer = constGlobal("__stack_pointer");
  if (stackPointer) ranges.push({ start: 0, end: stackPointer, what: "the stack (below __stack_pointer's initial value)" });
  return ranges;
}

/**
 * Builds a standalone allocator module: memory (own and exported, or imported), the strategy
 * stack over the backend, the exported C functions, optimised by Binaryen.
 */
export function buildAllocator(options: BuildOptions): BuiltAllocator {
  checkOptions("buildAllocator", options);
  checkMemory64(options.memory64);
  const memory64 = options.memory64 ?? false;
  const backend = planBackend(options);
  const threads = resolveThreads(options.threads);
  const memory = resolveMemory(options.memory ?? {}, backend, threads !== undefined, memory64);
  let request: ExportRequest = options.exports ?? DEFAULT_EXPORTS;
  checkExportRequest(request);
  // A debug build always exports its heap walker (under its own name unless asked otherwise).
  // So does a stats build its heap_stats.
  // And a build with thread caches the function that hands a thread's cache back.
  const always = [
    ...(options.debug === true ? [HEAP_CHECK] : []),
    ...(options.stats === true ? [HEAP_STATS] : []),
    ...(options.threadCache !== undefined && options.threadCache !== false ? [THREAD_CACHE_FLUSH] : []),
  ];
  for (const fn of always) {
    request = Array.isArray(request)
      ? request.includes(fn) ? request : [...request, fn]
      : fn in request ? request : { ...request, [fn]: fn };
  }
  const plan = planBuild(options, Array.isArray(request) ? request : Object.keys(request), request);
  check(plan.exports.length > 0, "exports is empty: an allocator module needs at least one function to export (e.g. malloc)");
  const optimize = options.optimize ?? "size";
  check(["size", "speed", "none"].includes(optimize), `optimize must be "size", "speed" or "none", got ${describeValue(optimize)}`);
  // Export names: the functions', the memory's, and the debug globals' (under their internal names).
  const exportNames = new Map<string, string>();
  const claim = (name: string, what: string) => {
    const other = exportNames.get(name);
    check(other === undefined, `export name "${name}" is used twice: by ${other} and by ${what}`);
    exportNames.set(name, what);
  };
  for (const [fn, exportName] of plan.exports) claim(exportName, `function "${fn}"`);
  if (memory.mode === "export") claim(memory.name, "the memory (memory.name)");
  const description = withStateArea(threads, {
    mode: memory.mode === "export" ? "own" : "import",
    initialPages: memory.initialPages,
    // A shared import's maximum is the host's memory's (at most the declared one): unknown here.
    maximumPages: memory.shared ? undefined : memory.maximumPages,
    memory64,
  });
  backend.validate?.(description);

  const module = new binaryen.Module();
  try {
    const bulkMemory = options.bulkMemory ?? true;
    module.setFeatures(
      binaryen.Features.MutableGlobals |
        binaryen.Features.SignExt |
        (bulkMemory ? binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt : 0) |
        (threads ? binaryen.Features.Atomics : 0) |
        (memory64 ? binaryen.Features.Memory64 : 0),
    );
    const internal = "0";
    if (memory.mode === "export") {
      module.setMemory(memory.initialPages, memory.maximumPages ?? -1, memory.name, [], false, memory64, internal);
    } else {
      module.setMemory(memory.initialPages, memory.shared ? memory.maximumPages! : -1, null, [], memory.shared, memory64, internal);
      module.addMemoryImport(internal, memory.importModule, memory.name, memory.shared);
    }
    const goal = options.goal ?? (optimize === "speed" ? "speed" : "size");
    const { functions, debug, stats: internalStats } = emit(module, { ...options, backend, bulkMemory, memory64, goal }, description, plan);
    // [internal name, export name]: a debug build's globals under their internal names; a release
    // stats build's statistics under the short names of their words in heap_stats' struct.
    const stats = debug ? internalStats : internalStats && statsExportNames(internalStats);
    const debugGlobals: [string, string][] = [
      ...(debug ? [debug.faultExport, debug.faultPtrExport].map((n): [string, string] => [n, n]) : []),
      ...(internalStats ?? []).flatMap((l, i) =>
        STAT_NAMES.map((s): [string, string] => [l.exports[s], stats![i]!.exports[s]]),
      ),
    ];
    for (const [, name] of debugGlobals) claim(name, debug ? "a global of the debug build" : "a statistic of heap_stats");
    const exports: string[] = [];
    for (const [fn, exportName] of plan.exports) {
      module.addFunctionExport(functions[fn]!, exportName);
      exports.push(exportName);
    }
    if (memory.mode === "export") exports.push(memory.name);
    for (const [internalName, name] of debugGlobals) module.addGlobalExport(internalName, name);

    if (!module.validate()) throw new Error("alloc: internal error: the generated module does not validate");
    if (optimize !== "none") {
      withOptimizeSettings(optimize, { zeroFilledMemory: memory.mode === "export" }, () => module.optimize());
    }
    const binary = module.emitBinary();
    // Engines without memory64 (Node 20 without --experimental-wasm-memory64) cannot check a
    // 64-bit module; Binaryen's validation above stands for theirs then.
    if ((!memory64 || engineRunsMemory64()) && !WebAssembly.validate(binary as BufferSource)) {
      throw new Error("alloc: internal error: the engine rejects the generated module");
    }
    const text = module.emitText();
    const exportMap = new Map(plan.exports.map(([fn, exportName]) => [exportName, fn]));
    return {
      binary,
      text,
      size: binary.byteLength,
      exports,
      memory,
      debug,
      stats,
      instantiate: (instantiateOptions) => instantiateAllocator(binary, memory, exportMap, debug, stats, instantiateOptions),
    };
  } catch (error) {
    throw asConfigError(error, "buildAllocator");
  } finally {
    module.dispose();
  }
}

// ---------------------------------------------------------------------------------------------

interface Plan {
  readonly stack: readonly Strategy[];
  readonly backend: PageBackend;
  readonly limits: BuildLimits;
  /** Functions to emit: C functions and extras of the top strategy. */
  readonly functions: ReadonlySet<string>;
  /** [function, export name] pairs. */
  readonly exports: readonly (readonly [string, string])[];
  /** A thread-safe build's options; undefined for a single-threaded one. */
  readonly threads: ResolvedThreads | undefined;
  readonly threadCache: ResolvedThreadCache | undefined;
}

/** Validates everything that can be checked before emitting: throws AllocConfigError. */
function planBuild(options: AllocatorOptions, functions: readonly string[], exportRequest: ExportRequest): Plan {
  check(options.strategy !== undefined, "the strategy option is missing: give a strategy or a stack of them, top first");
  const stack = Array.isArray(options.strategy) ? (options.strategy as readonly Strategy[]) : [options.strategy as Strategy];
  check(stack.length > 0, "the strategy stack is empty: give at least one strategy");
  for (const [i, s] of stack.entries()) {
    check(
      typeof s === "object" && s !== null && typeof s.emit === "function" && Array.isArray(s.accepts),
      `strategy #${i + 1} is not a strategy (got ${describeValue(s)})`,
    );
  }
  stack.forEach((s, i) => {
    const below = i === stack.length - 1 ? "pages" : "allocator";
    const what = below === "pages" ? "directly on a page backend" : `on top of "${stack[i + 1]!.name}"`;
    const fix =
      below === "pages"
        ? `put a strategy that takes pages (e.g. free-list or bump) below it`
        : `"${s.name}" must be the bottom of the stack`;
    check(s.accepts.includes(below), `strategy "${s.name}" cannot sit ${what}: ${fix}`);
    const parent = stack[i + 1];
    check(
      !parent?.topOnly,
      `strategy "${s.name}" cannot sit on top of "${parent?.name}": "${parent?.name}" must be the top of the stack (nothing can be built on it)`,
    );
  });
  const backend = planBackend(options);

  const minAlign = options.minAlign ?? DEFAULT_MIN_ALIGN;
  check(
    isPowerOfTwo(minAlign) && minAlign >= 4 && minAlign <= PAGE_SIZE,
    `minAlign must be a power of two from 4 to 65536, got ${describeValue(minAlign)}`,
  );
  const limits: BuildLimits = { minAlign, maxAlign: PAGE_SIZE };
  for (const s of stack) s.validate?.(limits);

  const prefix = options.prefix ?? DEFAULT_PREFIX;
  check(
    typeof prefix === "string" && prefix.length > 0 && !/[/\x00-\x1f\x7f]/.test(prefix),
    `prefix must be a non-empty name without "/" or control characters, got ${describeValue(prefix)}`,
  );
  check(options.debug === undefined || typeof options.debug === "boolean", `debug must be true or false, got ${describeValue(options.debug)}`);
  check(options.stats === undefined || typeof options.stats === "boolean", `stats must be true or false, got ${describeValue(options.stats)}`);
  check(
    options.bulkMemory === undefined || typeof options.bulkMemory === "boolean",
    `bulkMemory must be true or false, got ${describeValue(options.bulkMemory)}`,
  );
  checkMemory64(options.memory64);
  check(
    options.goal === undefined || options.goal === "size" || options.goal === "speed",
    `goal must be "size" or "speed", got ${describeValue(options.goal)}`,
  );

  checkExportRequest(exportRequest);
  const threads = resolveThreads(options.threads);
  const threadCache = resolveThreadCache(options.threadCache, threads !== undefined);
  const top = stack[0]!;
  const known = new Set<string>([
    ...C_FUNCTIONS,
    ...Object.keys(top.extras ?? {}),
    ...(options.debug ? [HEAP_CHECK] : []),
    ...(options.stats ? [HEAP_STATS] : []),
    ...(threadCache ? [THREAD_CACHE_FLUSH] : []),
  ]);
  const describe = () => `known: ${[...known].join(", ")}`;
  for (const fn of functions) {
    check(fn !== HEAP_CHECK || options.debug, `"${HEAP_CHECK}" exists only in debug builds: set the debug option`);
    check(fn !== HEAP_STATS || options.stats, `"${HEAP_STATS}" exists only in stats builds: set the stats option`);
    check(fn !== THREAD_CACHE_FLUSH || threadCache, `"${THREAD_CACHE_FLUSH}" exists only in builds with thread caches: set the threadCache option`);
    check(known.has(fn), `unknown function ${describeValue(fn)} for strategy "${top.name}" (${describe()})`);
  }
  const pairs: (readonly [string, string])[] = Array.isArray(exportRequest)
    ? (exportRequest as readonly string[]).map((fn) => [fn, fn] as const)
    : Object.entries(exportRequest as Record<string, string>);
  const seen = new Set<string>();
  for (const [fn, exportName] of pairs) {
    check(known.has(fn), `cannot export unknown function ${describeValue(fn)} (${describe()})`);
    check(functions.includes(fn), `cannot export "${fn}": it is not among the installed functions`);
    check(isName(exportName), `export name for "${fn}" must be a non-empty string without NUL characters, got ${describeValue(exportName)}`);
    check(!seen.has(exportName), `export name "${exportName}" is used twice`);
    seen.add(exportName);
  }
  return { stack, backend, limits, functions: new Set(functions), exports: pairs, threads, threadCache };
}

/**
 * The export names of a release stats build's statistics: `heap_stats.<word>`, the index of the
 * word in heap_stats' struct (layer i's usedBytes is word 2 + 5i). Short: export names cost bytes.
 */
function statsExportNames(stats: StatsInfo): StatsInfo {
  return stats.map(({ layer }, i) => ({
    layer,
    exports: Object.fromEntries(STAT_NAMES.map((s, k) => [s, `${HEAP_STATS}.${2 + STAT_NAMES.length * i + k}`])) as Record<StatName, string>,
  }));
}

/** The page backend: the one given (checked), or the grow backend's defaults. */
function planBackend(options: AllocatorOptions): PageBackend {
  const backend = options.backend ?? growBackend();
  check(
    typeof backend === "object" && backend !== null && typeof backend.emit === "function",
    `backend is not a page backend (got ${describeValue(backend)}): use growBackend() or staticBackend(...)`,
  );
  return backend;
}

/** A name Binaryen can hold: a non-empty string without NUL (its C strings would end there). */
function isName(name: unknown): name is string {
  return typeof name === "string" && name.length > 0 && !name.includes("\0");
}

/** `exports`: a list of function names, or a map from function names to export names. */
function checkExportRequest(request: unknown): asserts request is ExportRequest {
  check(
    (Array.isArray(request) && request.every((f) => typeof f === "string")) ||
      (typeof request === "object" && request !== null && !Array.isArray(request)),
    `exports must be a list of function names (["malloc", "free"]) or a map from function names to export names ` +
      `({ malloc: "my_malloc" }), got ${describeValue(request)}`,
  );
}

function checkMemory64(memory64: unknown): void {
  check(memory64 === undefined || typeof memory64 === "boolean", `memory64 must be true or false, got ${describeValue(memory64)}`);
}

/** Whether this engine runs memory64 modules (Node 20 only with --experimental-wasm-memory64). */
export function engineRunsMemory64(): boolean {
  // The smallest module with a memory64 memory: a memory section whose limits flag is 4.
  return WebAssembly.validate(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 4, 0]));
}

function resolveMemory(options: MemoryOptions, backend: PageBackend, shared: boolean, memory64: boolean): ResolvedMemory {
  checkOptions("memory", options, ["mode", "name", "importModule", "initialPages", "maximumPages"]);
  const mode = options.mode ?? (shared ? "import" : "export");
  check(mode === "export" || mode === "import", `memory mode must be "export" or "import", got ${describeValue(mode)}`);
  check(
    !shared || mode === "import",
    `threads: a thread-safe allocator imports its memory (every thread instantiates the module with the same shared ` +
      `WebAssembly.Memory), got memory.mode "export", which would give each thread a memory of its own: use "import"`,
  );
  const name = options.name ?? "memory";
  check(isName(name), `memory.name must be a non-empty string without NUL characters, got ${describeValue(name)}`);
  const importModule = options.importModule ?? "env";
  check(isName(importModule), `memory.importModule must be a non-empty string without NUL characters, got ${describeValue(importModule)}`);
  check(
    mode === "import" || options.importModule === undefined,
    "memory.importModule applies to an imported memory (memory.mode \"import\")",
  );
  const initialPages = options.initialPages ?? Math.max(1, backend.minimumMemoryPages ?? 1);
  const maxPages = memory64 ? MEMORY64_MAX_PAGES : WASM32_MAX_PAGES;
  check(
    (backend.minimumMemoryPages ?? 0) <= maxPages,
    `the ${backend.name} backend needs ${backend.minimumMemoryPages} pages of memory, more than a ${memory64 ? "memory64" : "wasm32"} memory holds (${maxPages})` +
      (memory64 ? "" : ": build with memory64 for more"),
  );
  const maximumPages =
    mode === "export"
      ? (options.maximumPages ?? (memory64 ? undefined : WASM32_MAX_PAGES))
      : shared
        ? (options.maximumPages ?? SHARED_MAX_PAGES)
        : undefined;
  check(
    mode === "export" || shared || options.maximumPages === undefined,
    "memory.maximumPages applies to the module's own memory (or a thread-safe build's shared import); an imported memory's maximum is the host's",
  );
  check(
    Number.isInteger(initialPages) && initialPages >= 0 && initialPages <= maxPages,
    `memory.initialPages must be an integer from 0 to ${maxPages}, got ${describeValue(initialPages)}`,
  );
  check(
    maximumPages === undefined ||
      (Number.isInteger(maximumPages) && maximumPages >= initialPages && maximumPages <= (shared ? SHARED_MAX_PAGES : maxPages)),
    `memory.maximumPages must be an integer from initialPages (${initialPages}) to ${shared ? SHARED_MAX_PAGES : maxPages}, got ${describeValue(maximumPages)}`,
  );
  const min = backend.minimumMemoryPages ?? 0;
  check(
    initialPages >= min,
    `memory.initialPages (${initialPages}) is smaller than the ${backend.name} backend needs (${min})`,
  );
  return { mode, name, importModule, initialPages, maximumPages, shared, memory64 };
}

/** The declared maximum of a thread-safe build's shared memory import by default: all of wasm32. */
const SHARED_MAX_PAGES = 65536;

/**
 * A thread-safe build's memory: `memory` with the state area placed (see {@link
 * ThreadOptions.stateAddress}) and added to its reserved ranges, so that no backend hands it out.
 * `memory` itself for a single-threaded build.
 */
function withStateArea(threads: ResolvedThreads | undefined, memory: MemoryDescription): MemoryDescription & { stateAddress?: number } {
  if (!threads) return memory;
  const reserved = memory.reserved ?? [];
  let address = threads.stateAddress;
  if (address === undefined) {
    const unknown = reserved.find((r) => !Number.isFinite(r.end) || r.end >= 2 ** 32);
    check(
      unknown === undefined,
      `threads: the state area cannot be placed: ${unknown?.what} may lie anywhere in the memory; give threads.stateAddress`,
    );
    const above = Math.max(DEFAULT_STATE_ADDRESS, ...reserved.map((r) => r.end));
    address = Math.ceil(above / 64) * 64;
  }
  const end = address + THREAD_STATE_BYTES;
  for (const used of reserved) {
    check(
      used.end <= address || used.start >= end,
      `threads: the state area [${address}, ${end}) overlaps ${used.what}; give threads.stateAddress a place above it`,
    );
  }
  check(
    end <= memory.initialPages * PAGE_SIZE,
    `threads: the state area [${address}, ${end}) must lie inside the initial memory (${memory.initialPages} pages): ` +
      `give threads.stateAddress a lower place, or the memory more initial pages`,
  );
  return {
    ...memory,
    reserved: [...reserved, { start: address, end, what: `the thread-safe build's state area (threads.stateAddress ${address})` }],
    stateAddress: address,
  };
}

/** Emits backend, strategies (bottom up) and the requested functions into `module`. */
function emit(
  module: binaryen.Module,
  options: AllocatorOptions,
  memory: MemoryDescription,
  plan: Plan,
): { functions: Record<string, string>; debug: DebugInfo | undefined; stats: StatsInfo | undefined } {
  const { stack, backend, limits, threads } = plan;
  const stateAddress = (memory as { stateAddress?: number }).stateAddress;
  const cg = new Codegen(module, {
    ...(options.prefix !== undefined && { prefix: options.prefix }),
    ...(options.bulkMemory !== undefined && { bulkMemory: options.bulkMemory }),
    ...(threads && { sharedState: { address: stateAddress!, bytes: THREAD_STATE_BYTES, wait: threads.wait } }),
    memory64: options.memory64 ?? false,
  });
  /** The name of an entry point's body: itself, or in a thread-safe build the unlocked copy its locked export calls. */
  const entryName = (name: string) => (threads ? cg.name("unlocked", name) : cg.name(name));
  const used = new Set<string>();
  // Lower layers may be asked anything by the layers above, but calloc is the C API's alone (it
  // reads the bottom layer's fresh mark, passed up): without it none of them keeps a mark.
  const everything = new Set<string>([...C_FUNCTIONS, "*"].filter((f) => f !== "calloc" || plan.functions.has("calloc")));
  const debugBuild = options.debug ? new DebugBuild(cg) : undefined;
  // A release stats build: statistics globals without the rest of the debug build.
  const statGlobals = options.stats && !debugBuild ? new StatGlobals(cg, "stats") : undefined;
  const goal: BuildGoal = options.goal ?? "size";
  const context = (layer: string, requested: ReadonlySet<string> = everything): EmitContext => {
    let unique = layer;
    for (let i = 2; used.has(unique); i++) unique = `${layer}${i}`;
    used.add(unique);
    const scope = (name: string) => cg.name(unique, name);
    const debug = debugBuild?.hooks(unique, scope);
    const vars = statGlobals?.lazy(unique, scope);
    return { cg, limits, debug, requested, scope, goal, ...(vars && { stats: { get vars() { return vars(); } } }) };
  };

  let parent: Parent = { kind: "pages", pages: backend.emit(context(backend.name), memory) };
  let top: AllocatorFunctions | undefined;
  const layers: AllocatorFunctions[] = [];
  for (const [i, strategy] of [...stack].reverse().entries()) {
    const isTop = i === stack.length - 1;
    top = strategy.emit(context(strategy.name, isTop ? plan.functions : everything), parent);
    layers.push(top);
    parent = { kind: "allocator", allocator: top };
  }
  const functions: Record<string, string> = {};
  const cNames = [...plan.functions].filter((f): f is CFunction => (C_FUNCTIONS as readonly string[]).includes(f));
  const cApiContext: EmitContext = {
    cg,
    limits,
    debug: debugBuild?.hooks("c-api", (name) => cg.name(name)),
    requested: plan.functions,
    scope: entryName,
    goal,
  };
  Object.assign(functions, emitCApi(cApiContext, top!, new Set(cNames)));
  // heap_check(): every layer's walker, the bottom layer first (each may assume the ones below it sound).
  if (debugBuild && plan.functions.has(HEAP_CHECK)) {
    functions[HEAP_CHECK] = cg.function(entryName(HEAP_CHECK), [], "none", () =>
      cg.block(layers.flatMap((l) => (l.check ? [cg.callVoid(l.check, [])] : [cg.module.nop()]))),
    );
  }
  const stats = debugBuild ? debugBuild.info().stats : statGlobals?.info();
  // heap_stats(ptr): the walkers (the debug build's, checks and all, or the stats build's), then the struct.
  if (stats && plan.functions.has(HEAP_STATS)) {
    const walkers = layers.flatMap((l) => (debugBuild ? l.check : l.walk) ?? []);
    functions[HEAP_STATS] = emitHeapStats(cg, entryName(HEAP_STATS), walkers, stats);
  }
  for (const fn of plan.functions) {
    if (functions[fn] || fn === THREAD_CACHE_FLUSH) continue;
    const extra = top!.extras?.[fn];
    if (!extra) throw new AllocConfigError(`strategy "${stack[0]!.name}" did not emit "${fn}"`);
    functions[fn] = extra;
  }
  // Thread caches: malloc, free and calloc take the lock only when the cache cannot serve
  // (thread-cache.ts); the function that hands a thread's cache back takes it itself.
  const cached = plan.threadCache
    ? emitThreadCache(cApiContext, top!, stack[0]!.name, plan.threadCache, {
        malloc: plan.functions.has("malloc"),
        free: plan.functions.has("free"),
        ...(functions.calloc && { calloc: functions.calloc }),
      }, (fn) => cg.name(fn))
    : {};
  // A thread-safe build: every other entry point runs under the lock (see threads.ts).
  if (threads) {
    for (const fn of plan.functions) functions[fn] = cached[fn] ?? emitLocked(cg, cg.name(fn), functions[fn]!);
  }
  return { functions, debug: debugBuild?.info(), stats };
}
