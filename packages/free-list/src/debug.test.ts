import { buildAllocator, cellSizes, PAGE_SIZE, type BuildOptions } from "@alloc/core";
import { staticBackend } from "@alloc/page-backend-static";
import { faultOf } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { freeList, type FreeListOptions } from "./index.ts";

const { header: H } = cellSizes(4);
const SETUPS: Record<string, Omit<BuildOptions, "strategy">> = {
  "grow, own memory": {},
  "grow, imported memory (region records)": { memory: { mode: "import" } },
  static: { backend: staticBackend({ start: PAGE_SIZE, size: 4 * PAGE_SIZE }) },
};
const FITS: readonly NonNullable<FreeListOptions["fit"]>[] = ["first", "bins"];
const cases = FITS.flatMap((fit) => Object.entries(SETUPS).map(([name, setup]) => ({ fit, name, setup })));

describe.each(cases)("free-list ($fit fit) debug build, $name", ({ fit, setup }) => {
  const heap = async () => {
    const a = await buildAllocator({ strategy: freeList({ fit }), debug: true, ...setup }).instantiate();
    // Three live blocks; the middle one can be freed without merging with a free neighbour.
    const [x, y, z] = [a.calloc(1, 64), a.calloc(1, 64), a.calloc(1, 64)];
    return { a, x: x!, y: y!, z: z!, bytes: () => new Uint8Array(a.memory.buffer) };
  };

  test("a double free is reported, before and after the block merged with a neighbour", async () => {
    const { a, x, y } = await heap();
    a.free(y);
    expect(faultOf(() => a.free(y))).toMatchObject({ kind: "double-free", layer: "free-list", ptr: y });
    a.free(x); // y's cell is now inside x's: its header is poison
    expect(faultOf(() => a.free(y)).message).toMatch(/free-list: double free: .*merged/);
    a.checkHeap();
  });

  test("an address that is not a block is an invalid pointer, and the heap stays sound", async () => {
    const { a, x, y } = await heap();
    for (const bad of [y + 16, y + 4, 0x7fff0000, 8]) {
      expect(faultOf(() => a.free(bad))).toMatchObject({ kind: "invalid-pointer", ptr: bad });
    }
    a.free(x);
    a.free(y);
    expect(a.checkHeap().layers[0]).toMatchObject({ usedBlocks: 1 });
  });

  test("a write to freed memory is caught by the walker, and when the memory is handed out again", async () => {
    const { a, y, bytes } = await heap();
    a.free(y);
    bytes()[y + 40] = 7;
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "use-after-free", ptr: y + 40 });
    // Allocate until the cell is reused (first fit may take older free memory first).
    const fault = faultOf(() => {
      for (let i = 0; i < 10_000; i++) a.malloc(64);
    });
    expect(fault).toMatchObject({ kind: "use-after-free", ptr: y + 40 });
  });

  test("a smashed header or free-list link is found by the walker", async () => {
    const { a, x, y } = await heap();
    const view = () => new DataView(a.memory.buffer);
    view().setUint32(x - H, 12344, true); // x's link to its next cell (still even: "allocated")
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "corrupt-heap", layer: "free-list" });
    const b = await heap();
    b.a.free(b.y);
    new DataView(b.a.memory.buffer).setUint32(b.y, 0xfff0, true); // y's next-free link
    expect(faultOf(() => b.a.checkHeap())).toMatchObject({ kind: "corrupt-heap" });
    void y;
  });

  test("the statistics add up to the region", async () => {
    const { a, y } = await heap();
    a.free(y);
    const [s] = a.checkHeap().layers;
    expect(s).toMatchObject({ layer: "free-list", usedBlocks: 2, usedBytes: 128 });
    expect(s!.freeBlocks).toBeGreaterThanOrEqual(2);
    expect(s!.largestFree).toBeLessThan(s!.freeBytes);
    // Every byte of the pages is a header, a payload, or (the first region) the bin table or record.
    const cells = s!.usedBlocks + s!.freeBlocks;
    const accounted = s!.usedBytes + s!.freeBytes + H * (cells + 1);
    // The bin table: 25 map words and 25 * 32 heads (3,300 bytes, rounded up to the granule),
    // and the null word in front of a module's own memory or the region record.
    const table = fit === "bins" ? 3304 : 0;
    expect((PAGE_SIZE - (accounted % PAGE_SIZE)) % PAGE_SIZE).toBeLessThanOrEqual(table + 120 + H);
  });
});
