import { buildAllocator, cellSizes, PAGE_SIZE, type BuildOptions } from "@alloc/core";
import { staticBackend } from "@alloc/page-backend-static";
import { faultOf } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { freeList, type FreeListOptions } from "./index.ts";

const { header: H } = cellSizes(4);
const C_ALL = ["malloc", "free", "calloc", "realloc", "aligned_alloc", "malloc_usable_size"];
const SETUPS: Record<string, Omit<BuildOptions, "strategy">> = {
  "grow, own memory": {},
  "grow, imported memory (region records)": { memory: { mode: "import" } },
  static: { backend: staticBackend({ start: PAGE_SIZE, size: 4 * PAGE_SIZE }) },
};
const FITS: readonly NonNullable<FreeListOptions["fit"]>[] = ["first", "bins"];
const cases = FITS.flatMap((fit) => Object.entries(SETUPS).map(([name, setup]) => ({ fit, name, setup })));

describe.each(cases)("free-list ($fit fit) debug build, $name", ({ fit, setup }) => {
  const heap = async () => {
    const a = await buildAllocator({ strategy: freeList({ fit }), debug: true, exports: C_ALL, ...setup }).instantiate();
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

  // What a program's bugs write over the heap: a pattern that looks free (odd), one that looks
  // allocated (even), zeros, and poison.
  const PATTERNS = [0x41414141, 0x42424242, 0, 0xdddddddd];
  const put = (a: { memory: WebAssembly.Memory }, at: number, ...words: number[]) =>
    words.forEach((w, i) => new DataView(a.memory.buffer).setUint32(at + 4 * i, w >>> 0, true));
  /** Requests that reach every free cell: a small one (bins: its own bin), then larger ones, then one no free cell holds (first fit walks the whole list). */
  const mallocs = (a: { malloc(n: number): number }) => {
    for (const size of [64, 64, 128, 1000, 5 * PAGE_SIZE]) a.malloc(size);
  };

  test.each(PATTERNS)("an 8-byte overflow into a free neighbour's header (%s) is a corrupt heap at the next malloc", async (pattern) => {
    const { a, x, y } = await heap();
    a.free(y);
    put(a, x + 64, pattern, pattern); // 8 bytes past x: y's header
    expect(faultOf(() => mallocs(a))).toMatchObject({ kind: "corrupt-heap", layer: "free-list" });
  });

  test.each([0x41414141, 0x7fff0000, 16])("a write after free over a free cell's list links (%s) is a use after free at the next mallocs", async (value) => {
    for (const word of [0, 4]) {
      const { a, y } = await heap();
      a.free(y);
      put(a, y + word, value === 16 ? y + 16 : value); // y's next-free (0) or prev-free (4) link
      expect(faultOf(() => mallocs(a)), `link at +${word}`).toMatchObject({ kind: "use-after-free", layer: "free-list" });
    }
  });

  test.each(PATTERNS)("an overflow into the next block's header (%s) is a corrupt heap, for free, realloc and malloc_usable_size of either block", async (pattern) => {
    for (const op of ["free", "realloc", "malloc_usable_size"] as const) {
      for (const which of ["x", "y"] as const) {
        const h = await heap();
        put(h.a, h.x + 64, pattern, pattern); // 8 bytes past x: y's header
        const p = h[which];
        const call = () => (op === "free" ? h.a.free(p) : op === "realloc" ? h.a.realloc(p, 200) : h.a.malloc_usable_size(p));
        expect(faultOf(call), `${op}(${which})`).toMatchObject({ kind: "corrupt-heap", layer: "free-list" });
      }
    }
  });

  test("an address never handed out (in the free tail) is an invalid pointer, not a double free", async () => {
    const { a, z } = await heap();
    for (const bad of [z + 72, z + 72 + 8, z + 1024, z + 4096 + 8]) {
      expect(faultOf(() => a.free(bad)), `free(${bad})`).toMatchObject({ kind: "invalid-pointer", ptr: bad });
      expect(faultOf(() => a.malloc_usable_size(bad))).toMatchObject({ kind: "invalid-pointer", ptr: bad });
    }
    a.checkHeap();
  });

  test("malloc_usable_size and realloc check their pointer like free", async () => {
    const { a, x, y } = await heap();
    expect(a.malloc_usable_size(x)).toBe(64);
    for (const bad of [y + 16, y + 4, 0x7fff0000, 8]) {
      expect(faultOf(() => a.malloc_usable_size(bad)), `usable(${bad})`).toMatchObject({ kind: "invalid-pointer", layer: "free-list", ptr: bad });
      expect(faultOf(() => a.realloc(bad, 100)), `realloc(${bad})`).toMatchObject({ kind: "invalid-pointer", layer: "free-list", ptr: bad });
    }
    a.free(y);
    expect(faultOf(() => a.malloc_usable_size(y))).toMatchObject({ kind: "invalid-pointer", ptr: y });
    expect(faultOf(() => a.realloc(y, 100))).toMatchObject({ kind: "double-free", ptr: y });
    a.free(x); // y merged into x
    expect(faultOf(() => a.realloc(y, 100))).toMatchObject({ kind: "double-free", ptr: y });
    expect(faultOf(() => a.malloc_usable_size(y))).toMatchObject({ kind: "invalid-pointer", ptr: y });
    a.checkHeap();
  });

  test("a forged header inside a live block is refused: its neighbours do not point back", async () => {
    const { a, bytes } = await heap();
    const b = a.calloc(1, 512);
    const cell = (p: number) => p - H;
    // A cell at b + 64 that claims to be a region's first (prev = itself), with a forged next at b + 128.
    put(a, b + 64, b + 128, 0);
    put(a, b + 128, b + 192, (b + 64) ^ (b + 128));
    expect(faultOf(() => a.free(b + 64 + H))).toMatchObject({ kind: "invalid-pointer", ptr: b + 64 + H });
    // A chain of three forged cells: b + 32 (first of a region), b + 64, b + 128 (whose next is b's real next).
    bytes().fill(0, b, b + 512);
    put(a, b + 32, b + 64, 0);
    put(a, b + 64, b + 128, (b + 32) ^ (b + 64));
    put(a, b + 128, cell(b) + H + 512, (b + 64) ^ (b + 128));
    expect(faultOf(() => a.free(b + 64 + H))).toMatchObject({ kind: "invalid-pointer", ptr: b + 64 + H });
    expect(faultOf(() => a.realloc(b + 64 + H, 8))).toMatchObject({ kind: "invalid-pointer" });
    bytes().fill(0, b, b + 512);
    a.free(b);
    a.checkHeap();
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
