import { buildAllocator, C_FUNCTIONS, EINVAL, ENOMEM, growBackend, PAGE_SIZE, type BuildOptions } from "@alloc/core";
import { staticBackend } from "@alloc/page-backend-static";
import { faultOf } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { fail } from "./index.ts";

/** Every C function, malloc_usable_size included. */
const ALL = [...C_FUNCTIONS];

const setups: Record<string, Omit<BuildOptions, "strategy">> = {
  "grow (own memory)": {},
  "grow (own memory, exclusive)": { backend: growBackend({ exclusive: true }) },
  "grow (imported memory)": { memory: { mode: "import" } },
  "static region": { backend: staticBackend({ start: PAGE_SIZE, size: 4 * PAGE_SIZE }) },
};

/** Sizes and alignments a program may ask for, valid and not. */
const SIZES = [0, 1, 7, 8, 24, 4096, PAGE_SIZE, PAGE_SIZE + 1, 0x7fffffff, 0xfffffff8, 0xffffffff];
const ALIGNS = [0, 1, 2, 3, 4, 8, 24, 4096, PAGE_SIZE, 2 * PAGE_SIZE, 0x80000000, 0xffffffff];

describe.each(Object.entries(setups))("fail over %s: every C function, executed", (_name, setup) => {
  const heap = async (debug = false) => {
    const built = buildAllocator({ strategy: fail(), exports: ALL, ...setup, debug });
    return built.instantiate();
  };

  test("malloc, calloc, realloc(0, n) and aligned_alloc return 0 for every request; memory never grows", async () => {
    for (const debug of [false, true]) {
      const a = await heap(debug);
      const bytes = a.memoryBytes();
      for (const size of SIZES) {
        expect(a.malloc(size), `malloc(${size})`).toBe(0);
        expect(a.calloc(1, size), `calloc(1, ${size})`).toBe(0);
        expect(a.calloc(size, 3), `calloc(${size}, 3)`).toBe(0);
        expect(a.realloc(0, size), `realloc(0, ${size})`).toBe(0);
        for (const align of ALIGNS) expect(a.aligned_alloc(align, size), `aligned_alloc(${align}, ${size})`).toBe(0);
      }
      expect(a.memoryBytes()).toBe(bytes);
      // Nothing in memory changed either: the allocator keeps no state there.
      expect(Buffer.from(a.memory.buffer).equals(Buffer.alloc(a.memoryBytes()))).toBe(true);
    }
  });

  test("posix_memalign: ENOMEM for every valid request but size 0 (a null block, success), EINVAL for a bad alignment", async () => {
    for (const debug of [false, true]) {
      const a = await heap(debug);
      // *memptr: a word of the memory (fail never uses any of it).
      const slot = 64;
      const view = () => new DataView(a.memory.buffer);
      const pm = (align: number, size: number) => {
        view().setUint32(slot, 0xdeadbeef, true);
        const err = a.call("posix_memalign", slot, align, size);
        return { err, ptr: view().getUint32(slot, true) };
      };
      for (let align = 4; align <= PAGE_SIZE; align *= 2) {
        for (const size of SIZES.filter((s) => s > 0)) expect(pm(align, size), `(${align}, ${size})`).toEqual({ err: ENOMEM, ptr: 0xdeadbeef });
        expect(pm(align, 0)).toEqual({ err: 0, ptr: 0 });
      }
      for (const bad of [0, 1, 2, 3, 24, 0xffffffff]) expect(pm(bad, 8)).toEqual({ err: EINVAL, ptr: 0xdeadbeef });
      expect(pm(2 * PAGE_SIZE, 8)).toEqual({ err: ENOMEM, ptr: 0xdeadbeef });
    }
  });

  test("free(0), realloc(0, 0) and malloc_usable_size(0) are fine", async () => {
    for (const debug of [false, true]) {
      const a = await heap(debug);
      for (let i = 0; i < 3; i++) a.free(0);
      expect(a.realloc(0, 0)).toBe(0);
      expect(a.malloc_usable_size(0)).toBe(0);
      if (debug) a.checkHeap();
    }
  });

  test("release build: free, realloc and malloc_usable_size of any other pointer are harmless", async () => {
    const a = await heap();
    for (const p of [8, 16, PAGE_SIZE, 0xfffffff8]) {
      a.free(p);
      expect(a.realloc(p, 16)).toBe(0);
      expect(a.malloc_usable_size(p)).toBe(0);
    }
    expect(Buffer.from(a.memory.buffer).equals(Buffer.alloc(a.memoryBytes()))).toBe(true);
  });

  test("debug build: free, realloc or malloc_usable_size of any pointer but 0 is an invalid pointer", async () => {
    const a = await heap(true);
    const calls: [string, (p: number) => unknown][] = [
      ["free", (p) => a.free(p)],
      ["realloc to a size", (p) => a.realloc(p, 16)],
      ["realloc to 0", (p) => a.realloc(p, 0)],
      ["malloc_usable_size", (p) => a.malloc_usable_size(p)],
    ];
    for (const [what, call] of calls) {
      for (const p of [8, PAGE_SIZE, 0xfffffff8]) {
        const fault = faultOf(() => call(p));
        expect(fault, `${what}(${p})`).toMatchObject({ kind: "invalid-pointer", layer: "fail", ptr: p });
        expect(fault.message).toMatch(/^fail: invalid pointer: fail never allocates/);
      }
    }
  });
});

describe("fail in a stack", () => {
  test("it must be the whole stack: nothing on it, nothing under it", () => {
    const upper = { name: "upper", accepts: ["allocator" as const], emit: () => ({ alloc: "", free: "" }) };
    expect(() => buildAllocator({ strategy: [upper, fail()] })).toThrow(/strategy "upper" cannot sit on top of "fail": "fail" must be the top of the stack/);
    expect(() => buildAllocator({ strategy: [fail(), fail()] })).toThrow(/strategy "fail" cannot sit on top of "fail": "fail" must be the bottom/);
    expect(buildAllocator({ strategy: [fail()] }).exports).toContain("malloc");
  });
});

test("a stats build reports no layer (fail keeps no heap) and still allocates nothing", async () => {
  const a = await buildAllocator({ strategy: fail(), stats: true }).instantiate();
  expect(a.malloc(8)).toBe(0);
  expect(a.heapStats().layers).toEqual([]);
});

describe("fail code size", () => {
  const size = (options: Omit<BuildOptions, "strategy">) => buildAllocator({ strategy: fail(), ...options }).size;

  test("memory + malloc + free: at most 80 bytes; the five C functions: at most 200", () => {
    expect(size({ exports: ["malloc", "free"] })).toBeLessThanOrEqual(80);
    expect(size({})).toBeLessThanOrEqual(200);
  });

  test("sizes of every fail composition (a change here is a reviewed change)", () => {
    const table = {
      "grow, malloc+free": size({ exports: ["malloc", "free"] }),
      "grow, C API": size({}),
      "grow, every C function": size({ exports: ALL }),
      "grow, C API, speed": size({ optimize: "speed" }),
      "grow imported, malloc+free": size({ exports: ["malloc", "free"], memory: { mode: "import" } }),
      "static, C API": size({ backend: staticBackend({ start: PAGE_SIZE, size: PAGE_SIZE }) }),
      "debug, C API": size({ debug: true }),
    };
    expect(table).toMatchSnapshot();
  });
});
