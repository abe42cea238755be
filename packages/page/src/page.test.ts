import { binaryen, buildAllocator, EINVAL, ENOMEM, growBackend, installAllocator, PAGE_SIZE, type BuildOptions } from "@alloc/core";
import { staticBackend } from "@alloc/page-backend-static";
import { BlockModel, rng } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { page } from "./index.ts";

const C_API = ["malloc", "free", "calloc", "realloc", "aligned_alloc", "posix_memalign"];

/** The backends and memory modes page must work over. */
const setups: Record<string, Omit<BuildOptions, "strategy">> = {
  "grow (own memory)": {},
  "grow (own memory, exclusive)": { backend: growBackend({ exclusive: true }) },
  "grow (imported memory)": { memory: { mode: "import" } },
  "static region": { backend: staticBackend({ start: 2 * PAGE_SIZE, size: 64 * PAGE_SIZE }) },
  "static region (imported memory)": {
    backend: staticBackend({ start: PAGE_SIZE, size: 32 * PAGE_SIZE }),
    memory: { mode: "import" },
  },
};

async function make(setup: Omit<BuildOptions, "strategy">, exports: readonly string[] = C_API) {
  const a = await buildAllocator({ strategy: page(), exports, ...setup }).instantiate();
  const model = new BlockModel(() => new Uint8Array(a.memory.buffer));
  return { a, model };
}

/** Pages a block of `size` bytes takes. */
const pagesOf = (size: number) => Math.ceil(size / PAGE_SIZE);

describe.each(Object.entries(setups))("page over %s", (_name, setup) => {
  test("every block starts a page of its own, above the one before; contents are kept; free reuses nothing", async () => {
    const { a, model } = await make(setup);
    const r = rng(2);
    let last = 0;
    const freed = new Set<number>();
    for (let i = 0; i < 12; i++) {
      const size = r.pick([1, 8, 100, 5000, PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + 1, 70_000]);
      const p = a.malloc(size);
      expect(p % PAGE_SIZE, `malloc(${size})`).toBe(0);
      expect(p).toBeGreaterThan(last);
      expect(freed.has(p)).toBe(false);
      model.add(p, size);
      last = p;
      if (i % 3 === 2) {
        const [victim] = model.pointers();
        model.remove(victim!);
        a.free(victim!);
        freed.add(victim!);
      }
    }
    for (const p of model.pointers()) model.check(p);
  });

  test("aligned_alloc and posix_memalign honour every power of two up to 64 KiB, and refuse the rest", async () => {
    const { a, model } = await make(setup);
    for (let align = 1; align <= PAGE_SIZE; align *= 2) {
      const p = a.aligned_alloc(align, 24);
      expect(p % PAGE_SIZE, `align ${align}`).toBe(0);
      model.add(p, 24, PAGE_SIZE);
    }
    for (const bad of [0, 3, 24, 2 * PAGE_SIZE, 0x80000000, 0xffffffff]) expect(a.aligned_alloc(bad, 8), `align ${bad}`).toBe(0);
    const slot = a.malloc(8);
    const view = () => new DataView(a.memory.buffer);
    const pm = (align: number, size: number) => {
      view().setUint32(slot, 1, true);
      return { err: a.call("posix_memalign", slot, align, size), ptr: view().getUint32(slot, true) };
    };
    const { err, ptr } = pm(PAGE_SIZE, 100);
    expect(err).toBe(0);
    expect(ptr % PAGE_SIZE).toBe(0);
    model.add(ptr, 100, PAGE_SIZE);
    expect(pm(12, 100)).toEqual({ err: EINVAL, ptr: 1 });
    expect(pm(2 * PAGE_SIZE, 100)).toEqual({ err: ENOMEM, ptr: 1 });
    expect(pm(8, 0xfffffff0)).toEqual({ err: ENOMEM, ptr: 1 });
    for (const p of model.pointers()) model.check(p);
  });

  test("impossible requests and malloc(0) return 0; the allocator keeps working", async () => {
    const { a, model } = await make(setup);
    model.add(a.malloc(100), 100);
    for (const size of [0, 0xffffffff, 0xfffffff0, 0xffff0001, 0xfffe0001]) {
      expect(a.malloc(size), `malloc(${size})`).toBe(0);
      expect(a.calloc(1, size), `calloc(1, ${size})`).toBe(0);
    }
    expect(a.calloc(0x10000, 0x10001)).toBe(0); // n * size overflows 32 bits
    const q = a.malloc(200);
    expect(q).not.toBe(0);
    model.add(q, 200);
    for (const p of model.pointers()) model.check(p);
  });

  test("calloc's blocks are zero without clearing: fresh pages, even after blocks were freed", async () => {
    const { a } = await make(setup);
    for (let i = 0; i < 6; i++) {
      const p = a.calloc(3, 1000 * (i + 1));
      expect(p).not.toBe(0);
      const bytes = new Uint8Array(a.memory.buffer, p, 3000 * (i + 1));
      expect(bytes.every((b) => b === 0)).toBe(true);
      bytes.fill(0xee);
      a.free(p);
    }
  });

  test("realloc: in place up to 64 KiB (shrinking too); beyond, the block moves to fresh pages with its contents", async () => {
    const { a } = await make(setup);
    const bytes = (p: number, n: number) => new Uint8Array(a.memory.buffer, p, n);
    const p = a.malloc(10);
    bytes(p, 10).set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(a.realloc(p, 1000)).toBe(p);
    expect(a.realloc(p, PAGE_SIZE)).toBe(p);
    expect(a.realloc(p, 5)).toBe(p);
    expect([...bytes(p, 5)]).toEqual([1, 2, 3, 4, 5]);
    bytes(p, PAGE_SIZE).fill(7);
    const q = a.realloc(p, 3 * PAGE_SIZE);
    expect(q).toBeGreaterThan(p);
    expect(q % PAGE_SIZE).toBe(0);
    expect(bytes(q, PAGE_SIZE).every((b) => b === 7)).toBe(true);
    // A block of three pages keeps growing in place only within its first page's worth: beyond, it moves.
    bytes(q, 3 * PAGE_SIZE).fill(9);
    const r = a.realloc(q, 3 * PAGE_SIZE + 1);
    expect(r).toBeGreaterThan(q);
    expect(bytes(r, 3 * PAGE_SIZE).every((b) => b === 9)).toBe(true);
    // A failed realloc leaves the block as it was.
    expect(a.realloc(r, 0xfffffff0)).toBe(0);
    expect(bytes(r, 3 * PAGE_SIZE).every((b) => b === 9)).toBe(true);
    expect(a.realloc(0, 100)).not.toBe(0);
    expect(a.realloc(r, 0)).toBe(0);
  });
});

describe("how page uses memory", () => {
  test("over a module's own memory, each block grows the memory by exactly its pages", async () => {
    for (const backend of [growBackend(), growBackend({ exclusive: true })]) {
      const { a } = await make({ backend });
      for (const size of [1, 100, PAGE_SIZE, PAGE_SIZE + 1, 5 * PAGE_SIZE - 3, 8]) {
        const before = a.memoryBytes();
        const p = a.malloc(size);
        expect(p, `malloc(${size})`).toBe(before); // the new pages, at the old end of memory
        expect(a.memoryBytes() - before, `malloc(${size})`).toBe(pagesOf(size) * PAGE_SIZE);
      }
      // realloc within a page takes no memory; free gives none back.
      const before = a.memoryBytes();
      const p = a.malloc(10);
      expect(a.realloc(p, 1000)).toBe(p);
      a.free(p);
      expect(a.memoryBytes()).toBe(before + PAGE_SIZE);
    }
  });

  test("a static region hands out exactly its pages, then page returns 0 (never corrupting what it gave)", async () => {
    const { a, model } = await make({ backend: staticBackend({ start: 2 * PAGE_SIZE, size: 4 * PAGE_SIZE }) });
    const bytes = a.memoryBytes();
    const big = a.malloc(2 * PAGE_SIZE + 1); // three pages
    expect(big).toBe(2 * PAGE_SIZE);
    model.add(big, 2 * PAGE_SIZE + 1);
    expect(a.malloc(PAGE_SIZE + 1)).toBe(0); // two pages: one is left
    expect(a.calloc(2, PAGE_SIZE)).toBe(0);
    expect(a.realloc(big, 3 * PAGE_SIZE)).toBe(0); // cannot move: the block stays
    const last = a.malloc(PAGE_SIZE);
    expect(last).toBe(5 * PAGE_SIZE);
    model.add(last, PAGE_SIZE);
    for (let i = 0; i < 3; i++) {
      expect(a.malloc(1)).toBe(0);
      expect(a.aligned_alloc(16, 1)).toBe(0);
    }
    expect(a.realloc(last, 100)).toBe(last); // in place still works
    model.check(big);
    model.check(last, 100);
    expect(a.memoryBytes()).toBe(bytes); // never grows
  });

  test("the grow backend's maximum: page returns 0 at it, and earlier blocks are intact", async () => {
    const { a, model } = await make({ backend: growBackend({ maximumPages: 10 }) });
    let p: number;
    let count = 0;
    while ((p = a.malloc(1000)) !== 0) {
      model.add(p, 1000);
      count++;
    }
    expect(count).toBe(9); // pages 1..9: page 0 holds the null address
    expect(a.memoryBytes()).toBe(10 * PAGE_SIZE);
    for (const q of model.pointers()) model.check(q);
  });

  test("installed into a module: the host's memory is never handed out", async () => {
    const module = new binaryen.Module();
    try {
      module.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
      module.setMemory(2, 100, "mem");
      installAllocator(module, { strategy: page(), functions: ["malloc", "free"], exports: ["malloc", "free"] });
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      const { malloc } = instance.exports as { malloc(n: number): number };
      expect(malloc(8) >>> 0).toBe(2 * PAGE_SIZE);
      expect(malloc(8) >>> 0).toBeGreaterThanOrEqual(3 * PAGE_SIZE);
    } finally {
      module.dispose();
    }
  });
});

describe("page code size", () => {
  const size = (options: Omit<BuildOptions, "strategy">) => buildAllocator({ strategy: page(), ...options }).size;

  test("memory + malloc + free over grow, optimised for size: at most 100 bytes; the five C functions: at most 270", () => {
    expect(size({ exports: ["malloc", "free"] })).toBeLessThanOrEqual(100);
    expect(size({})).toBeLessThanOrEqual(270);
  });

  test("sizes of every page composition (a change here is a reviewed change)", () => {
    const table = {
      "grow, malloc+free": size({ exports: ["malloc", "free"] }),
      "grow exclusive exact, malloc+free": size({ exports: ["malloc", "free"], backend: growBackend({ exclusive: true, growth: "exact" }) }),
      "grow, C API": size({}),
      "grow, C API, speed": size({ optimize: "speed" }),
      "grow imported, malloc+free": size({ exports: ["malloc", "free"], memory: { mode: "import" } }),
      "static, malloc+free": size({ exports: ["malloc", "free"], backend: staticBackend({ start: PAGE_SIZE, size: PAGE_SIZE }) }),
      "static, C API": size({ backend: staticBackend({ start: PAGE_SIZE, size: PAGE_SIZE }) }),
      "debug, C API": size({ debug: true }),
    };
    expect(table).toMatchSnapshot();
  });
});
