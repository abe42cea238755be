import { buildAllocator } from "@alloc/core";
import { recordHeap, type HeapRecording } from "@alloc/heap-map";
import { recordTrace, swapAllocator } from "@alloc/swap";
import { parseTrace, type ReplayTarget, type Trace } from "@alloc/trace";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compositions } from "./compositions.ts";
import { BENCH_EXPORTS } from "./contenders.ts";
import { PROGRAMS_DIR, programBinary, type RealProgram } from "./programs.ts";

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

/**
 * A fresh heap of `allocator`, standalone: wasi-libc's dlmalloc (programs/dlmalloc.wasm, the
 * programs' own, linked alone) or one of our compositions (built for speed).
 */
export function freshHeap(allocator: string): ReplayTarget {
  let module: WebAssembly.Module;
  if (allocator === "dlmalloc") {
    module = new WebAssembly.Module(readFileSync(join(PROGRAMS_DIR, "dlmalloc.wasm")));
  } else {
    const composition = compositions().available.find((c) => c.name === allocator);
    if (!composition) throw new RangeError(`locality: unknown allocator ${JSON.stringify(allocator)}`);
    module = new WebAssembly.Module(buildAllocator({ strategy: composition.stack(), exports: BENCH_EXPORTS, optimize: "speed" }).binary as BufferSource);
  }
  const instance = new WebAssembly.Instance(module, {});
  return { instance, memory: instance.exports.memory as WebAssembly.Memory };
}

/** The locality of `allocator` on `trace`: the trace replayed on a fresh heap, reading the addresses it returns. */
export function traceLocality(trace: Trace, allocator: string): Locality {
  return locality(placements(recordHeap(freshHeap(allocator), trace)));
}
