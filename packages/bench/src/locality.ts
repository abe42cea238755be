import { buildAllocator } from "@alloc/core";
import { recordHeap, type HeapRecording } from "@alloc/heap-map";
import { recordTrace, swapAllocator } from "@alloc/swap";
import { createReplayer, measureWork, parseTrace, type ReplayTarget, type Trace } from "@alloc/trace";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compositions } from "./compositions.ts";
import { BENCH_EXPORTS } from "./contenders.ts";
import { optimizeForSpeed, PROGRAMS_DIR, programBinary, type RealProgram } from "./programs.ts";
import { spread } from "./stats.ts";

/** How close each allocation is placed to the one before it. */
export interface Locality {
  /** Successive pairs of allocations counted (allocations - 1). */
  readonly pairs: number;
  /** Share of allocations placed after the previous one by at most `window` bytes (0 < next - previous ≤ window). */
  readonly nearAfter: number;
  /** Share placed below the previous one (next < previous). */
  readonly below: number;
}

/** The window of {@link Locality.nearAfter}: 256 bytes, a few cache lines. */
export const LOCALITY_WINDOW = 256;

/**
 * The locality of a sequence of allocation addresses, in the order the allocator returned them:
 * over each successive pair, the share where the second is at most `window` bytes above the first,
 * and the share where it is below. What is left is the share at the same address or further above.
 */
export function locality(addresses: ArrayLike<number>, window = LOCALITY_WINDOW): Locality {
  if (!Number.isInteger(window) || window < 1) throw new RangeError(`locality: window must be a positive integer, got ${window}`);
  let near = 0, below = 0;
  const pairs = Math.max(0, addresses.length - 1);
  for (let i = 1; i < addresses.length; i++) {
    const d = addresses[i]! - addresses[i - 1]!;
    if (d > 0 && d <= window) near++;
    else if (d < 0) below++;
  }
  return { pairs, nearAfter: pairs ? near / pairs : NaN, below: pairs ? below / pairs : NaN };
}

/**
 * The allocations of a replay, in order: the block of every `alloc`, and of every `realloc` that
 * moved its block (a realloc in place places nothing new). Failed allocations are left out.
 */
export function placements(recording: HeapRecording): Uint32Array {
  const out: number[] = [];
  for (let i = 0; i < recording.operations; i++) {
    const a = recording.address[i]!;
    if (a !== 0 && a !== recording.released[i]) out.push(a);
  }
  return Uint32Array.from(out);
}

/** The trace of one run of `program` (with `args`): every malloc, calloc, realloc and free it made. */
export async function programTrace(program: RealProgram, args: readonly string[]): Promise<Trace> {
  const { binary } = swapAllocator(programBinary(program), { record: true, optimize: "none", baseline: false });
  const recorded = await recordTrace(binary, args);
  if (recorded.run.exitCode !== 0) throw new Error(`locality: ${program.name} failed while recorded (exit ${recorded.run.exitCode})`);
  return parseTrace(recorded.text, `${program.name} ${args.join(" ")}`);
}

/** The alignment swapAllocator gives a program's blocks by default (its `minAlign`). */
const SWAP_MIN_ALIGN = 16;

const binaries = new Map<string, { binary: Uint8Array; module: WebAssembly.Module }>();

/**
 * `allocator` alone, as a module exporting memory, malloc, free, calloc and realloc: wasi-libc's
 * dlmalloc (programs/dlmalloc.wasm, the programs' own, linked alone, put through Binaryen's speed
 * optimiser as the programs' dlmalloc baseline is: {@link optimizeForSpeed}) or one of our
 * compositions (built for speed, aligned as swap aligns). Built once per process.
 *
 * (As clang -O2 left it, dlmalloc replayed binary-trees' trace 1.29× slower than optimised, and
 * binary-trees itself ran 1.28× slower with it: the replay then flattered our allocators.)
 */
export function allocatorModule(allocator: string): { binary: Uint8Array; module: WebAssembly.Module } {
  const known = binaries.get(allocator);
  if (known) return known;
  let binary: Uint8Array;
  if (allocator === "dlmalloc") {
    binary = optimizeForSpeed(new Uint8Array(readFileSync(join(PROGRAMS_DIR, "dlmalloc.wasm"))));
  } else {
    const composition = compositions().available.find((c) => c.name === allocator);
    if (!composition) throw new RangeError(`locality: unknown allocator ${JSON.stringify(allocator)}`);
    // minAlign 16, as swapAllocator builds it for a C program (wasi-libc's malloc aligns to 16).
    binary = buildAllocator({ strategy: composition.stack(), exports: BENCH_EXPORTS, optimize: "speed", minAlign: SWAP_MIN_ALIGN }).binary;
  }
  const built = { binary, module: new WebAssembly.Module(binary as BufferSource) };
  binaries.set(allocator, built);
  return built;
}

/** A fresh heap of `allocator` alone (see {@link allocatorModule}). */
export function freshHeap(allocator: string): ReplayTarget {
  const instance = new WebAssembly.Instance(allocatorModule(allocator).module, {});
  return { instance, memory: instance.exports.memory as WebAssembly.Memory };
}

/**
 * Median wall time, in ms, of replaying `trace` inside Wasm (the fast driver of `@alloc/trace`,
 * which checks nothing) on each allocator alone, over `rounds` interleaved rounds. Each sample is a
 * reused heap, as `pnpm bench` times it: a new instance replays the trace once untimed (growing
 * its memory, compiling), frees what is left live, and the second replay is timed. (Timing the
 * first replay on a fresh heap gave medians twice apart for one module in one run.)
 */
export function replayTimes(trace: Trace, allocators: readonly string[], rounds: number): Map<string, number> {
  const samples = new Map(allocators.map((a) => [a, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < allocators.length; k++) {
      const allocator = allocators[(k + round) % allocators.length]!;
      const replayer = createReplayer(freshHeap(allocator), trace, { verify: false });
      replayer.run({ freeLive: true });
      samples.get(allocator)!.push(replayer.run({ freeLive: true }).elapsedMs);
      replayer.dispose();
    }
  }
  return new Map([...samples].map(([a, ms]) => [a, spread(ms).median]));
}

/** The mean counted work per malloc and per free of `allocator` on `trace` (`measureWork` of `@alloc/trace`: deterministic). */
export function traceWork(trace: Trace, allocator: string): { readonly malloc: number; readonly free: number } {
  const work = measureWork(allocatorModule(allocator).binary, trace);
  return { malloc: work.malloc.mean, free: work.free.mean };
}

/** The locality of `allocator` on `trace`: the trace replayed on a fresh heap, reading the addresses it returns. */
export function traceLocality(trace: Trace, allocator: string): Locality {
  return locality(placements(recordHeap(freshHeap(allocator), trace)));
}
