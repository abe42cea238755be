import { buildAllocator, type BuildOptions } from "@alloc/core";
import { faultOf } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { bump } from "./index.ts";

const SETUPS: Record<string, Omit<BuildOptions, "strategy">> = {
  "own memory": {},
  "imported memory": { memory: { mode: "import" } },
};

describe.each(Object.entries(SETUPS))("bump debug build, %s", (_name, setup) => {
  const heap = () => buildAllocator({ strategy: bump(), debug: true, exports: ["malloc", "free", "realloc", "reset"], ...setup }).instantiate();

  test("a second free of the latest block is a double free", async () => {
    const a = await heap();
    const p = a.malloc(40);
    a.free(p);
    const fault = faultOf(() => a.free(p));
    expect(fault).toMatchObject({ kind: "double-free", layer: "bump", ptr: p });
    expect(fault.message).toMatch(/^bump: double free: .* \(at 0x[0-9a-f]+\)$/);
    expect(fault.cause).toBeInstanceOf(WebAssembly.RuntimeError);
  });

  test("freeing an address above the heap, below it, or misaligned is an invalid pointer", async () => {
    const a = await heap();
    const p = a.malloc(40);
    expect(faultOf(() => a.free(p + 64))).toMatchObject({ kind: "invalid-pointer", ptr: p + 64 });
    expect(faultOf(() => a.free(p + 4))).toMatchObject({ kind: "invalid-pointer" });
    expect(faultOf(() => a.free(4))).toMatchObject({ kind: "invalid-pointer" }); // below the heap (it starts at 8)
    // The heap is still usable and sound after a refused free.
    a.free(p);
    expect(a.checkHeap().layers[0]).toMatchObject({ layer: "bump", usedBlocks: 0, usedBytes: 0 });
  });

  test("a write to memory taken back is caught by the walker and at its reuse", async () => {
    const a = await heap();
    const p = a.malloc(64);
    a.free(p);
    new Uint8Array(a.memory.buffer)[p + 10] = 1;
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "use-after-free", ptr: p + 10 });
    expect(faultOf(() => a.malloc(64))).toMatchObject({ kind: "use-after-free", ptr: p + 10 });
  });

  test("the walker's statistics follow allocation, free and reset", async () => {
    const a = await heap();
    const p = a.malloc(10);
    a.malloc(100);
    const [stats] = a.checkHeap().layers;
    expect(stats).toMatchObject({ usedBlocks: 2, freeBlocks: 1 });
    expect(stats!.usedBytes).toBeGreaterThanOrEqual(110);
    expect(stats!.usedBytes + stats!.freeBytes).toBe(stats!.usedBytes + stats!.largestFree);
    a.call("reset");
    expect(a.checkHeap().layers[0]).toMatchObject({ usedBlocks: 0, usedBytes: 0 });
    // Reset poisoned everything; the next block reuses it, and nothing was written since.
    expect(a.malloc(10)).toBe(p);
  });
});
