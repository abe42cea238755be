/**
 * Heap statistics in release builds (`stats: true`): for every composition, `heap_stats` agrees
 * with a model of the live blocks after every step of random sequences, with the debug build's
 * walker where the layouts are the same, and with the struct it writes into memory; and a stats
 * build carries none of the debug build's checks.
 */
import { binaryen, buildAllocator, HEAP_STATS, installAllocator, type AllocatorInstance, type HeapReport } from "@alloc/core";
import { STRATEGIES } from "@alloc/cli";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compositions } from "./compositions.ts";
import { op, runModel, type Op } from "./model.ts";

const RUNS = Math.max(4, Math.ceil(Number(process.env.ALLOC_PROPERTY_RUNS ?? 40) / 5));

/** The reports after every step of `ops`. */
function reports(heap: AllocatorInstance, ops: readonly Op[], report: () => HeapReport): HeapReport[] {
  const all: HeapReport[] = [];
  runModel(heap, ops, () => void all.push(report()));
  return all;
}

describe.each(compositions())("stats build of $name", (composition) => {
  // With malloc_usable_size when the top strategy records block sizes (bump and page do not).
  const withUsable = { ...composition.options, exports: [...(composition.options.exports as string[]), "malloc_usable_size"] };
  const hasUsable = (() => {
    try {
      return buildAllocator(withUsable).exports.includes("malloc_usable_size");
    } catch {
      return false;
    }
  })();
  const options = hasUsable ? withUsable : composition.options;
  const built = buildAllocator({ ...options, stats: true });
  const debugBuilt = buildAllocator({ ...options, debug: true });
  const single = composition.stack.length === 1;

  test("after every step: the top layer's blocks and bytes in use are the live blocks and their usable sizes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 150 }), async (ops) => {
        const heap = await built.instantiate();
        runModel(heap, ops, (step, live) => {
          const report = heap.heapStats();
          expect(report.layers.map((l) => l.layer)).toEqual(composition.stack);
          const top = report.layers[0]!;
          // (Bump counts the blocks it has not taken back: older freed ones stay.)
          if (composition.reuses) expect(top.usedBlocks, `step ${step}: used blocks`).toBe(live.length);
          else expect(top.usedBlocks, `step ${step}: used blocks`).toBeGreaterThanOrEqual(live.length);
          if (hasUsable) {
            const usable = live.reduce((sum, b) => sum + heap.malloc_usable_size(b.ptr), 0);
            expect(top.usedBytes, `step ${step}: used bytes`).toBe(usable);
          } else {
            expect(top.usedBytes, `step ${step}: used bytes`).toBeGreaterThanOrEqual(live.reduce((sum, b) => sum + b.size, 0));
          }
          for (const l of report.layers) {
            expect(l.largestFree).toBeLessThanOrEqual(l.freeBytes);
            expect(l.freeBlocks === 0).toBe(l.freeBytes === 0);
          }
        }, composition.minAlign);
      }),
      { numRuns: RUNS, seed: 7 },
    );
  });

  test(`the same numbers as the debug build's walker (${single ? "every layer" : "the top layer's blocks in use: the layouts below differ"})`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 100 }), async (ops) => {
        const heap = await built.instantiate();
        const debugHeap = await debugBuilt.instantiate();
        const release = reports(heap, ops, () => heap.heapStats());
        const debug = reports(debugHeap, ops, () => debugHeap.checkHeap());
        if (single) expect(release).toEqual(debug);
        else {
          const used = (r: HeapReport[]) => r.map((x) => [x.layers[0]!.usedBlocks, x.layers[0]!.usedBytes]);
          expect(used(release)).toEqual(used(debug));
        }
      }),
      { numRuns: RUNS, seed: 11 },
    );
  });

  test("heap_stats(ptr) writes the documented struct and returns its size; heap_stats(0) writes nothing", async () => {
    const heap = await built.instantiate();
    const blocks = [24, 100, 3000, 70_000, 8].map((n) => heap.malloc(n));
    heap.free(blocks[1]!);
    const report = heap.heapStats();
    const n = report.layers.length;
    const at = heap.malloc(64);
    const before = heap.heapStats();
    const size = heap.call(HEAP_STATS, at);
    // Pointer-width words: 8 bytes on memory64.
    const W = composition.memory64 ? 8 : 4;
    expect(size).toBe((2 + 5 * n) * W);
    const words = composition.memory64
      ? Array.from(new BigUint64Array(heap.memory.buffer, at, size / W), Number)
      : Array.from(new Uint32Array(heap.memory.buffer, at, size / W));
    expect(words.slice(0, 2)).toEqual([n, heap.memory.buffer.byteLength]);
    expect(words.slice(2)).toEqual(before.layers.flatMap((l) => [l.usedBytes, l.usedBlocks, l.freeBytes, l.freeBlocks, l.largestFree]));
    const snapshot = Buffer.from(new Uint8Array(heap.memory.buffer)); // (a copy)
    expect(heap.call(HEAP_STATS, 0)).toBe(size);
    expect(snapshot.equals(new Uint8Array(heap.memory.buffer))).toBe(true);
  });

  test("contains none of the debug build's checks: only the walkers, heap_stats and its statistics", () => {
    const stats = buildAllocator({ ...options, optimize: "none", stats: true });
    expect(stats.debug).toBeUndefined();
    expect(stats.text).not.toMatch(/debug|check|unreachable/);
    const release = buildAllocator({ ...options, optimize: "none" });
    expect(stats.exports.filter((e) => e !== HEAP_STATS)).toEqual(release.exports);
    expect(stats.exports).toContain(HEAP_STATS);
    const globals = WebAssembly.Module.exports(new WebAssembly.Module(built.binary as BufferSource)).filter((e) => e.kind === "global");
    expect(globals.map((g) => g.name)).toEqual(Array.from({ length: 5 * composition.stack.length }, (_, i) => `${HEAP_STATS}.${i + 2}`));
  });
});

test("a debug build with stats exports heap_stats over its checking walker: the same numbers as heap_check", async () => {
  const { options } = compositions().find((c) => c.stack.join() === "size-classes,free-list")!;
  const heap = await buildAllocator({ ...options, debug: true, stats: true }).instantiate();
  for (const n of [10, 200, 5000]) heap.malloc(n);
  expect(heap.heapStats()).toEqual(heap.checkHeap());
});

const freeList = () => STRATEGIES["free-list"]!.create();

test("installed into a module: heap_stats among the functions, its statistics under internal names", async () => {
  const module = new binaryen.Module();
  module.setMemory(1, 65535, "memory");
  const installed = installAllocator(module, { strategy: freeList(), stats: true, functions: ["malloc", "free", HEAP_STATS], exports: ["malloc", "free", HEAP_STATS] });
  expect(installed.stats?.map((l) => l.layer)).toEqual(["free-list"]);
  const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
  module.dispose();
  type Fn = (...args: number[]) => number;
  const { malloc, free, heap_stats, memory } = instance.exports as { malloc: Fn; free: Fn; heap_stats: Fn; memory: WebAssembly.Memory };
  const [a, b] = [malloc(100), malloc(300)];
  free(a);
  const at = malloc(64);
  expect(heap_stats(at)).toBe(28);
  const [n, , usedBytes, usedBlocks, , freeBlocks] = Array.from(new Uint32Array(memory.buffer, at, 7));
  expect([n, usedBlocks, freeBlocks]).toEqual([1, 2, 2]);
  expect(usedBytes).toBeGreaterThanOrEqual(364);
  expect(b).not.toBe(0);
});

test("the stats option is checked like the others", () => {
  expect(() => buildAllocator({ strategy: freeList(), stats: "yes" as unknown as boolean })).toThrow(/stats must be true or false, got "yes"/);
  expect(() => buildAllocator({ strategy: freeList(), exports: ["malloc", HEAP_STATS] })).toThrow(/"heap_stats" exists only in stats builds: set the stats option/);
});
