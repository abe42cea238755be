import { buildAllocator, type BuildOptions } from "@alloc/core";
import { bump } from "@alloc/bump";
import { freeList } from "@alloc/free-list";
import { faultOf } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { sizeClasses } from "./index.ts";

const PARENTS = { "free-list": freeList, bump } as const;
const cases = Object.entries(PARENTS).flatMap(([parent, make]) =>
  [{}, { memory: { mode: "import" } }].map((setup) => ({ parent, make, setup: setup as Omit<BuildOptions, "strategy">, memory: setup.memory?.mode ?? "own" })),
);

describe.each(cases)("size-classes over $parent debug build, $memory memory", ({ make, setup }) => {
  const heap = () => buildAllocator({ strategy: [sizeClasses(), make()], debug: true, ...setup }).instantiate();

  test("a double free of a small block is reported", async () => {
    const a = await heap();
    const p = a.malloc(24);
    a.free(p);
    const fault = faultOf(() => a.free(p));
    expect(fault).toMatchObject({ kind: "double-free", layer: "size-classes", ptr: p });
    expect(fault.message).toMatch(/^size-classes: double free: the block is already free \(at 0x[0-9a-f]+\)$/);
  });

  test("an address inside a zeroed block, a misaligned one, or one past memory is an invalid pointer", async () => {
    const a = await heap();
    const small = a.calloc(1, 64), large = a.calloc(1, 4000);
    for (const bad of [small + 16, large + 2048, small + 4, 0x7fff0000]) {
      expect(faultOf(() => a.free(bad))).toMatchObject({ kind: "invalid-pointer", ptr: bad });
    }
    a.free(small);
    a.free(large);
    expect(a.checkHeap().layers[0]).toMatchObject({ layer: "size-classes", usedBlocks: 0, usedBytes: 0 });
  });

  test("a write to a freed small block is caught when it is handed out again, and by the walker", async () => {
    const a = await heap();
    const p = a.malloc(40);
    a.free(p);
    new Uint8Array(a.memory.buffer)[p + 20] = 1;
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "use-after-free", ptr: p + 20 });
    expect(faultOf(() => a.malloc(40))).toMatchObject({ kind: "use-after-free", ptr: p + 20 });
  });

  test("a smashed class-list link is found by the walker", async () => {
    const a = await heap();
    const p = a.malloc(40), q = a.malloc(40);
    a.free(p);
    a.free(q);
    new DataView(a.memory.buffer).setUint32(q, 0x7ff0, true); // q's link to p
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "corrupt-heap", layer: "size-classes" });
  });

  test("the statistics count small and large blocks in use and what the lists hold", async () => {
    const a = await heap();
    const small = [8, 24, 24, 256].map((n) => a.malloc(n));
    const large = a.malloc(2000); // above maxSmall (1024): the parent's
    let [s] = a.checkHeap().layers;
    expect(s).toMatchObject({ layer: "size-classes", usedBlocks: 5, usedBytes: 8 + 24 + 24 + 256 + 2000 });
    a.free(small[1]!);
    a.free(large);
    [s] = a.checkHeap().layers;
    expect(s).toMatchObject({ usedBlocks: 3, usedBytes: 8 + 24 + 256 });
    // The freed 24-byte block is on its list; the rest of the chunk is free too.
    expect(s!.freeBlocks).toBe(2);
    expect(s!.freeBytes).toBe(24 + s!.largestFree);
  });
});
