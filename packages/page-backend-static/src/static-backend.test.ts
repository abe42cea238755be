import { AllocConfigError, binaryen, buildAllocator, growBackend, installAllocator, PAGE_SIZE } from "@alloc/core";
import { pagePerBlock } from "@alloc/core/testing";
import { describe, expect, test } from "vitest";
import { staticBackend } from "./index.ts";

describe("static backend configuration", () => {
  test.each([
    ["start 0 (the null page)", { start: 0, size: PAGE_SIZE }, /at least 65536/],
    ["unaligned start", { start: PAGE_SIZE + 8, size: PAGE_SIZE }, /multiple of 65536/],
    ["empty region", { start: PAGE_SIZE, size: 0 }, /positive multiple/],
    ["unaligned size", { start: PAGE_SIZE, size: 1000 }, /positive multiple/],
    ["past the memory64 limit", { start: 2 ** 31 * PAGE_SIZE, size: PAGE_SIZE }, /past the memory64 limit/],
    ["not a number", { start: Number.NaN, size: PAGE_SIZE }, /start must be/],
  ])("%s is refused", (_name, options, message) => {
    expect(() => staticBackend(options)).toThrow(AllocConfigError);
    expect(() => staticBackend(options)).toThrow(message);
  });

  test("a region past 4 GiB is refused in a wasm32 build, and fits a memory64 build", () => {
    const backend = staticBackend({ start: 65000 * PAGE_SIZE, size: 1000 * PAGE_SIZE });
    expect(() => buildAllocator({ strategy: pagePerBlock(), backend })).toThrow(
      /the static backend needs 66000 pages of memory, more than a wasm32 memory holds \(65535\): build with memory64 for more/,
    );
    expect(buildAllocator({ strategy: pagePerBlock(), backend, memory64: true, optimize: "none" }).memory.initialPages).toBe(66000);
  });

  test("a region that does not fit in the memory is refused before any Wasm exists", () => {
    const backend = staticBackend({ start: 4 * PAGE_SIZE, size: 4 * PAGE_SIZE });
    expect(() => buildAllocator({ strategy: pagePerBlock(), backend, memory: { initialPages: 4 } })).toThrow(
      /smaller than the static backend needs \(8\)/,
    );
  });

  test("the memory is sized to hold the region by default", () => {
    const built = buildAllocator({ strategy: pagePerBlock(), backend: staticBackend({ start: 2 * PAGE_SIZE, size: 3 * PAGE_SIZE }) });
    expect(built.memory.initialPages).toBe(5);
  });
});

describe("static backend at run time", () => {
  test("hands out the region page by page, never grows, and refuses past its end", async () => {
    const backend = staticBackend({ start: 3 * PAGE_SIZE, size: 2 * PAGE_SIZE });
    const a = await buildAllocator({ strategy: pagePerBlock(), backend }).instantiate();
    const before = a.memoryBytes();
    expect(a.malloc(PAGE_SIZE)).toBe(3 * PAGE_SIZE);
    expect(a.malloc(8)).toBe(4 * PAGE_SIZE);
    expect(a.malloc(8)).toBe(0);
    expect(a.malloc(0xffffffff)).toBe(0);
    expect(a.memoryBytes()).toBe(before);
  });

  test("memory outside the region is never touched", async () => {
    const backend = staticBackend({ start: PAGE_SIZE, size: PAGE_SIZE });
    const a = await buildAllocator({ strategy: pagePerBlock(), backend, memory: { initialPages: 3 } }).instantiate();
    const mem = new Uint8Array(a.memory.buffer);
    mem.fill(0x5a, 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    expect(a.calloc(1, 1000)).toBe(PAGE_SIZE);
    expect(a.calloc(1, 1000)).toBe(0);
    expect(mem.subarray(2 * PAGE_SIZE).every((b) => b === 0x5a)).toBe(true);
  });
});

describe("static backend installed into a module", () => {
  /** A module with 4 pages of memory, set up by `setup`, and a static region over pages [first, first + 1). */
  function install(first: number, setup: (m: binaryen.Module) => void) {
    const module = new binaryen.Module();
    try {
      setup(module);
      if (!module.hasMemory()) module.setMemory(4, 10);
      const before = module.emitText();
      const run = () =>
        installAllocator(module, { strategy: pagePerBlock(), backend: staticBackend({ start: first * PAGE_SIZE, size: PAGE_SIZE }), exports: ["malloc"] });
      return { module, before, run };
    } catch (error) {
      module.dispose();
      throw error;
    }
  }
  const data = (offset: number) => (m: binaryen.Module) =>
    m.setMemory(4, 10, null, [{ offset: m.i32.const(offset), data: new Uint8Array(16).fill(0x5a) }]);

  test.each<[string, number, (m: binaryen.Module) => void, RegExp]>([
    ["an active data segment", 1, data(PAGE_SIZE + 100), /overlaps data segment "0" at \[65636, 65652\).*start the region at or above 131072/],
    ["the stack below __stack_pointer's initial value", 1, (m) => void m.addGlobal("__stack_pointer", binaryen.i32, true, m.i32.const(2 * PAGE_SIZE)), /overlaps the stack \(below __stack_pointer's initial value\)/],
    ["static data below an exported __heap_base", 2, (m) => {
      m.addGlobal("hb", binaryen.i32, false, m.i32.const(3 * PAGE_SIZE - 16));
      m.addGlobalExport("hb", "__heap_base");
    }, /overlaps static data and the stack \(below __heap_base\)/],
    ["a data segment whose offset is not a constant", 3, (m) => {
      m.addGlobalImport("mb", "env", "__memory_base", binaryen.i32, false);
      m.setMemory(4, 10, null, [{ offset: m.global.get("mb", binaryen.i32), data: new Uint8Array(4) }]);
    }, /cannot be checked against data segment #0 \(its offset is not a constant\)/],
  ])("a region over %s is refused, the module untouched", (_name, first, setup, message) => {
    const { module, before, run } = install(first, setup);
    try {
      expect(run).toThrow(AllocConfigError);
      expect(run).toThrow(message);
      expect(module.emitText()).toBe(before);
    } finally {
      module.dispose();
    }
  });

  test("a region beside the data is accepted, and the data survives allocation", async () => {
    const { module, run } = install(2, data(PAGE_SIZE + 100));
    try {
      run();
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      const malloc = instance.exports.malloc as (n: number) => number;
      expect(malloc(PAGE_SIZE)).toBe(2 * PAGE_SIZE);
      expect(malloc(8)).toBe(0);
    } finally {
      module.dispose();
    }
  });

  test("beside an exclusive grow allocator: the static one never grows, so both may share the module", async () => {
    const module = new binaryen.Module();
    try {
      module.setMemory(3, 10);
      installAllocator(module, { strategy: pagePerBlock(), backend: growBackend({ exclusive: true }), exports: { malloc: "grow_malloc" }, prefix: "g" });
      installAllocator(module, { strategy: pagePerBlock(), backend: staticBackend({ start: PAGE_SIZE, size: 2 * PAGE_SIZE }), exports: { malloc: "static_malloc" }, prefix: "s" });
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      const { grow_malloc, static_malloc } = instance.exports as Record<string, (n: number) => number>;
      expect([static_malloc!(8), grow_malloc!(8), static_malloc!(8), grow_malloc!(8)]).toEqual([1, 3, 2, 4].map((p) => p * PAGE_SIZE));
    } finally {
      module.dispose();
    }
  });

  test("options that are not an object are refused clearly", () => {
    expect(() => staticBackend(undefined as never)).toThrow(/options must be an object with start and size, got undefined/);
  });
});
