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

describe.each(cases)("size-classes over $parent debug build, $memory memory", ({ parent, make, setup }) => {
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

  test.each([0x7fff0000, 0xffffffff, 12345, 8])("a write after free into a freed block's link (%i) is a use-after-free, never a trap", async (value) => {
    const a = await heap();
    const keep = a.malloc(24);
    const [p, q] = [a.malloc(24), a.malloc(24)];
    a.free(p);
    a.free(q);
    new DataView(a.memory.buffer).setUint32(q, value, true);
    // The first malloc takes q and reads the link; the next follows it.
    const fault = faultOf(() => [a.malloc(24), a.malloc(24), a.malloc(24)]);
    expect(fault).toMatchObject({ layer: "size-classes" });
    expect(["use-after-free", "corrupt-heap"]).toContain(fault.kind);
    void keep;
  });

  test("malloc_usable_size of an address that is not a live block is an invalid pointer; of a live one, its size", async () => {
    const a = await buildAllocator({ strategy: [sizeClasses(), make()], debug: true, exports: ["malloc", "free", "malloc_usable_size"], ...setup }).instantiate();
    const p = a.malloc(24);
    const big = a.malloc(5000);
    for (const bad of [p + 8, p + 4, 0x7fff0000, 8, big + 16]) {
      // (Over bump, an address inside a block whose word in front reads as poison is named a
      // double free: a known imprecision; never a number or a trap.)
      const fault = faultOf(() => a.malloc_usable_size(bad));
      expect(fault, `malloc_usable_size(${bad})`).toMatchObject({ layer: "size-classes" });
      expect(["invalid-pointer", "double-free"]).toContain(fault.kind);
    }
    expect(a.malloc_usable_size(p)).toBeGreaterThanOrEqual(24);
    expect(a.malloc_usable_size(big)).toBeGreaterThanOrEqual(5000);
    a.checkHeap();
  });

  test("a write to a freed small block is caught when it is handed out again, and by the walker", async () => {
    const a = await heap();
    const keep = a.malloc(40); // (its span stays in use)
    const p = a.malloc(40);
    a.free(p);
    new Uint8Array(a.memory.buffer)[p + 20] = 1;
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "use-after-free", ptr: p + 20 });
    expect(faultOf(() => a.malloc(40))).toMatchObject({ kind: "use-after-free", ptr: p + 20 });
    void keep;
  });

  test("a smashed link of a span's free blocks is found by the walker", async () => {
    const a = await heap();
    const p = a.malloc(40), q = a.malloc(40);
    a.malloc(40); // (the span stays in use)
    a.free(p);
    a.free(q);
    new DataView(a.memory.buffer).setUint32(q, 0x7ff0, true); // q's link to p
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "corrupt-heap", layer: "size-classes" });
  });

  test("the statistics count small and large blocks in use and what the lists hold", async () => {
    const a = await heap();
    // Classes of 12, 28 and 260 bytes: with their header word, multiples of 8 (the release
    // build's classes; a debug build puts 8 bytes more in front of each header, for its canary).
    const small = [8, 24, 24, 256].map((n) => a.malloc(n));
    const large = a.malloc(2000); // above maxSmall (1024): the parent's
    let [s] = a.checkHeap().layers;
    expect(s).toMatchObject({ layer: "size-classes", usedBlocks: 5, usedBytes: 12 + 28 + 28 + 260 + 2000 });
    a.free(small[1]!);
    a.free(large);
    [s] = a.checkHeap().layers;
    expect(s).toMatchObject({ usedBlocks: 3, usedBytes: 12 + 28 + 260 });
    // Free: every block the spans of classes 12, 28 and 260 can still hand out (the freed 28-byte
    // one among them) without asking the parent. A class's first span: 1024 bytes (4096 over bump,
    // whose spans all have one size) or 2 blocks; 52 bytes of span header, then blocks of 12 bytes
    // of header (canary, pad, span) and the class size, and 8 after the last block (the canary's
    // room).
    const first = parent === "bump" ? 4096 : 1024;
    const blocks = (size: number) => Math.floor((Math.max(first, 2 * (size + 12) + 60) - 60) / (size + 12));
    expect(s).toMatchObject({
      freeBlocks: blocks(12) - 1 + blocks(28) - 1 + blocks(260) - 1,
      freeBytes: (blocks(12) - 1) * 12 + (blocks(28) - 1) * 28 + (blocks(260) - 1) * 260,
      largestFree: 260,
    });
  });

  test("the walker checks live small blocks: a broken header or an overflow into the next block's canary", async () => {
    const a = await heap();
    const p = a.malloc(44), q = a.malloc(44);
    const view = new DataView(a.memory.buffer);
    view.setUint8(p + 44, 0x41); // one byte past p: q's canary, 12 bytes in front of q (canary, pad, header)
    expect(q - p).toBe(56);
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "corrupt-heap", layer: "size-classes", ptr: q - 12 });
    expect(faultOf(() => a.free(p)).message).toMatch(/a write past the end of the block \(the canary after it is broken\)/);
    const b = await heap();
    const r = b.malloc(40);
    b.malloc(40);
    new DataView(b.memory.buffer).setUint32(r - 4, 0x1234, true); // r's header
    expect(faultOf(() => b.checkHeap())).toMatchObject({ kind: "corrupt-heap", ptr: r });
  });

  test("a double free of a large block is reported as a double free", async () => {
    const a = await heap();
    const keep = a.malloc(3000);
    const p = a.malloc(5000);
    a.malloc(3000);
    a.free(p);
    expect(faultOf(() => a.free(p))).toMatchObject({ kind: "double-free", layer: "size-classes", ptr: p });
    a.free(keep);
  });
});

describe.each([
  { name: "wasm32, minAlign 8", memory64: false, minAlign: 8 },
  { name: "wasm32, minAlign 16", memory64: false, minAlign: 16 },
  { name: "memory64, minAlign 8", memory64: true, minAlign: 8 },
  { name: "memory64, minAlign 16", memory64: true, minAlign: 16 },
])("size-classes debug build, $name: a canary in front of every small header", ({ memory64, minAlign }) => {
  const W = memory64 ? 8 : 4;
  const room = Math.max(W, minAlign); // the canary's room, in front of the header word
  const build = (debug: boolean) =>
    buildAllocator({ strategy: [sizeClasses(), freeList()], memory64, minAlign, debug, exports: ["malloc", "free", "malloc_usable_size"] }).instantiate();

  test("the release build's classes, the room in front, and a write one byte past a block caught at the next block's canary", async () => {
    const [a, release] = [await build(true), await build(false)];
    const p = a.malloc(20), q = a.malloc(20);
    const usable = a.malloc_usable_size(p);
    expect(usable).toBe(release.malloc_usable_size(release.malloc(20)));
    expect(q - p).toBe(usable + room + W);
    expect([p % minAlign, q % minAlign]).toEqual([0, 0]);
    const bytes = new Uint8Array(a.memory.buffer);
    bytes.fill(0x41, p, p + usable); // the whole block: no fault
    a.checkHeap();
    bytes[p + usable] = 0x41; // one byte past it
    expect(faultOf(() => a.checkHeap())).toMatchObject({ kind: "corrupt-heap", layer: "size-classes", ptr: q - room - W });
    expect(faultOf(() => a.free(p)).message).toMatch(/a write past the end of the block \(the canary after it is broken\)/);
  });
});
