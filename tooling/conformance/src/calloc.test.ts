import { buildAllocator, PAGE_SIZE, type AllocatorInstance, type BuildOptions, type CFunction } from "@alloc/core";
import { staticBackend } from "@alloc/page-backend-static";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compositions } from "./compositions.ts";

/**
 * calloc zeroes only what may be dirty: below the bottom layer's fresh mark (`fresh` in core's
 * contracts). These tests hold it to both halves of that: a calloc block is zero whatever the
 * heap's history, with programs that write every byte they may (up to malloc_usable_size); and a
 * calloc of memory fresh from the backend writes none of it.
 */

const RUNS = Number(process.env.ALLOC_PROPERTY_RUNS ?? 40);

const EXPORTS: CFunction[] = ["malloc", "free", "calloc", "realloc", "aligned_alloc"];

/** Builds with malloc_usable_size when the stack can give it (bump cannot). */
function build(options: BuildOptions) {
  try {
    return buildAllocator({ ...options, exports: [...EXPORTS, "malloc_usable_size"] });
  } catch {
    return buildAllocator({ ...options, exports: EXPORTS });
  }
}

type Step =
  | { op: "malloc"; size: number }
  | { op: "calloc"; size: number }
  | { op: "aligned"; log: number; size: number }
  | { op: "realloc"; pick: number; size: number }
  | { op: "free"; pick: number };

const size = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 65, max: 5000 }), fc.integer({ min: 5001, max: 200_000 }));
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("malloc" as const), size }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("calloc" as const), size }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("aligned" as const), log: fc.integer({ min: 3, max: 12 }), size }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("realloc" as const), pick: fc.nat(), size }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("free" as const), pick: fc.nat() }) },
);

/** Runs `steps`, writing 0xff over every byte each block may use; every calloc block must be zero. */
function run(heap: AllocatorInstance, steps: readonly Step[], usable: boolean): void {
  const live: { ptr: number; size: number }[] = [];
  const dirty = (ptr: number, size: number) => {
    const n = usable ? heap.malloc_usable_size(ptr) : size;
    new Uint8Array(heap.memory.buffer, ptr, n).fill(0xff);
  };
  steps.forEach((s, i) => {
    switch (s.op) {
      case "malloc":
      case "aligned":
      case "calloc": {
        const ptr = s.op === "malloc" ? heap.malloc(s.size) : s.op === "aligned" ? heap.aligned_alloc(2 ** s.log, s.size) : heap.calloc(1, s.size);
        if (ptr === 0) return;
        if (s.op === "calloc") {
          const block = new Uint8Array(heap.memory.buffer, ptr, s.size);
          const at = block.findIndex((b) => b !== 0);
          if (at >= 0) throw new Error(`step ${i}: calloc(1, ${s.size}) = ${ptr} is not zero at +${at}`);
        }
        dirty(ptr, s.size);
        live.push({ ptr, size: s.size });
        return;
      }
      case "realloc": {
        if (live.length === 0) return;
        const b = live[s.pick % live.length]!;
        const ptr = heap.realloc(b.ptr, s.size);
        if (ptr === 0) return;
        Object.assign(b, { ptr, size: s.size });
        dirty(ptr, s.size);
        return;
      }
      case "free": {
        if (live.length === 0) return;
        const [b] = live.splice(s.pick % live.length, 1);
        heap.free(b!.ptr);
        return;
      }
    }
  });
}

/** Stacks whose bottom layer keeps a fresh mark and whose upper layers pass it on. */
const marked = (stack: readonly string[]) =>
  ["bump", "free-list"].includes(stack[stack.length - 1]!) && stack.slice(0, -1).every((s) => s === "size-classes");

describe.each(compositions())("$name", (composition) => {
  test("a calloc block is zero whatever the heap's history (every usable byte written)", async () => {
    const built = build(composition.options);
    const usable = built.exports.includes("malloc_usable_size");
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 150 }), async (steps) => run(await built.instantiate(), steps, usable)),
      { numRuns: RUNS, seed: 7 },
    );
  });

  test.runIf(marked(composition.stack))("calloc writes none of the memory fresh from the backend", async () => {
    // Memory of a static region that the host filled with 0xaa, past what the allocator's own
    // structures and a first block use: the contract says such memory is zero, so calloc may skip
    // it; that it did shows in the 0xaa still there.
    const region = { start: PAGE_SIZE, size: 16 * PAGE_SIZE };
    const built = build({ ...composition.options, backend: staticBackend(region) });
    const heap = await built.instantiate();
    const first = heap.malloc(8);
    expect(first).not.toBe(0);
    const mark = first + PAGE_SIZE;
    // (Up to the region's last granule, where the free list's end sentinel lies.)
    new Uint8Array(heap.memory.buffer, mark, region.start + region.size - 16 - mark).fill(0xaa);
    const big = heap.calloc(1, 300_000);
    expect(big).not.toBe(0);
    expect(big).toBeLessThan(mark);
    const block = new Uint8Array(heap.memory.buffer, big, 300_000);
    expect(block.subarray(0, mark - big).every((b) => b === 0)).toBe(true);
    expect(block.subarray(mark - big).every((b) => b === 0xaa)).toBe(true);
    // The same memory once written and freed is zeroed.
    heap.free(big);
    const again = heap.calloc(1, 300_000);
    expect(again).not.toBe(0);
    expect(new Uint8Array(heap.memory.buffer, again, 300_000).every((b) => b === 0)).toBe(true);
  });
});

test("the calloc property catches a calloc that skips dirty memory (it is not a test that cannot fail)", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  new Uint8Array(memory.buffer).fill(0xff);
  const heap = { memory, malloc: () => 64, calloc: () => 64, free: () => {} } as unknown as AllocatorInstance;
  expect(() => run(heap, [{ op: "calloc", size: 8 }], false)).toThrow(/is not zero/);
});
