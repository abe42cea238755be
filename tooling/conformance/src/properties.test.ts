import { buildAllocator } from "@alloc/core";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compositions, stacks } from "./compositions.ts";
import { op, runModel } from "./model.ts";

/** Cases per composition in CI; `pnpm soak` runs as many as you like. */
const RUNS = Number(process.env.ALLOC_PROPERTY_RUNS ?? 40);

describe.each(compositions())("$name", (composition) => {
  const built = buildAllocator(composition.options);

  test("random malloc/free/calloc/realloc/aligned_alloc sequences keep every C promise", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 200 }), async (ops) => {
        runModel(await built.instantiate(), ops);
      }),
      { numRuns: RUNS, seed: 42 },
    );
  });

  test("after every refused request the heap still serves new ones", async () => {
    const heap = await built.instantiate();
    for (const size of [0xffffffff, 0xfffffff8, 0xffff0001]) {
      expect(heap.malloc(size)).toBe(0);
      expect(heap.aligned_alloc(3, 8)).toBe(0);
      expect(heap.calloc(0x10000, 0x10001)).toBe(0);
      const p = heap.malloc(24);
      expect(p).not.toBe(0);
      heap.free(p);
    }
  });
});

test("every registered strategy takes part", () => {
  expect(stacks().flat()).toEqual(expect.arrayContaining(["bump"]));
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
