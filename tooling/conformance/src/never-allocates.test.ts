/**
 * Strategies that never allocate (fail), over every backend and memory mode: C's model does not
 * apply to them, their own contract does. Every request of a random program returns 0 (or
 * posix_memalign's error), freeing 0 is fine, and nothing in memory changes; a debug build passes
 * its heap walker after every step.
 */
import { buildAllocator, ENOMEM } from "@alloc/core";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compositions, NEVER_ALLOCATES } from "./compositions.ts";
import { op } from "./model.ts";

const RUNS = Number(process.env.ALLOC_PROPERTY_RUNS ?? 40);

describe.each(compositions([...NEVER_ALLOCATES].map((n) => [n])))("$name", (composition) => {
  test.each([false, true])("random programs get 0 for every request, and memory stays untouched (debug %s)", async (debug) => {
    const built = buildAllocator({ ...composition.options, exports: [...(composition.options.exports as string[]), "posix_memalign"], debug });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 100 }), async (ops) => {
        const heap = await built.instantiate();
        const bytes = heap.memoryBytes();
        for (const o of ops) {
          switch (o.op) {
            case "malloc":
              expect(heap.malloc(o.size)).toBe(0);
              break;
            case "calloc":
              expect(heap.calloc(o.n, o.size)).toBe(0);
              break;
            case "aligned_alloc":
              expect(heap.aligned_alloc(o.align, o.size)).toBe(0);
              expect(heap.call("posix_memalign", 16, 8, o.size)).toBe(o.size === 0 ? 0 : ENOMEM);
              break;
            case "free":
              heap.free(0);
              break;
            case "realloc":
              expect(heap.realloc(0, o.size)).toBe(0);
              break;
          }
          if (debug) heap.checkHeap();
        }
        expect(heap.memoryBytes()).toBe(bytes);
        expect(Buffer.from(heap.memory.buffer).equals(Buffer.alloc(bytes))).toBe(true);
      }),
      { numRuns: RUNS, seed: 42 },
    );
  });
});

test("the list is not empty", () => {
  expect(compositions([...NEVER_ALLOCATES].map((n) => [n])).length).toBeGreaterThan(0);
});
