/**
 * Heap statistics in release builds (the `stats` option): each layer's walker without the debug
 * build's checks, and the exported `heap_stats(ptr)` that runs them and writes what they found.
 *
 * ```text
 *   heap_stats(ptr) -> usize         every layer's walker, the bottom layer first, then at ptr
 *   (pointer-width words: 4 bytes on wasm32; nothing is written when ptr is 0):
 *
 *   word 0   n: the layers that report (strategies; page backends have no walker)
 *   word 1   memory bytes: memory.size × 64 KiB, what the memory has grown to (host's pages too)
 *   then n records of 5 words, top layer first (the layer names are in the build's `stats` info):
 *     +0 used bytes     bytes in live blocks, as the layer rounds them (usable sizes)
 *     +1 used blocks    live blocks
 *     +2 free bytes     bytes in free blocks, ready for reuse without asking the layer below
 *     +3 free blocks
 *     +4 largest free   the largest free block, in bytes
 *   returns the struct's size in bytes, (2 + 5n) words: heap_stats(0) walks and says how much
 *   room to give it.
 * ```
 *
 * A layer's blocks are its parent's used blocks (size-classes' spans are used cells of the free
 * list under it). The statistics globals are exported too (under their internal names, as in a
 * debug build), so that JS reads them without memory of its own: `heap.heapStats()`.
 *
 * A debug build with `stats` gets the same export over its checking walker.
 */
import type { Codegen, Expr } from "./codegen.ts";
import { STAT_NAMES, type StatVars, type StatsInfo } from "./debug.ts";

/** What a layer's `emit` receives in a stats build (`ctx.stats`). */
export interface StatsHooks {
  /** This layer's statistics globals, for its walker to set (made on first use). */
  readonly vars: StatVars;
}

/** The export that runs the walkers and writes the statistics. */
export const HEAP_STATS = "heap_stats";

/**
 * Emits `heap_stats(ptr) -> usize`: calls `walkers` (bottom layer first) and writes the struct
 * described above from the statistics globals of `layers` (top first).
 */
export function emitHeapStats(cg: Codegen, name: string, walkers: readonly string[], layers: StatsInfo): string {
  const W = cg.ptrBytes;
  const bytes = (2 + STAT_NAMES.length * layers.length) * W;
  return cg.function(name, ["ptr"], "usize", (f) => {
    const ptr = f.param("ptr");
    const words: Expr[] = [
      cg.size(layers.length),
      cg.shl(cg.memorySize(), cg.size(16)),
      ...layers.flatMap(({ exports }) => STAT_NAMES.map((s) => cg.globalVar(exports[s]).get())),
    ];
    return [
      ...walkers.map((w) => cg.callVoid(w, [])),
      cg.when(cg.ne(ptr.get(), cg.size(0)), words.map((value, i) => cg.store(ptr.get(), value, i * W))),
      cg.size(bytes),
    ];
  });
}
