import binaryen from "binaryen";
import { ReplayError } from "./replay.ts";
import { describeOp, type Trace } from "./trace.ts";

/**
 * A deterministic work count: time is noisy, work is not.
 *
 * {@link instrumentWork} runs Binaryen's `log-execution` pass over an allocator module, which
 * puts a call to an imported `log_execution` at every function entry, before the last expression
 * of every function body made of several, before every `return` and at the top of every loop
 * body; then it replaces that import with a function of the module that adds 1 to a global
 * counter, exported as {@link WORK_EXPORT}. {@link measureWork} replays a trace op by op from JS
 * and reads the counter around each call. One op's work is therefore
 *
 *   1 or 2 per function call inside the allocator (its entry, and the last expression of a body
 *   of several), the exported entry point included, + 1 per `return` + 1 per loop iteration.
 *
 * A straight-line `malloc` costs 1 or 2, a few more with helper calls that were not inlined; a
 * first-fit walk over n free cells costs at least n. The unit does not see straight-line
 * instructions, nor the length of a `memory.copy` or `memory.fill` (bulk memory: one
 * instruction): it measures searches, walks and refill loops, which is what makes an allocator's
 * worst operation grow with the heap. Counts of two allocators built by different compilers
 * (inlining differently) compare loosely; counts of one allocator over two traces compare exactly.
 */
export const WORK_UNIT = "log-execution events: 1-2 per call (entry, last expression of a body of several) + 1 per return + 1 per loop iteration";

/** The counter global the instrumented module exports. */
export const WORK_EXPORT = "alloc~work";

const LOG_FUNCTION = "log_execution";

/**
 * The allocator module `binary` with a work counter (see {@link WORK_UNIT}), exported as
 * {@link WORK_EXPORT} (a mutable i32 global). Everything else is unchanged: same imports, same
 * exports, same behaviour. Throws when the module cannot be read or already imports
 * `env.log_execution`.
 */
export function instrumentWork(binary: Uint8Array): Uint8Array {
  const module = binaryen.readBinary(binary);
  try {
    module.setFeatures(binaryen.Features.All);
    if (module.getFunction(LOG_FUNCTION)) throw new Error(`instrumentWork: the module already has a function named ${LOG_FUNCTION}`);
    if (module.hasMemory() && module.getMemoryInfo().is64) {
      throw new Error("instrumentWork: the module has a memory64 memory; work is measured on wasm32 builds only (replay runs 64-bit builds)");
    }
    // Only this pass: it reads no optimisation settings, so the process-wide ones do not matter.
    module.runPasses(["log-execution"]);
    if (!module.getFunction(LOG_FUNCTION)) throw new Error("instrumentWork: log-execution added no import (no function to instrument?)");
    module.removeFunction(LOG_FUNCTION);
    module.addGlobal(WORK_EXPORT, binaryen.i32, true, module.i32.const(0));
    const counter = () => module.global.get(WORK_EXPORT, binaryen.i32);
    module.addFunction(
      LOG_FUNCTION,
      binaryen.createType([binaryen.i32]),
      binaryen.none,
      [],
      module.global.set(WORK_EXPORT, module.i32.add(counter(), module.i32.const(1))),
    );
    module.addGlobalExport(WORK_EXPORT, WORK_EXPORT);
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

/** The work of one kind of operation over a trace. */
export interface OpWork {
  /** Calls made (a `Free` of an allocation that is not live calls nothing and is not counted). */
  readonly count: number;
  /** Sum of the work of those calls. */
  readonly total: number;
  /** total / count (0 when count is 0). */
  readonly mean: number;
  /** The largest work of one call. */
  readonly worst: number;
  /** The trace index of the first op with the worst work (-1 when count is 0). */
  readonly worstOp: number;
}

export interface WorkResult {
  readonly trace: string;
  /** See {@link WORK_UNIT}. */
  readonly unit: string;
  /** Operations replayed (fewer than the trace's when `stopped`). */
  readonly operations: number;
  readonly malloc: OpWork;
  readonly free: OpWork;
  readonly realloc: OpWork;
  /** Every call together. */
  readonly all: OpWork;
  /** malloc or realloc calls that returned 0 for a non-zero size. */
  readonly failedAllocations: number;
  /** The largest `memory.buffer.byteLength` seen after any op. Nothing but the allocator's own data is in that memory. */
  readonly peakMemoryBytes: number;
  /** `memory.buffer.byteLength` after the last op. */
  readonly endMemoryBytes: number;
  /** The largest sum of the requested sizes of live blocks. */
  readonly peakLiveBytes: number;
  readonly liveBytesAtEnd: number;
  /** Why the replay stopped before the end (`maxMemoryBytes` passed), when it did. */
  readonly stopped?: string;
}

export interface WorkOptions {
  /** Imports the allocator module needs (e.g. `{ env: { memory } }` for an imported memory). */
  readonly imports?: WebAssembly.Imports;
  /** The memory, when the module imports it rather than exporting it as `memory`. */
  readonly memory?: WebAssembly.Memory;
  /** Export names, when they are not `malloc`, `free` and `realloc`. */
  readonly names?: { readonly malloc?: string; readonly free?: string; readonly realloc?: string };
  /** Every block must be aligned to this (default 8); a misaligned or out-of-bounds block throws a ReplayError. */
  readonly align?: number;
  /** Stop (and say so in `stopped`) once memory exceeds this many bytes: a runaway heap ends the run early. */
  readonly maxMemoryBytes?: number;
}

type Fn = (...args: number[]) => number;

class Tally {
  count = 0;
  total = 0;
  worst = 0;
  worstOp = -1;
  add(work: number, op: number): void {
    this.count++;
    this.total += work;
    if (work > this.worst || this.worstOp < 0) {
      this.worst = work;
      this.worstOp = op;
    }
  }
  result(): OpWork {
    return { count: this.count, total: this.total, mean: this.count ? this.total / this.count : 0, worst: this.worst, worstOp: this.worstOp };
  }
}

/**
 * Instruments `binary` ({@link instrumentWork}), instantiates it on a fresh heap and replays
 * `trace` one op at a time from JS, reading the work counter around every call. Returns the
 * mean and worst work per malloc, free and realloc, with memory and live bytes as a by-product
 * (the op array lives in JS here: the heap holds the allocator's data only). Blocks are checked
 * for alignment and bounds, not tagged: use `replay` for full verification.
 */
export function measureWork(binary: Uint8Array, trace: Trace, options: WorkOptions = {}): WorkResult {
  const module = new WebAssembly.Module(instrumentWork(binary) as BufferSource);
  const instance = new WebAssembly.Instance(module, options.imports ?? {});
  const exports = instance.exports as Record<string, unknown>;
  const memory = options.memory ?? (exports.memory as WebAssembly.Memory | undefined);
  if (!(memory instanceof WebAssembly.Memory)) throw new Error("measureWork: the module exports no memory and none was given");
  const fn = (role: "malloc" | "free" | "realloc"): Fn => {
    const name = options.names?.[role] ?? role;
    const f = exports[name];
    if (typeof f === "function") return f as Fn;
    return () => {
      throw new Error(`measureWork: the allocator does not export "${name}" (${role}), which ${trace.name} needs`);
    };
  };
  const malloc = fn("malloc"), free = fn("free"), realloc = fn("realloc");
  const counter = exports[WORK_EXPORT] as WebAssembly.Global;
  const align = options.align ?? 8;
  const maxMemory = options.maxMemoryBytes ?? Infinity;

  const ptrs = new Uint32Array(trace.allocations);
  const sizes = new Float64Array(trace.allocations);
  const tallies = { malloc: new Tally(), free: new Tally(), realloc: new Tally() };
  const all = new Tally();
  let live = 0, peakLive = 0, failed = 0, peakMemory = memory.buffer.byteLength;
  let stopped: string | undefined;
  let i = 0;

  const check = (k: number, ptr: number, size: number) => {
    const end = memory.buffer.byteLength;
    if (ptr % align !== 0) throw new ReplayError(`${describeOp(trace, i)}: allocation ${k} got block ${ptr}, which is not ${align}-aligned`, trace.name, i, trace.lines?.[i]);
    if (ptr + size > end) throw new ReplayError(`${describeOp(trace, i)}: allocation ${k} got block ${ptr} (${size} bytes), which ends past the end of memory (${end} bytes)`, trace.name, i, trace.lines?.[i]);
  };

  const ops = trace.ops;
  for (; i < ops.length; i++) {
    const op = ops[i]!;
    const k = op.index;
    let work: number;
    try {
      if (op.op === "alloc") {
        counter.value = 0;
        const p = malloc(op.size) >>> 0;
        work = counter.value as number;
        tallies.malloc.add(work, i);
        if (p === 0) {
          if (op.size > 0) failed++;
        } else {
          check(k, p, op.size);
          ptrs[k] = p;
          sizes[k] = op.size;
          live += op.size;
        }
      } else if (op.op === "free") {
        const p = ptrs[k]!;
        if (p === 0) continue;
        counter.value = 0;
        free(p);
        work = counter.value as number;
        tallies.free.add(work, i);
        ptrs[k] = 0;
        live -= sizes[k]!;
        sizes[k] = 0;
      } else {
        const old = ptrs[k]!;
        counter.value = 0;
        const p = realloc(old, op.size) >>> 0;
        work = counter.value as number;
        tallies.realloc.add(work, i);
        if (p === 0 && op.size > 0) {
          failed++;
        } else if (p === 0) {
          ptrs[k] = 0;
          live -= sizes[k]!;
          sizes[k] = 0;
        } else {
          check(k, p, op.size);
          ptrs[k] = p;
          live += op.size - sizes[k]!;
          sizes[k] = op.size;
        }
      }
    } catch (error) {
      if (error instanceof ReplayError) throw error;
      throw new ReplayError(`${describeOp(trace, i)}: the allocator trapped (${(error as Error).message})`, trace.name, i, trace.lines?.[i], { cause: error });
    }
    all.add(work, i);
    if (live > peakLive) peakLive = live;
    const bytes = memory.buffer.byteLength;
    if (bytes > peakMemory) {
      peakMemory = bytes;
      if (bytes > maxMemory) {
        stopped = `${describeOp(trace, i)}: memory reached ${bytes} bytes, past the limit of ${maxMemory} (live: ${live})`;
        i++;
        break;
      }
    }
  }
  return {
    trace: trace.name,
    unit: WORK_UNIT,
    operations: i,
    malloc: tallies.malloc.result(),
    free: tallies.free.result(),
    realloc: tallies.realloc.result(),
    all: all.result(),
    failedAllocations: failed,
    peakMemoryBytes: peakMemory,
    endMemoryBytes: memory.buffer.byteLength,
    peakLiveBytes: peakLive,
    liveBytesAtEnd: live,
    ...(stopped !== undefined && { stopped }),
  };
}
