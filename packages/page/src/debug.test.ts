import { buildAllocator, PAGE_SIZE, POISON, type BuildOptions } from "@alloc/core";
import { faultOf } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { page } from "./index.ts";

const SETUPS: Record<string, Omit<BuildOptions, "strategy">> = {
  "own memory": {},
  "imported memory": { memory: { mode: "import" } },
};

describe.each(Object.entries(SETUPS))("page debug build, %s", (_name, setup) => {
  const heap = () => buildAllocator({ strategy: page(), debug: true, exports: ["malloc", "free", "calloc", "realloc"], ...setup }).instantiate();

  test("free of an address that is not 64 KiB aligned, or outside the pages handed out, is an invalid pointer", async () => {
    const a = await heap();
    expect(faultOf(() => a.free(PAGE_SIZE))).toMatchObject({ kind: "invalid-pointer", layer: "page", ptr: PAGE_SIZE }); // nothing handed out yet
    const p = a.malloc(40);
    const q = a.malloc(2 * PAGE_SIZE);
    for (const bad of [p + 8, q + PAGE_SIZE / 2, 8]) {
      const fault = faultOf(() => a.free(bad));
      expect(fault, `free(${bad})`).toMatchObject({ kind: "invalid-pointer", layer: "page", ptr: bad });
      expect(fault.message).toMatch(/^page: invalid pointer: not an address page returns \(not 64 KiB aligned\) \(at 0x[0-9a-f]+\)$/);
    }
    for (const bad of [q + 2 * PAGE_SIZE, q + 10 * PAGE_SIZE]) {
      expect(faultOf(() => a.free(bad)), `free(${bad})`).toMatchObject({ kind: "invalid-pointer", ptr: bad, message: expect.stringMatching(/outside the pages/) });
    }
    // The heap is still usable and sound after a refused free.
    a.free(p);
    a.free(q);
    expect(a.malloc(8)).not.toBe(0);
    a.checkHeap();
  });

  test("more frees than allocations is a double free", async () => {
    const a = await heap();
    const p = a.malloc(40);
    a.free(p);
    expect(faultOf(() => a.free(p))).toMatchObject({ kind: "double-free", layer: "page", ptr: p });
  });

  test("a freed block's first page is poisoned; the walker counts live blocks and every page handed out", async () => {
    const a = await heap();
    const p = a.malloc(100);
    const q = a.calloc(1, PAGE_SIZE + 1); // two pages
    expect(a.realloc(p, 4000)).toBe(p);
    let top = a.checkHeap().layers[0]!;
    expect(top).toMatchObject({ layer: "page", usedBlocks: 2, usedBytes: 3 * PAGE_SIZE, freeBytes: 0, freeBlocks: 0, largestFree: 0 });
    a.free(p);
    expect(new Uint8Array(a.memory.buffer, p, PAGE_SIZE).every((b) => b === POISON)).toBe(true);
    // A freed block's pages stay used: page never hands them out again.
    top = a.checkHeap().layers[0]!;
    expect(top).toMatchObject({ usedBlocks: 1, usedBytes: 3 * PAGE_SIZE });
    const r = a.realloc(q, 3 * PAGE_SIZE); // moves: q is freed
    expect(r).toBeGreaterThan(q);
    expect(a.checkHeap().layers[0]).toMatchObject({ usedBlocks: 1, usedBytes: 6 * PAGE_SIZE });
  });
});
