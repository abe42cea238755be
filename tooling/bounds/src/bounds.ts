import { bump } from "@alloc/bump";
import { buildAllocator, type Strategy } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "@alloc/size-classes";
import { measureWork, type OpWork, type Trace, type Workload, type WorkResult } from "@alloc/trace";

/**
 * Bounded time and memory on every workload (issue 10): what the tests pin, and what
 * `pnpm --filter @alloc/bounds measure` prints.
 *
 * Every workload of `@alloc/trace` is stationary (its live bytes stay bounded however long it
 * runs), so each composition replays it at {@link N} operations and at {@link LONGER}×N, and:
 *
 * - **work**: the worst operation at 4N is at most {@link WORK_GROWTH}× the worst at N (plus
 *   {@link WORK_SLACK}), and under {@link WORK_BOUND}, in `@alloc/trace`'s work unit (calls,
 *   returns, loop iterations: see `WORK_UNIT`);
 * - **memory**: at the end of the pattern, memory is at most {@link MEMORY_FACTOR}× the peak live
 *   bytes plus {@link ALLOWANCE}, at N and at 4N, or, where wasi-libc's dlmalloc itself needs
 *   more than {@link MEMORY_FACTOR}× the peak live bytes, at most {@link REFERENCE_FACTOR}× what
 *   dlmalloc needs (issue 10's bound;
 *   `reference/dlmalloc.wasm`, replayed on the same trace); and the memory at 4N is at most
 *   {@link FLAT_FACTOR}× the memory at N, times the growth of the peak live bytes when they grow,
 *   plus {@link ALLOWANCE} (flat); at each of {@link SEEDS}.
 */
import { readFileSync } from "node:fs";

/**
 * The seeds each workload runs at: the generators' shapes, not one sample of them (a seed's
 * longer run may reach a larger unit or buffer than its shorter run: see the flatness bound).
 */
export const SEEDS = [1, 2, 3] as const;
/** Operations of the shorter run. */
export const N = 20_000;
/** The longer run is this many times longer. */
export const LONGER = 4;

/**
 * The absolute bound on one operation's work. An O(1) allocator's worst operation here is a
 * handful of calls and loops bounded by constants of its design, measured at c1a7f07: bump 4, the
 * TLSF free list 15, size classes over either 4 to 33, dlmalloc 13 to 18 (malloc and free). 128
 * leaves 4 times the largest of those for loops bounded by design constants (a scan over a few
 * bitmap words, a lookup over the classes, a coalescing step) and refuses any walk over 128 free
 * cells or list nodes: first fit (`freeList({ fit: "first" })`) walks 130 to 300 on seven of the
 * workloads at 80,000 operations, and thousands on real programs' heaps (issue 10: 30 to 55 times
 * slower than dlmalloc on a compiler's trace).
 */
export const WORK_BOUND = 128;
/** The worst at 4N may exceed the worst at N by this factor (a rarer worst case met later)... */
export const WORK_GROWTH = 2;
/** ...plus this much (tiny allocators whose worst is 2 and becomes 5). */
export const WORK_SLACK = 16;

/** Memory at the end ≤ MEMORY_FACTOR × peak live + ALLOWANCE. */
export const MEMORY_FACTOR = 1.5;
/**
 * Where dlmalloc's heap needs more than MEMORY_FACTOR × peak live, memory at the end may also be
 * up to REFERENCE_FACTOR × dlmalloc's heap (its memory less its initial memory: stack and data).
 */
export const REFERENCE_FACTOR = 1.2;
/** Memory at 4N ≤ FLAT_FACTOR × memory at N (× the peak live bytes' growth, when they grow) + ALLOWANCE. */
export const FLAT_FACTOR = 1.1;
/**
 * Fixed allowance for small heaps: static data, the first pages, a class's first span, a heap
 * of a few hundred KiB rounded up to pages. 256 KiB (4 pages).
 */
export const ALLOWANCE = 256 * 1024;

/** One of our compositions, over the default grow backend. */
export interface Composition {
  readonly name: string;
  stack(): Strategy[];
  /**
   * Which workloads the memory bounds apply to: "all"; "small" (only those whose every request is
   * at most 1 KiB: over bump, blocks too large for a class are never reused, by design); "none"
   * (bump alone reuses nothing but the latest block).
   */
  readonly memory: "all" | "small" | "none";
}

export const COMPOSITIONS: readonly Composition[] = [
  { name: "bump", stack: () => [bump()], memory: "none" },
  { name: "free-list", stack: () => [freeList()], memory: "all" },
  { name: "size-classes > free-list", stack: () => [sizeClasses(), freeList()], memory: "all" },
  { name: "size-classes > bump", stack: () => [sizeClasses(), bump()], memory: "small" },
];

const binaries = new Map<string, Uint8Array>();

/** The composition's module with malloc, free, calloc and realloc, optimised for speed (as benchmarked). */
export function binaryOf(c: Composition): Uint8Array {
  let binary = binaries.get(c.name);
  if (!binary) {
    binary = buildAllocator({ strategy: c.stack(), exports: ["malloc", "free", "calloc", "realloc"], optimize: "speed" }).binary;
    binaries.set(c.name, binary);
  }
  return binary;
}

/**
 * wasi-libc's dlmalloc, byte for byte the peer `pnpm bench` builds (`reference/build.sh`
 * rebuilds it): the reference of the memory bounds.
 */
export const REFERENCE: { readonly name: string; readonly binary: Uint8Array; readonly initialBytes: number } = (() => {
  const binary = new Uint8Array(readFileSync(new URL("../reference/dlmalloc.wasm", import.meta.url)));
  const instance = new WebAssembly.Instance(new WebAssembly.Module(binary as BufferSource), {});
  return { name: "wasi-libc dlmalloc", binary, initialBytes: (instance.exports.memory as WebAssembly.Memory).buffer.byteLength };
})();

/** The largest request of a trace. */
export function largestRequest(trace: Trace): number {
  let max = 0;
  for (const op of trace.ops) if (op.op !== "free" && op.size > max) max = op.size;
  return max;
}

/** Whether the memory bounds apply to `c` on `trace`. */
export function memoryApplies(c: Composition, trace: Trace): boolean {
  return c.memory === "all" || (c.memory === "small" && largestRequest(trace) <= 1024);
}

/** The two runs of one composition on one workload. */
export interface Pair {
  readonly short: WorkResult;
  readonly long: WorkResult;
  /** Whether the memory bounds apply (see {@link Composition.memory}), for the longer trace. */
  readonly memoryApplies: boolean;
  /** The heap {@link REFERENCE} needs at the end of the two runs (bytes past its initial memory). */
  readonly reference: { readonly short: number; readonly long: number };
}

const references = new Map<string, { short: number; long: number }>();

/** {@link REFERENCE}'s heap at the end of `workload` at n and 4n operations. */
function referenceHeap(workload: Workload, n: number, seed: number): { short: number; long: number } {
  const key = `${workload.name}\u0000${n}\u0000${seed}`;
  let r = references.get(key);
  if (!r) {
    r = { short: referenceHeapOf(workload.generate({ seed, ops: n })), long: referenceHeapOf(workload.generate({ seed, ops: n * LONGER })) };
    references.set(key, r);
  }
  return r;
}

const pairs = new Map<string, Pair>();

/**
 * Replays `workload` at N and 4N operations (of `seed`) on fresh instances of `c`, each stopped
 * early when memory passes 4 times what the memory bound allows for the longer run plus 64 MiB
 * (a runaway heap fails fast instead of taking gigabytes), or 64 MiB where the memory bounds do
 * not apply.
 */
export function measurePair(c: Composition, workload: Workload, n = N, seed = 1): Pair {
  const key = `${c.name}\u0000${workload.name}\u0000${n}\u0000${seed}`;
  let pair = pairs.get(key);
  if (!pair) {
    const short = workload.generate({ seed, ops: n });
    const long = workload.generate({ seed, ops: n * LONGER });
    const applies = memoryApplies(c, long);
    // Where the memory bounds do not apply (bump never reuses), 64 MiB of work is evidence enough.
    const cap = applies ? 4 * (MEMORY_FACTOR * peakLive(long) + ALLOWANCE) + (64 << 20) : 64 << 20;
    pair = {
      short: measureWork(binaryOf(c), short, { maxMemoryBytes: cap }),
      long: measureWork(binaryOf(c), long, { maxMemoryBytes: cap }),
      memoryApplies: applies,
      reference: applies ? referenceHeap(workload, n, seed) : { short: NaN, long: NaN },
    };
    pairs.set(key, pair);
  }
  return pair;
}

/** The peak of live bytes of a trace, computed in JS. */
export function peakLive(trace: Trace): number {
  const sizes = new Float64Array(trace.allocations);
  let live = 0, peak = 0;
  for (const op of trace.ops) {
    if (op.op === "free") {
      live -= sizes[op.index]!;
      sizes[op.index] = 0;
    } else {
      live += op.size - sizes[op.index]!;
      sizes[op.index] = op.size;
      if (live > peak) peak = live;
    }
  }
  return peak;
}

const worstOf = (r: WorkResult) =>
  (["malloc", "free", "realloc"] as const)
    .filter((k) => r[k].count)
    .map((k) => `${k} ${fmtWork(r[k])}`)
    .join(", ");

function fmtWork(w: OpWork): string {
  return `worst ${w.worst} (op ${w.worstOp}), mean ${w.mean.toFixed(1)}`;
}

const kib = (bytes: number) => `${Math.round(bytes / 1024)} KiB`;

/** What breaks the work bounds (empty when none). */
export function workViolations({ short, long, memoryApplies }: Pair): string[] {
  const out: string[] = [];
  // A runaway heap is a memory failure where memory is bounded; elsewhere the ops run so far count.
  if (memoryApplies) for (const r of [short, long]) if (r.stopped) out.push(`stopped: ${r.stopped}`);
  if (long.all.worst > WORK_GROWTH * short.all.worst + WORK_SLACK) {
    out.push(`the worst op grows with the trace: ${short.all.worst} at ${short.operations} ops, ${long.all.worst} at ${long.operations} (> ${WORK_GROWTH}× + ${WORK_SLACK})`);
  }
  if (long.all.worst > WORK_BOUND) out.push(`the worst op at ${long.operations} ops does ${long.all.worst} > ${WORK_BOUND}`);
  if (out.length) out.push(`at ${short.operations} ops: ${worstOf(short)}`, `at ${long.operations} ops: ${worstOf(long)}`);
  return out;
}

/**
 * Why the memory at the end of run `r` is over its bound, or undefined: over MEMORY_FACTOR × peak
 * live + ALLOWANCE and, where the reference's heap `ref` (bytes) is over MEMORY_FACTOR × peak
 * live itself, over REFERENCE_FACTOR × ref too.
 */
export function memoryOver(r: WorkResult, ref: number): string | undefined {
  const limit = MEMORY_FACTOR * r.peakLiveBytes + ALLOWANCE;
  const needsMore = ref > MEMORY_FACTOR * r.peakLiveBytes;
  if (r.endMemoryBytes <= (needsMore ? Math.max(limit, REFERENCE_FACTOR * ref) : limit)) return undefined;
  return (
    `memory ${kib(r.endMemoryBytes)} > ${MEMORY_FACTOR} × peak live ${kib(r.peakLiveBytes)} + ${kib(ALLOWANCE)} (${(r.endMemoryBytes / r.peakLiveBytes).toFixed(2)}× live)` +
    (needsMore ? ` and > ${REFERENCE_FACTOR} × ${REFERENCE.name}'s ${kib(ref)}` : ` (${REFERENCE.name} needs ${kib(ref)}: at most ${MEMORY_FACTOR}× live)`)
  );
}

/** {@link REFERENCE}'s heap at the end of `trace` (bytes past its initial memory). */
export function referenceHeapOf(trace: Trace): number {
  return measureWork(REFERENCE.binary, trace).endMemoryBytes - REFERENCE.initialBytes;
}

/** What breaks the memory bounds (empty when none). */
export function memoryViolations({ short, long, memoryApplies, reference }: Pair): string[] {
  if (!memoryApplies) throw new Error("memoryViolations: the memory bounds do not apply to this pair");
  const out: string[] = [];
  for (const [r, ref] of [[short, reference.short], [long, reference.long]] as const) {
    if (r.stopped) out.push(`stopped: ${r.stopped}`);
    if (r.failedAllocations) out.push(`${r.failedAllocations} failed allocations at ${r.operations} ops`);
    const problem = memoryOver(r, ref);
    if (problem) out.push(`at ${r.operations} ops: ${problem}`);
  }
  // Memory follows live bytes: where the longer run's live bytes peak higher (a seed's longer
  // trace may reach a larger unit or buffer), its memory may grow in proportion.
  const liveGrowth = Math.max(1, long.peakLiveBytes / Math.max(short.peakLiveBytes, 1));
  if (long.endMemoryBytes > FLAT_FACTOR * liveGrowth * short.endMemoryBytes + ALLOWANCE) {
    const grew = liveGrowth > 1 ? `, live bytes ×${liveGrowth.toFixed(2)}` : "";
    out.push(`not flat: memory ${kib(short.endMemoryBytes)} at ${short.operations} ops, ${kib(long.endMemoryBytes)} at ${long.operations} (> ${FLAT_FACTOR}×${grew} + ${kib(ALLOWANCE)})`);
  }
  return out;
}
