import {
  AllocConfigError,
  binaryen,
  check,
  HEAP_CHECK,
  HeapFaultError,
  installAllocator,
  isPowerOfTwo,
  withOptimizeSettings,
  type CFunction,
  type DebugInfo,
  type Strategy,
} from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { ENTRY_NAMES, isOldAllocatorName, isRustRole, ROLES, type Role } from "./entries.ts";
import { rustBody } from "./rust.ts";
import { heapBaseBackend } from "./heap-base-backend.ts";
import { dropDwarf, hasNameSection, targetFeatures } from "./sections.ts";

export interface SwapOptions {
  /** The strategy stack, top first. Default: free-list alone (the CLI's default). */
  readonly strategy?: Strategy | readonly Strategy[];
  /** Alignment of every block malloc returns. Default 16: wasi-libc's malloc gives 16 (long double, max_align_t). */
  readonly minAlign?: number;
  /** Prefix of every name of ours in the module. Default `~alloc`. */
  readonly prefix?: string;
  /**
   * Enable the bulk-memory feature and use `memory.fill`/`memory.copy` in calloc and realloc
   * (default true; every current engine has it). false: byte loops, for engines without it.
   */
  readonly bulkMemory?: boolean;
  /**
   * A debug build of the allocator: faults trap, and the module exports the heap walker and the
   * fault globals (see {@link SwapReport.debug} and {@link takeSwapFault}).
   */
  readonly debug?: boolean;
  /** Optimise the whole module for "size" (default, like wasm-opt -Oz) or "speed" (-O3); "none" only removes what is unreachable. */
  readonly optimize?: "size" | "speed" | "none";
  /** Where the heap starts, overriding `__heap_base` (for modules whose layout swap cannot read). */
  readonly heapBase?: number;
  /** Also optimise the original module the same way, for {@link SwapReport.sizes} (default true). */
  readonly baseline?: boolean;
  /**
   * Report every allocator call to the host (default false): the module imports
   * `alloc_record.alloc(size, ptr)`, `alloc_record.free(ptr)` and `alloc_record.realloc(old, size, new)`,
   * which {@link recordTrace} turns into a trace for `alloc replay`.
   */
  readonly record?: boolean;
}

/** An entry point of the program's allocator. */
export interface FoundEntry {
  /** The function's name in the module. */
  readonly function: string;
  readonly role: Role;
  /** How it was found: by its name (the name section), an export, or an import (removed and served by ours). */
  readonly via: "name" | "export" | "import";
  /** Our C function that now serves it. */
  readonly servedBy: CFunction;
}

export interface SwapReport {
  readonly found: readonly FoundEntry[];
  /** Functions of the old allocator (its entry points and what only they used) that are gone from the module. */
  readonly removed: readonly string[];
  /** Other functions that are gone: code the input could not reach (Binaryen proves more dead than the linker). */
  readonly alsoRemoved: readonly string[];
  /** Where the heap starts and how that was found. */
  readonly heap: { readonly start: number; readonly source: string; readonly initialEnd: number };
  readonly bulkMemory: boolean;
  readonly optimize: "size" | "speed" | "none";
  /** Bytes: the input, the input optimised the same way without the swap (when measured), the output. */
  readonly sizes: { readonly before: number; readonly beforeOptimized: number | undefined; readonly after: number };
  /** Things the user should know: dropped DWARF, the heap's start was derived, bulk memory was enabled. */
  readonly notes: readonly string[];
  /** Debug builds: the export names of the heap walker and fault globals, and the fault sites. */
  readonly debug: (DebugInfo & { readonly heapCheckExport: string }) | undefined;
}

export interface SwapResult {
  readonly binary: Uint8Array;
  readonly report: SwapReport;
}

const OPTION_NAMES = ["strategy", "minAlign", "prefix", "bulkMemory", "debug", "optimize", "heapBase", "baseline", "record"];

/**
 * Replaces the allocator of a compiled WebAssembly program (C or C++ with wasi-libc's dlmalloc,
 * Emscripten's builtins, or a module that imports malloc/free) with an alloc composition:
 * finds the allocator's entry points by name (the name section) or export, installs ours
 * (heap from `__heap_base`), makes each entry point call ours (keeping its signature), removes the
 * old allocator, optimises and validates. Names are kept.
 *
 * Refuses (an {@link AllocConfigError} saying what is missing and what to do) a stripped module
 * whose allocator it cannot find, any module in which code of the old allocator would remain
 * reachable (it never produces a module that mixes two allocators), a shared (threads) memory,
 * and a composition that cannot serve what the program uses (bump and malloc_usable_size).
 */
export function swapAllocator(input: Uint8Array, options: SwapOptions = {}): SwapResult {
  check(typeof options === "object" && options !== null, "swapAllocator: options must be an object");
  for (const key of Object.keys(options)) {
    check(OPTION_NAMES.includes(key), `swapAllocator: unknown option ${JSON.stringify(key)} (known: ${OPTION_NAMES.join(", ")})`);
  }
  check(input instanceof Uint8Array, "swapAllocator: the module must be a Uint8Array of its bytes");
  check(WebAssembly.validate(input as BufferSource), "swapAllocator: the input is not a valid WebAssembly module");
  const bulkMemory = options.bulkMemory ?? true;
  const optimize = options.optimize ?? "size";
  check(["size", "speed", "none"].includes(optimize), `swapAllocator: optimize must be "size", "speed" or "none", got ${JSON.stringify(optimize)}`);
  const minAlign = options.minAlign ?? 16;
  check(isPowerOfTwo(minAlign), `swapAllocator: minAlign must be a power of two, got ${JSON.stringify(minAlign)}`);
  const notes: string[] = [];
  const { bytes, dropped } = dropDwarf(input);
  if (dropped.length > 0) notes.push(`dropped the DWARF sections (${dropped.join(", ")}): they would describe the old code`);
  const named = hasNameSection(bytes);
  const declared = targetFeatures(bytes);

  const module = readModule(bytes);
  try {
    const programFeatures = declared?.flags ?? binaryen.Features.MutableGlobals | binaryen.Features.SignExt;
    module.setFeatures(
      programFeatures |
        (bulkMemory ? binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt : 0),
    );
    if (bulkMemory && !declared?.names.includes("bulk-memory")) {
      notes.push("enabled bulk memory (memory.fill, memory.copy in calloc and realloc); --no-bulk-memory for engines without it");
    }
    checkMemory(module);

    const functions = functionList(module);
    const found = findEntries(module, functions);
    const hasCode = [...functions.values()].some((f) => !f.imported);
    if (found.size === 0) throw new AllocConfigError(named || !hasCode ? noAllocatorMessage() : strippedMessage());
    if (!named) notes.push("the module has no name section: entry points were found by export only");

    // The old allocator: what its entry points reach.
    const code = readCode(module, functions);
    const oldCode = reachable([...found.keys()].filter((f) => !functions.get(f)!.imported), code);

    const heap = heapStart(module, options.heapBase);
    const start = Math.ceil(heap.start / 16) * 16;
    const initialEnd = module.getMemoryInfo().initial * 65536;
    if (heap.source.startsWith("derived")) notes.push(`the heap starts at ${start}, ${heap.source}`);
    if (start >= initialEnd) notes.push(`the heap starts past the initial memory (${initialEnd} bytes): it takes fresh pages from memory.grow only`);

    const stack = options.strategy ?? freeList();
    const serves = [...new Set([...found.values()].flatMap((e) => ROLES[e.role].needs))];
    const prefix = options.prefix ?? "~alloc";
    const heapCheckExport = `${prefix}/heap_check`;
    let installed: ReturnType<typeof installAllocator>;
    try {
      installed = installAllocator(module, {
        strategy: stack,
        backend: heapBaseBackend({ start: heap.start }),
        minAlign,
        prefix,
        bulkMemory,
        // The allocator's fast paths when the program is optimised for speed.
        goal: optimize === "speed" ? "speed" : "size",
        debug: options.debug ?? false,
        functions: options.debug ? [...serves, HEAP_CHECK] : serves,
        exports: options.debug ? { [HEAP_CHECK]: heapCheckExport } : [],
      });
    } catch (error) {
      if (error instanceof AllocConfigError && /malloc_usable_size/.test(error.message)) {
        const user = [...found.values()].find((e) => e.servedBy === "malloc_usable_size")!;
        throw new AllocConfigError(
          `swap: the program uses malloc_usable_size (function "${user.function}"), which the top strategy cannot provide ` +
            `(it does not record block sizes, as bump does not): choose a strategy that does, such as free-list`,
        );
      }
      throw error instanceof AllocConfigError ? new AllocConfigError(`swap: ${error.message}`) : error;
    }
    if (installed.debug) {
      for (const name of [installed.debug.faultExport, installed.debug.faultPtrExport]) module.addGlobalExport(name, name);
    }

    const recorder = options.record ? addRecorder(module, prefix) : undefined;
    for (const entry of found.values()) rewrite(module, entry, installed.functions, minAlign, bulkMemory, recorder);

    // What stays reachable: nothing of the old allocator may.
    module.runPasses(["remove-unused-module-elements"]);
    const remaining = new Set(functionList(module).keys());
    const gone = [...functions.keys()].filter((f) => !remaining.has(f));
    const removed = gone.filter((f) => oldCode.has(f) || found.has(f));
    const leftovers = findLeftovers(remaining, removed, oldCode, code, found, prefix);
    if (leftovers.size > 0) throw new AllocConfigError(leftoverMessage(leftovers, remaining, code, found, named));

    const binary = withProgramSettings(optimize, () => {
      if (optimize !== "none") module.optimize();
      return module.emitBinary();
    });
    if (!WebAssembly.validate(binary as BufferSource)) {
      throw new Error("swap: internal error: the swapped module does not validate (please report it, with the input module)");
    }
    const beforeOptimized =
      options.baseline !== false && optimize !== "none" ? optimizedSize(bytes, programFeatures, optimize) : undefined;
    return {
      binary,
      report: {
        found: [...found.values()],
        removed,
        alsoRemoved: gone.filter((f) => !removed.includes(f)),
        heap: { start, source: heap.source, initialEnd },
        bulkMemory,
        optimize,
        sizes: { before: input.byteLength, beforeOptimized, after: binary.byteLength },
        notes,
        debug: installed.debug && { ...installed.debug, heapCheckExport },
      },
    };
  } finally {
    module.dispose();
  }
}

/**
 * After a trap in a module swapped with `debug`, the allocator's fault as an error saying which
 * layer found what, where (and clears it); undefined when there is none.
 */
export function takeSwapFault(instance: WebAssembly.Instance, report: SwapReport, cause?: unknown): HeapFaultError | undefined {
  const debug = report.debug;
  if (!debug) return undefined;
  const fault = instance.exports[debug.faultExport] as WebAssembly.Global;
  const site = debug.sites[(fault.value as number) - 1];
  if (!site) return undefined;
  fault.value = 0;
  return new HeapFaultError(site, ((instance.exports[debug.faultPtrExport] as WebAssembly.Global).value as number) >>> 0, { cause });
}

// ---------------------------------------------------------------------------------------------

interface FunctionEntry {
  readonly imported: boolean;
  /** For an import: its field name. */
  readonly base: string;
}

/**
 * `binaryen.readBinary`, as a `binaryen.Module` instance: readBinary returns a plain object with
 * the module's methods, which installAllocator (checking that a module comes from its binaryen
 * instance) refuses.
 */
function readModule(bytes: Uint8Array): binaryen.Module {
  const read = binaryen.readBinary(bytes);
  const wrap = (binaryen as unknown as { wrapModule(ptr: number, self: object): void }).wrapModule;
  const module = Object.create(binaryen.Module.prototype) as binaryen.Module;
  wrap(read.ptr, module);
  return module;
}

function functionList(module: binaryen.Module): Map<string, FunctionEntry> {
  const out = new Map<string, FunctionEntry>();
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const info = binaryen.getFunctionInfo(module.getFunctionByIndex(i));
    out.set(info.name, { imported: Boolean(info.module), base: info.base ?? "" });
  }
  return out;
}

function checkMemory(module: binaryen.Module): void {
  check(module.hasMemory(), "swap: the module has no memory, so it has no allocator to swap");
  const memory = module.getMemoryInfo();
  check(
    !memory.shared,
    "swap: the program's memory is shared (built with threads): alloc's allocators have no atomics yet and would race; " +
      "swap refuses shared memories until the thread-safe build exists",
  );
  check(!memory.is64, "swap: the program uses a memory64 memory; only wasm32 programs can be swapped yet");
}

/** The entry points of the program's allocator, by function name. */
function findEntries(module: binaryen.Module, functions: ReadonlyMap<string, FunctionEntry>): Map<string, FoundEntry> {
  const found = new Map<string, FoundEntry>();
  const add = (name: string, role: Role, via: FoundEntry["via"]) => {
    if (found.has(name)) return;
    const ref = module.getFunction(name);
    const info = binaryen.getFunctionInfo(ref);
    const params = binaryen.expandType(info.params);
    const spec = ROLES[role];
    check(
      params.length === spec.params &&
        params.every((t) => t === binaryen.i32) &&
        info.results === (spec.result ? binaryen.i32 : binaryen.none),
      `swap: function "${name}" looks like ${role} but its signature is not ${role}'s on wasm32 ` +
        `(${spec.params} i32 parameters${spec.result ? ", an i32 result" : ", no result"}): not swapping a function swap does not understand`,
    );
    found.set(name, { function: name, role, via, servedBy: spec.serves });
  };
  for (const [name, f] of functions) {
    const role = f.imported ? ENTRY_NAMES[f.base] : ENTRY_NAMES[name];
    // Imports: only the plain C names (a module linked with --allow-undefined imports malloc).
    if (role && (!f.imported || f.base === role)) add(name, role, f.imported ? "import" : "name");
  }
  for (let i = 0; i < module.getNumExports(); i++) {
    const info = binaryen.getExportInfo(module.getExportByIndex(i));
    const role = ENTRY_NAMES[info.name];
    if (info.kind === binaryen.ExternalFunction && role) add(forwardedTo(module, info.value) ?? info.value, role, "export");
  }
  return found;
}

/**
 * The function that `name` forwards all its parameters to, when it is a wrapper: wasm-ld exports
 * a function of a command module (one with `_start`) through `malloc.command_export`, which runs
 * the constructors, calls `malloc` with its arguments, and runs the destructors. Undefined when
 * `name` is not such a wrapper (no single call passes its parameters through in order).
 */
function forwardedTo(module: binaryen.Module, name: string): string | undefined {
  const fn = binaryen.getFunctionInfo(module.getFunction(name));
  if (fn.module) return undefined;
  const count = binaryen.expandType(fn.params).length;
  const targets: string[] = [];
  const isParam = (e: number, i: number) => {
    const info = binaryen.getExpressionInfo(e);
    return info.id === binaryen.LocalGetId && (info as binaryen.LocalGetInfo).index === i;
  };
  const visit = (e: number): void => {
    if (!e) return;
    const info = binaryen.getExpressionInfo(e);
    if (info.id === binaryen.BlockId) (info as binaryen.BlockInfo).children.forEach(visit);
    else if (info.id === binaryen.LocalSetId) visit((info as binaryen.LocalSetInfo).value);
    else if (info.id === binaryen.DropId) visit((info as binaryen.DropInfo).value);
    else if (info.id === binaryen.ReturnId) visit((info as binaryen.ReturnInfo).value);
    else if (info.id === binaryen.CallId) {
      const call = info as binaryen.CallInfo;
      if (call.operands.length === count && call.operands.every(isParam)) targets.push(call.target);
    }
  };
  visit(fn.body);
  const target = targets.length === 1 ? targets[0]! : undefined;
  if (!target || target === name) return undefined;
  const callee = binaryen.getFunctionInfo(module.getFunction(target));
  return callee.params === fn.params && callee.results === fn.results ? target : undefined;
}

const CALL = /\((?:return_)?call \$("(?:[^"\\]|\\.)*"|[^\s()]+)|\(ref\.func \$("(?:[^"\\]|\\.)*"|[^\s()]+)/g;
/** A load or store at a constant address: `(i32.load $memory offset=O (i32.const C))`, address C + O. */
const STATIC_ACCESS = /\([if](?:32|64)\.(?:load|store)\w*(?:\s+\$[^\s()]+)?(?:\s+offset=(\d+))?(?:\s+align=\d+)?\s*\(i32\.const (-?\d+)\)/g;

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { t: 9, n: 10, r: 13, '"': 34, "'": 39, "\\": 92 };

/**
 * A quoted name of Binaryen's text (`$"..."`), unquoted: Binaryen escapes `"`, `'` and `\\` with a
 * backslash, `\t`, `\n`, `\r`, and other bytes as two hex digits (`\5c`). Not JSON: Zig's names
 * (`io.writer.Writer(...,(function 'write')).writeAll`) hold `'`, which JSON.parse refuses.
 */
export function unquoteName(quoted: string): string {
  const body = quoted.slice(1, -1);
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch !== "\\") {
      const code = body.codePointAt(i)!;
      if (code > 0xffff) i++;
      bytes.push(...encoder.encode(String.fromCodePoint(code)));
      continue;
    }
    const next = body[++i]!;
    if (next in SIMPLE_ESCAPES) bytes.push(SIMPLE_ESCAPES[next]!);
    else if (next === "u" && body[i + 1] === "{") {
      const end = body.indexOf("}", i);
      bytes.push(...encoder.encode(String.fromCodePoint(parseInt(body.slice(i + 2, end), 16))));
      i = end;
    } else {
      bytes.push(parseInt(body.slice(i, i + 2), 16));
      i++;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

interface Code {
  /** Direct calls and function references. */
  readonly calls: ReadonlySet<string>;
  /** Addresses of static data it loads or stores directly (an allocator's state lives there). */
  readonly statics: ReadonlySet<number>;
  readonly grows: boolean;
}

/** What every defined function calls, which static data it touches, whether it grows memory (read from Binaryen's text). */
function readCode(module: binaryen.Module, functions: ReadonlyMap<string, FunctionEntry>): Map<string, Code> {
  const code = new Map<string, Code>();
  for (const [name, f] of functions) {
    const calls = new Set<string>(), statics = new Set<number>();
    let grows = false;
    if (!f.imported) {
      const text = binaryen.emitText(binaryen.getFunctionInfo(module.getFunction(name)).body);
      for (const m of text.matchAll(CALL)) {
        const raw = m[1] ?? m[2]!;
        calls.add(raw.startsWith('"') ? unquoteName(raw) : raw);
      }
      for (const m of text.matchAll(STATIC_ACCESS)) statics.add((Number(m[2]) >>> 0) + Number(m[1] ?? 0));
      grows = /\(memory\.grow\b/.test(text);
    }
    code.set(name, { calls, statics, grows });
  }
  return code;
}

function reachable(roots: readonly string[], code: ReadonlyMap<string, Code>): Set<string> {
  const seen = new Set<string>(roots);
  const todo = [...roots];
  while (todo.length > 0) {
    for (const callee of code.get(todo.pop()!)?.calls ?? []) {
      if (!seen.has(callee)) {
        seen.add(callee);
        todo.push(callee);
      }
    }
  }
  return seen;
}

/** A global's constant i32 initial value. */
function constGlobal(module: binaryen.Module, name: string): number | undefined {
  const ref = module.getGlobal(name);
  if (!ref) return undefined;
  const { init, module: from } = binaryen.getGlobalInfo(ref);
  if (from || !init || binaryen.getExpressionInfo(init).id !== binaryen.ConstId) return undefined;
  const value = (binaryen.getExpressionInfo(init) as binaryen.ConstInfo).value;
  return typeof value === "number" ? value >>> 0 : undefined;
}

/**
 * Where the heap starts: `__heap_base` (exported, or a global of that name), else derived from
 * what wasm-ld lays out below it (the stack pointer's initial value and the data segments).
 */
function heapStart(module: binaryen.Module, given: number | undefined): { start: number; source: string } {
  if (given !== undefined) return { start: given, source: "given (the heapBase option)" };
  const exported = module.getExport("__heap_base");
  if (exported) {
    const info = binaryen.getExportInfo(exported);
    const value = info.kind === binaryen.ExternalGlobal ? constGlobal(module, info.value) : undefined;
    if (value) return { start: value, source: "__heap_base (exported)" };
  }
  const named = constGlobal(module, "__heap_base");
  if (named) return { start: named, source: "__heap_base (a global)" };
  // wasm-ld folds __heap_base into constants unless it is exported: everything below it is the
  // data segments and the stack, whose top is __stack_pointer's initial value.
  // The stack pointer: by name, or (no names) every mutable i32 global that starts inside the
  // initial memory: wasm-ld's first global is __stack_pointer; taking them all can only move the
  // heap's start up.
  const stackPointer = constGlobal(module, "__stack_pointer");
  let end = stackPointer ?? 0, lowestData = Infinity;
  if (!end) {
    const memoryEnd = module.getMemoryInfo().initial * 65536;
    for (let i = 0; i < module.getNumGlobals(); i++) {
      const info = binaryen.getGlobalInfo(module.getGlobalByIndex(i));
      const value = info.mutable && info.type === binaryen.i32 ? constGlobal(module, info.name) : undefined;
      if (value !== undefined && value <= memoryEnd) end = Math.max(end, value);
    }
  }
  const segments = module as unknown as {
    getNumDataSegments(): number;
    getDataSegmentByIndex(i: number): number;
    getDataSegmentInfo(ref: number): { offset: number | null; data: ArrayBuffer; passive: boolean };
  };
  for (let i = 0; i < segments.getNumDataSegments(); i++) {
    let segment;
    try {
      segment = segments.getDataSegmentInfo(segments.getDataSegmentByIndex(i));
    } catch {
      throw new AllocConfigError(
        "swap: a data segment of the module has no constant offset (a position-independent build?), so swap cannot tell where " +
          "its static data ends: export __heap_base (-Wl,--export=__heap_base) or pass heapBase",
      );
    }
    if (!segment.passive && segment.offset !== null) {
      lowestData = Math.min(lowestData, segment.offset);
      end = Math.max(end, segment.offset + segment.data.byteLength);
    }
  }
  // With the stack first (wasm-ld --stack-first, as Zig links), the zero-initialised data (.bss)
  // follows the data segments and has no segment of its own (the memory starts zeroed): nothing
  // but the code tells where it ends. Every address of it is a constant in the code (a
  // non-relocatable build), and so is __heap_base where the old allocator reads it: the heap
  // starts above every constant between the data segments and the end of the initial memory.
  // (With the data first, the .bss lies below the stack, whose top covers it.)
  let bss = false;
  if (stackPointer !== undefined && stackPointer <= lowestData && end > stackPointer) {
    const memoryEnd = module.getMemoryInfo().initial * 65536;
    const dataEnd = end;
    for (const m of module.emitText().matchAll(/\(i32\.const (\d+)\)|offset=(\d+)/g)) {
      const value = Number(m[1] ?? m[2]);
      if (value >= dataEnd && value < memoryEnd && value > end) end = value;
    }
    bss = end > dataEnd;
    end = (end + 15) & ~15;
  }
  check(
    end > 0,
    "swap: cannot tell where the program's static data and stack end: it has no __heap_base, __stack_pointer or data segment; " +
      "export __heap_base (-Wl,--export=__heap_base) or pass heapBase",
  );
  return {
    start: end,
    source: bss
      ? "derived from the data segments and the static addresses the code uses above them (the stack comes first; wasm-ld folds __heap_base away unless it is exported)"
      : "derived from __stack_pointer's initial value and the data segments (wasm-ld folds __heap_base away unless it is exported)",
  };
}

/** The host functions a recording build reports to (see {@link SwapOptions.record}). */
interface Recorder {
  readonly alloc: string;
  readonly free: string;
  readonly realloc: string;
}

/** The module name of the recording imports. */
export const RECORD_MODULE = "alloc_record";

function addRecorder(module: binaryen.Module, prefix: string): Recorder {
  const i32 = binaryen.i32;
  const add = (field: string, params: number[]) => {
    const name = `${prefix}/record/${field}`;
    module.addFunctionImport(name, RECORD_MODULE, field, binaryen.createType(params), binaryen.none);
    return name;
  };
  return { alloc: add("alloc", [i32, i32]), free: add("free", [i32]), realloc: add("realloc", [i32, i32, i32]) };
}

/** The call that reports entry point `role`'s call, given its parameters and its result. */
function recordCall(module: binaryen.Module, role: Role, recorder: Recorder, param: (i: number) => number, result: () => number): number | undefined {
  const call = (fn: string, args: number[]) => module.call(fn, args, binaryen.none);
  switch (role) {
    case "malloc":
      return call(recorder.alloc, [param(0), result()]);
    case "calloc":
      return call(recorder.alloc, [module.i32.mul(param(0), param(1)), result()]);
    case "aligned_alloc":
    case "memalign":
      return call(recorder.alloc, [param(1), result()]);
    case "rust_alloc":
    case "rust_alloc_zeroed":
      return call(recorder.alloc, [param(0), result()]);
    case "posix_memalign":
      return module.if(module.i32.eqz(result()), call(recorder.alloc, [param(2), module.i32.load(0, 4, param(0))]));
    case "free":
    case "rust_dealloc":
      return call(recorder.free, [param(0)]);
    case "realloc":
      return call(recorder.realloc, [param(0), param(1), result()]);
    case "rust_realloc":
      return call(recorder.realloc, [param(0), param(3), result()]);
    case "malloc_usable_size":
      return undefined;
  }
}

/** Makes entry point `entry` call ours (and report to the recorder), keeping its name and signature. */
function rewrite(
  module: binaryen.Module,
  entry: FoundEntry,
  ours: Readonly<Record<string, string>>,
  minAlign: number,
  bulkMemory: boolean,
  recorder: Recorder | undefined,
): void {
  const ref = module.getFunction(entry.function);
  const info = binaryen.getFunctionInfo(ref);
  const params = binaryen.expandType(info.params);
  const built = isRustRole(entry.role)
    ? rustBody(module, entry.role, ours, minAlign, bulkMemory)
    : { vars: [] as number[], body: module.call(ours[entry.servedBy]!, params.map((type, i) => module.local.get(i, type)), info.results) };
  let { vars, body } = built;
  const record = recorder && (() => {
    const resultLocal = params.length + vars.length;
    const hasResult = info.results !== binaryen.none;
    const report = recordCall(module, entry.role, recorder, (i) => module.local.get(i, params[i]!), () => module.local.get(resultLocal, binaryen.i32));
    if (report === undefined) return undefined;
    return hasResult
      ? { vars: [...vars, binaryen.i32], body: module.block(null, [module.local.set(resultLocal, body), report, module.local.get(resultLocal, binaryen.i32)], binaryen.i32) }
      : { vars, body: module.block(null, [body, report]) };
  })();
  if (record) ({ vars, body } = record);
  if (entry.via !== "import" && vars.length === 0 && !isRustRole(entry.role)) {
    // binaryen.js has Function.setBody; its typings put it elsewhere.
    (binaryen as unknown as { Function: { setBody(func: number, body: number): void } }).Function.setBody(ref, body);
    return;
  }
  // A new function under the same name (calls, exports and tables refer to it by name).
  module.removeFunction(entry.function);
  module.addFunction(entry.function, info.params, info.results, vars, body);
}

/**
 * Binaryen's settings for a whole program: nothing assumed of its memory (its data and stack
 * start at address 0), names kept (emitBinary drops them otherwise). For speed, the inlining
 * limits of a standalone speed build (`withOptimizeSettings`), so that the allocator's helpers
 * are inlined into its entries as they are in `alloc build --opt speed`; they apply to the
 * program's own functions too. With Binaryen's default limits the helpers stayed calls:
 * binary-trees (packages/bench/programs) took 696 ms against 508 ms with these limits, and
 * its original build 437 ms (medians of 5, `alloc swap --opt speed`, free-list). For size,
 * Binaryen's own limits. ("none" optimises nothing: the levels do not matter.)
 */
function withProgramSettings<T>(mode: "size" | "speed" | "none", fn: () => T): T {
  const flags = { zeroFilledMemory: false, lowMemoryUnused: false, debugInfo: true, inlineHelpers: mode === "speed" };
  return withOptimizeSettings(mode === "none" ? "size" : mode, flags, fn);
}

/** The size of the original module optimised the same way: what the swap is compared with. */
function optimizedSize(bytes: Uint8Array, features: number, mode: "size" | "speed"): number {
  return optimizeProgram(bytes, mode, features).byteLength;
}

/**
 * A program optimised the way {@link swapAllocator} optimises the program it swaps into (same
 * Binaryen settings, `features` enabled), with its own allocator: the baseline a swapped build
 * is compared with, so that a comparison is of allocators, not of optimisers.
 */
export function optimizeProgram(bytes: Uint8Array, mode: "size" | "speed", features: number): Uint8Array {
  const module = readModule(bytes);
  try {
    module.setFeatures(features);
    return withProgramSettings(mode, () => {
      module.optimize();
      return module.emitBinary();
    });
  } finally {
    module.dispose();
  }
}

const C_NAMES = Object.keys(ROLES).join(", ");
const EXPORT_FLAGS = "-Wl,--export=malloc,--export=free,--export=calloc,--export=realloc,--export=posix_memalign,--export=aligned_alloc";

function strippedMessage(): string {
  return (
    `swap: the module has no name section (linked with --strip-all or -s, or stripped afterwards) and exports none of ` +
    `${C_NAMES}: swap cannot find its allocator. Rebuild without --strip-all (-Wl,--strip-debug keeps the names and drops ` +
    `only the debug info), or export the allocator's functions (${EXPORT_FLAGS})`
  );
}

function noAllocatorMessage(): string {
  return `swap: found no allocator entry point in the module (looked for ${C_NAMES}, their __libc_, dl and emscripten_builtin_ names, by name, export and import): nothing to swap`;
}

/**
 * Code of the old allocator that is still reachable, with why it counts as such: a C runtime's
 * allocator name; growing the memory while reachable from the old entry points (sbrk); or
 * touching the static state of the removed allocator (two or more of the addresses its code
 * loaded or stored: dlmalloc's `_gm_` fields; one shared address may be errno).
 */
function findLeftovers(
  remaining: ReadonlySet<string>,
  removed: readonly string[],
  oldCode: ReadonlySet<string>,
  code: ReadonlyMap<string, Code>,
  found: ReadonlyMap<string, FoundEntry>,
  prefix: string,
): Map<string, string> {
  const oldState = new Set<number>();
  for (const f of removed) for (const a of code.get(f)?.statics ?? []) oldState.add(a);
  const out = new Map<string, string>();
  for (const f of remaining) {
    if (found.has(f) || f.startsWith(`${prefix}/`)) continue;
    const c = code.get(f);
    if (isOldAllocatorName(f)) out.set(f, "a C runtime's allocator function");
    else if (c?.grows && oldCode.has(f)) out.set(f, "grows the memory for the old allocator");
    else {
      const shared = [...(c?.statics ?? [])].filter((a) => oldState.has(a));
      if (shared.length >= 2) out.set(f, `uses the removed allocator's state at ${shared.slice(0, 3).join(", ")}${shared.length > 3 ? "..." : ""}`);
    }
  }
  return out;
}

function leftoverMessage(
  leftovers: ReadonlyMap<string, string>,
  remaining: ReadonlySet<string>,
  code: ReadonlyMap<string, Code>,
  found: ReadonlyMap<string, FoundEntry>,
  named: boolean,
): string {
  const show = (f: string) => (named ? `"${f}"` : `function ${f}`);
  const described = [...leftovers].map(([f, why]) => {
    const callers = [...remaining].filter((c) => code.get(c)?.calls.has(f) && !leftovers.has(c));
    return `${show(f)} (${why})${callers.length ? `, called by ${callers.slice(0, 4).map(show).join(", ")}` : ""}`;
  });
  return (
    `swap: code of the program's old allocator would stay reachable: ${described.join("; ")}. Swap replaced ` +
    `${[...found.keys()].map(show).join(", ")}, and refuses to produce a module that mixes two allocators. ` +
    (named
      ? `If a caller above is an entry point of the allocator under another name, export it under its C name (${EXPORT_FLAGS}).`
      : `The module has no name section, so only exported entry points can be found: rebuild without --strip-all, or export ` +
        `every allocator function (${EXPORT_FLAGS}).`)
  );
}
