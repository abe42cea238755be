import { describe, expect, test } from "vitest";
import {
  AllocConfigError,
  binaryen,
  buildAllocator,
  growBackend,
  installAllocator,
  PAGE_SIZE,
  type Strategy,
} from "./index.ts";
import { pagePerBlock } from "./testing.ts";

/** A strategy that must sit on another one. */
const upper = (): Strategy => ({
  name: "upper",
  accepts: ["allocator"],
  emit(_ctx, parent) {
    if (parent.kind !== "allocator") throw new Error("needs an allocator");
    return parent.allocator;
  },
});

describe("configuration errors are clear and come before any Wasm", () => {
  const cases: [string, () => unknown, RegExp][] = [
    ["empty stack", () => buildAllocator({ strategy: [] }), /stack is empty/],
    ["not a strategy", () => buildAllocator({ strategy: [{} as Strategy] }), /not a strategy/],
    ["allocator-only strategy at the bottom", () => buildAllocator({ strategy: upper() }), /cannot sit directly on a page backend/],
    ["pages-only strategy on top of another", () => buildAllocator({ strategy: [pagePerBlock(), pagePerBlock()] }), /cannot sit on top of "page-per-block"/],
    ["minAlign not a power of two", () => buildAllocator({ strategy: pagePerBlock(), minAlign: 12 }), /minAlign must be a power of two/],
    ["minAlign too small", () => buildAllocator({ strategy: pagePerBlock(), minAlign: 2 }), /minAlign/],
    ["minAlign above a page", () => buildAllocator({ strategy: pagePerBlock(), minAlign: 2 * PAGE_SIZE }), /minAlign/],
    ["prefix with a slash", () => buildAllocator({ strategy: pagePerBlock(), prefix: "a/b" }), /prefix/],
    ["unknown export", () => buildAllocator({ strategy: pagePerBlock(), exports: ["malloc", "mallocx"] }), /unknown function "mallocx"/],
    ["export name used twice", () => buildAllocator({ strategy: pagePerBlock(), exports: { malloc: "a", free: "a" } }), /used twice/],
    ["usable size the strategy cannot know", () => buildAllocator({ strategy: pagePerBlock(), exports: ["malloc_usable_size"] }), /malloc_usable_size/],
    ["optimize mode", () => buildAllocator({ strategy: pagePerBlock(), optimize: "fast" as "speed" }), /optimize must be/],
    ["memory mode", () => buildAllocator({ strategy: pagePerBlock(), memory: { mode: "shared" as "import" } }), /memory mode/],
    ["maximum below initial", () => buildAllocator({ strategy: pagePerBlock(), memory: { initialPages: 4, maximumPages: 2 } }), /maximumPages/],
    ["maximum of an imported memory", () => buildAllocator({ strategy: pagePerBlock(), memory: { mode: "import", maximumPages: 2 } }), /imported memory's maximum/],
    ["no initial page", () => buildAllocator({ strategy: pagePerBlock(), memory: { initialPages: 0 } }), /at least 1 initial page/],
    ["grow maximum out of range", () => growBackend({ maximumPages: 70_000 }), /maximumPages/],
    ["grow maximum zero", () => growBackend({ maximumPages: 0 }), /maximumPages/],
    ["exclusive with an imported memory", () => buildAllocator({ strategy: pagePerBlock(), backend: growBackend({ exclusive: true }), memory: { mode: "import" } }), /exclusive/],
  ];
  test.each(cases)("%s", (_name, run, message) => {
    expect(run).toThrow(AllocConfigError);
    expect(run).toThrow(message);
  });
});

describe("composition", () => {
  test("the result carries bytes the engine accepts, text, size and exports", () => {
    const built = buildAllocator({ strategy: pagePerBlock(), exports: { malloc: "my_malloc", free: "my_free" } });
    expect(WebAssembly.validate(built.binary as BufferSource)).toBe(true);
    expect(built.size).toBe(built.binary.byteLength);
    expect(built.exports).toEqual(["my_malloc", "my_free", "memory"]);
    expect(built.text).toContain('(export "my_malloc"');
    expect(built.memory).toMatchObject({ mode: "export", name: "memory", initialPages: 1, maximumPages: 65535 });
  });

  test("optimising for size gives fewer bytes than not optimising", () => {
    const none = buildAllocator({ strategy: pagePerBlock(), optimize: "none" }).size;
    const small = buildAllocator({ strategy: pagePerBlock(), optimize: "size" }).size;
    expect(small).toBeLessThan(none);
  });

  test("a build leaves Binaryen's process-wide settings as it found them", () => {
    binaryen.setOptimizeLevel(1);
    binaryen.setShrinkLevel(0);
    binaryen.setLowMemoryUnused(false);
    binaryen.setZeroFilledMemory(false);
    buildAllocator({ strategy: pagePerBlock(), optimize: "size" });
    buildAllocator({ strategy: pagePerBlock(), optimize: "speed" });
    expect(binaryen.getOptimizeLevel()).toBe(1);
    expect(binaryen.getShrinkLevel()).toBe(0);
    expect(binaryen.getLowMemoryUnused()).toBe(false);
    expect(binaryen.getZeroFilledMemory()).toBe(false);
  });

  test("instantiate reports a missing export clearly", async () => {
    const a = await buildAllocator({ strategy: pagePerBlock(), exports: ["malloc"] }).instantiate();
    expect(() => a.free(8)).toThrow(/does not export free/);
  });
});

describe("the C API over a strategy", () => {
  const make = (bulkMemory = true) =>
    buildAllocator({ strategy: pagePerBlock(), bulkMemory, exports: ["malloc", "free", "calloc", "realloc", "aligned_alloc"] }).instantiate();

  test.each([true, false])("calloc zeroes and rejects overflowing products (bulk memory %s)", async (bulk) => {
    const a = await make(bulk);
    const p = a.malloc(100);
    new Uint8Array(a.memory.buffer).fill(0xee, p, p + 100);
    expect(a.calloc(0x10000, 0x10001)).toBe(0);
    expect(a.calloc(0xffffffff, 0xffffffff)).toBe(0);
    const q = a.calloc(10, 10);
    expect([...new Uint8Array(a.memory.buffer, q, 100)].every((b) => b === 0)).toBe(true);
  });

  test.each([true, false])("realloc copies and frees, and handles 0 on either side (bulk memory %s)", async (bulk) => {
    const a = await make(bulk);
    const p = a.malloc(40);
    new Uint8Array(a.memory.buffer).set([...Array(40).keys()], p);
    const q = a.realloc(p, 80);
    expect(q).not.toBe(p);
    expect([...new Uint8Array(a.memory.buffer, q, 40)]).toEqual([...Array(40).keys()]);
    expect(a.realloc(q, 0)).toBe(0);
    expect(a.realloc(0, 16)).not.toBe(0);
  });

  test("aligned_alloc rejects what is not a power of two up to 64 KiB", async () => {
    const a = await make();
    for (const bad of [0, 3, 100, 2 * PAGE_SIZE]) expect(a.aligned_alloc(bad, 8)).toBe(0);
    expect(a.aligned_alloc(PAGE_SIZE, 8) % PAGE_SIZE).toBe(0);
  });
});

describe("installing into an existing module", () => {
  test("needs a memory", () => {
    const module = new binaryen.Module();
    try {
      expect(() => installAllocator(module, { strategy: pagePerBlock() })).toThrow(/has no memory/);
    } finally {
      module.dispose();
    }
  });

  test("asks for bulk memory only when the module enables it, and works without it", async () => {
    const module = new binaryen.Module();
    try {
      module.setFeatures(binaryen.Features.MVP);
      module.setMemory(1, 10);
      expect(() => installAllocator(module, { strategy: pagePerBlock(), bulkMemory: true })).toThrow(/bulk-memory/);
      installAllocator(module, { strategy: pagePerBlock(), exports: ["calloc", "realloc", "malloc"] });
      expect(module.validate()).toBe(1);
      expect(module.emitText()).not.toMatch(/memory\.(fill|copy)/);
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      const { calloc } = instance.exports as Record<string, (...a: number[]) => number>;
      expect(calloc!(4, 4)).toBe(PAGE_SIZE);
    } finally {
      module.dispose();
    }
  });
});
