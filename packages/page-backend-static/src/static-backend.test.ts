import { AllocConfigError, buildAllocator, PAGE_SIZE } from "@alloc/core";
import { pagePerBlock } from "@alloc/core/testing";
import { describe, expect, test } from "vitest";
import { staticBackend } from "./index.ts";

describe("static backend configuration", () => {
  test.each([
    ["start 0 (the null page)", { start: 0, size: PAGE_SIZE }, /at least 65536/],
    ["unaligned start", { start: PAGE_SIZE + 8, size: PAGE_SIZE }, /multiple of 65536/],
    ["empty region", { start: PAGE_SIZE, size: 0 }, /positive multiple/],
    ["unaligned size", { start: PAGE_SIZE, size: 1000 }, /positive multiple/],
    ["past the wasm32 limit", { start: 65000 * PAGE_SIZE, size: 1000 * PAGE_SIZE }, /past the wasm32 limit/],
    ["not a number", { start: Number.NaN, size: PAGE_SIZE }, /start must be/],
  ])("%s is refused", (_name, options, message) => {
    expect(() => staticBackend(options)).toThrow(AllocConfigError);
    expect(() => staticBackend(options)).toThrow(message);
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
