import { buildAllocator } from "@alloc/core";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { STRATEGIES } from "@alloc/cli";
import { compositions, NEVER_ALLOCATES, stacks } from "./compositions.ts";
import { op, runModel } from "./model.ts";

/** Cases per composition in CI; `pnpm soak` runs as many as you like. */
const RUNS = Number(process.env.ALLOC_PROPERTY_RUNS ?? 40);

describe.each(compositions())("$name", (composition) => {
  const built = buildAllocator(composition.options);
  const debugBuilt = buildAllocator({ ...composition.options, debug: true });

  test("random malloc/free/calloc/realloc/aligned_alloc sequences keep every C promise", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 200 }), async (ops) => {
        runModel(await built.instantiate(), ops, undefined, composition.minAlign);
      }),
      { numRuns: RUNS, seed: 42 },
    );
  });

  test("debug build: the heap walker passes after every step, and its statistics add up", async () => {
    // The walker is O(heap) per step: fewer cases than the release property.
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 120 }), async (ops) => {
        const heap = await debugBuilt.instantiate();
        runModel(heap, ops, (step, live) => {
          const report = heap.checkHeap();
          const top = report.layers[0]!;
          expect(top.layer).toBe(composition.stack[0]);
          const liveBytes = live.reduce((sum, b) => sum + b.size, 0);
          // Every live block is a used block of the top layer, at least as large as asked. (Bump
          // counts the blocks it has not taken back: older freed ones stay.)
          if (composition.reuses) expect(top.usedBlocks, `step ${step}: used blocks`).toBe(live.length);
          else expect(top.usedBlocks, `step ${step}: used blocks`).toBeGreaterThanOrEqual(live.length);
          expect(top.usedBytes, `step ${step}: used bytes`).toBeGreaterThanOrEqual(liveBytes);
          expect(top.largestFree).toBeLessThanOrEqual(top.freeBytes);
        }, composition.minAlign);
      }),
      { numRuns: Math.max(5, Math.ceil(RUNS / 4)), seed: 42 },
    );
  });

  test("after every refused request the heap still serves new ones (debug build: and the walker passes)", async () => {
    const heap = await debugBuilt.instantiate();
    const impossible = composition.memory64 ? [2 ** 53 - 1, 2 ** 53 - 8, 2 ** 48] : [0xffffffff, 0xfffffff8, 0xffff0001];
    for (const size of impossible) {
      expect(heap.malloc(size)).toBe(0);
      expect(heap.aligned_alloc(3, 8)).toBe(0);
      expect(heap.calloc(0x10000, 0x10001)).toBe(0);
      if (composition.memory64) expect(heap.calloc(2 ** 33, 2 ** 31 + 1)).toBe(0);
      heap.checkHeap();
      const p = heap.malloc(24);
      expect(p).not.toBe(0);
      heap.free(p);
      heap.checkHeap();
    }
  });
});

describe.each(compositions())("release build of $name", (composition) => {
  test("contains none of the debug build's code", () => {
    // Unoptimised, every emitted function and global keeps its name: the debug ones all have
    // "debug" or "check" in theirs.
    const release = buildAllocator({ ...composition.options, optimize: "none" });
    const debug = buildAllocator({ ...composition.options, optimize: "none", debug: true });
    expect(release.debug).toBeUndefined();
    expect(release.text).not.toMatch(/debug|check|unreachable/);
    expect(release.exports).not.toContain("heap_check");
    expect(debug.text).toMatch(/\/debug\/fault/);
    expect(debug.exports).toContain("heap_check");
    // And optimised for size, the release build is exactly what it is without the option.
    expect(buildAllocator({ ...composition.options, debug: false }).binary).toEqual(buildAllocator(composition.options).binary);
  });
});

test("every registered strategy takes part, and no stack builds on a top-only strategy", () => {
  expect(new Set(stacks().flat())).toEqual(new Set(Object.keys(STRATEGIES)));
  expect(new Set(compositions().flatMap((c) => c.stack))).toEqual(new Set(Object.keys(STRATEGIES).filter((n) => !NEVER_ALLOCATES.has(n))));
  expect(stacks()).toContainEqual(["size-classes", "page"]);
  for (const stack of stacks()) {
    expect(stack.slice(1).every((n) => !STRATEGIES[n]!.create().topOnly), stack.join(" > ")).toBe(true);
  }
});

test("the model catches a broken allocator (it is not a test that cannot fail)", async () => {
  // An allocator whose malloc hands out the same block twice.
  const heap = {
    memory: new WebAssembly.Memory({ initial: 1 }),
    malloc: () => 64,
    free: () => {},
    calloc: () => 0,
    realloc: () => 0,
    aligned_alloc: () => 0,
  } as unknown as Parameters<typeof runModel>[0];
  expect(() => runModel(heap, [{ op: "malloc", size: 8 }, { op: "malloc", size: 8 }])).toThrow(/overlaps live block/);
});
