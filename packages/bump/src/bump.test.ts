import { binaryen, buildAllocator, growBackend, installAllocator, PAGE_SIZE, type BuildOptions } from "@alloc/core";
import { staticBackend } from "@alloc/page-backend-static";
import { BlockModel, rng } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { bump } from "./index.ts";

const ALL = ["malloc", "free", "calloc", "realloc", "aligned_alloc", "reset"];

/** The backends and memory modes bump must work over. */
const setups: Record<string, Omit<BuildOptions, "strategy">> = {
  "grow (own memory, exclusive)": {},
  "grow (own memory, not exclusive)": { backend: growBackend({ exclusive: false }) },
  "grow (imported memory)": { memory: { mode: "import" } },
  "static region": { backend: staticBackend({ start: 2 * PAGE_SIZE, size: 64 * PAGE_SIZE }) },
  "static region (imported memory)": {
    backend: staticBackend({ start: PAGE_SIZE, size: 8 * PAGE_SIZE }),
    memory: { mode: "import" },
  },
};

async function make(setup: Omit<BuildOptions, "strategy">, exports: readonly string[] = ALL) {
  const built = buildAllocator({ strategy: bump(), exports, ...setup });
  const a = await built.instantiate();
  const model = new BlockModel(() => new Uint8Array(a.memory.buffer));
  return { built, a, model };
}

describe.each(Object.entries(setups))("bump over %s", (_name, setup) => {
  test("blocks are aligned, disjoint and keep their contents; memory grows across many pages", async () => {
    const { a, model } = await make(setup);
    const r = rng(1);
    const start = a.memoryBytes();
    let total = 0;
    while (total < 6 * PAGE_SIZE) {
      const size = r.pick([1, 3, 8, 13, 100, 1000, 5000, 70_000]);
      const p = a.malloc(size);
      expect(p).not.toBe(0);
      model.add(p, size, 8);
      total += size;
    }
    for (const p of model.pointers()) model.check(p);
    if (setup.backend?.name === "static") expect(a.memoryBytes()).toBe(start); // never grows
    else expect(a.memoryBytes()).toBeGreaterThan(start);
  });

  test("aligned_alloc honours every power of two up to 64 KiB, and rejects the rest", async () => {
    const { a, model } = await make(setup);
    for (let align = 1; align <= PAGE_SIZE; align *= 2) {
      const p = a.aligned_alloc(align, 24);
      expect(p, `align ${align}`).not.toBe(0);
      expect(p % Math.max(align, 8)).toBe(0);
      model.add(p, 24, Math.max(align, 8));
    }
    for (const bad of [0, 3, 6, 24, 2 * PAGE_SIZE, 0x80000000, 0xffffffff]) {
      expect(a.aligned_alloc(bad, 8), `align ${bad}`).toBe(0);
    }
    expect(a.malloc(8)).not.toBe(0);
  });

  test("impossible requests return 0 and the allocator keeps working", async () => {
    const { a, model } = await make(setup);
    const p = a.malloc(100);
    model.add(p, 100);
    // Beyond what a wasm32 memory can ever hold (2 GiB would succeed: the engine allows it).
    for (const size of [0xffffffff, 0xfffffff0, 0xffff0000, 0xfffe0001]) {
      expect(a.malloc(size), `malloc(${size})`).toBe(0);
      expect(a.calloc(1, size)).toBe(0);
    }
    expect(a.calloc(0x10000, 0x10000)).toBe(0); // n * size overflows 32 bits
    expect(a.calloc(0xffffffff, 2)).toBe(0);
    const q = a.malloc(200);
    expect(q).not.toBe(0);
    model.add(q, 200);
    model.check(p);
  });

  test("malloc(0) returns 0 (C allows it) and changes nothing", async () => {
    const { a } = await make(setup);
    const p = a.malloc(8);
    expect(a.malloc(0)).toBe(0);
    expect(a.calloc(0, 8)).toBe(0);
    expect(a.aligned_alloc(16, 0)).toBe(0);
    a.free(p); // p is still the latest block: rolled back
    expect(a.malloc(8)).toBe(p);
  });

  test("free takes back the latest block only; free(0) does nothing", async () => {
    const { a } = await make(setup);
    const p = a.malloc(16);
    const q = a.malloc(16);
    a.free(p); // not the latest: no effect
    expect(a.malloc(16)).toBeGreaterThan(q);
    const r = a.malloc(32);
    a.free(r);
    expect(a.malloc(32)).toBe(r); // rolled back
    a.free(0);
    const s = a.malloc(8);
    expect(s).toBeGreaterThan(r);
  });

  test("calloc zeroes reused memory and returns fresh memory zeroed", async () => {
    const { a } = await make(setup);
    const mem = () => new Uint8Array(a.memory.buffer);
    const p = a.malloc(64);
    mem().fill(0xab, p, p + 64);
    a.free(p); // rollback: [p, p+64) is dirty now
    const q = a.calloc(8, 8);
    expect(q).toBe(p);
    expect([...mem().subarray(q, q + 64)].every((b) => b === 0)).toBe(true);
    // A larger calloc over the dirty block and fresh memory beyond it.
    mem().fill(0xcd, q, q + 64);
    a.free(q);
    const r = a.calloc(1, 200_000);
    expect(r).not.toBe(0);
    expect(mem().subarray(r, r + 200_000).every((b) => b === 0)).toBe(true);
  });

  test("calloc after reset zeroes everything that was handed out", async () => {
    const { a } = await make(setup);
    const mem = () => new Uint8Array(a.memory.buffer);
    const p = a.malloc(1000);
    const q = a.malloc(1000);
    mem().fill(0x77, p, q + 1000);
    a.call("reset");
    const r = a.calloc(1, 3000);
    expect(r).toBe(p);
    expect(mem().subarray(r, r + 3000).every((b) => b === 0)).toBe(true);
  });

  test("realloc: in place for the latest block, moves older ones, keeps contents", async () => {
    const { a } = await make(setup);
    const mem = () => new Uint8Array(a.memory.buffer);
    expect(a.realloc(0, 0)).toBe(0); // realloc(0, n) is malloc(n), and malloc(0) is 0
    const p = a.realloc(0, 16);
    expect(p).not.toBe(0);
    mem().set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], p);
    expect(a.realloc(p, 4000)).toBe(p); // latest: grows in place
    expect(a.realloc(p, 8)).toBe(p); // and shrinks in place
    const q = a.malloc(8); // p is no longer the latest
    const moved = a.realloc(p, 64);
    expect(moved).not.toBe(p);
    expect([...mem().subarray(moved, moved + 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(moved).toBeGreaterThan(q);
    // Failure leaves the block as it was.
    expect(a.realloc(moved, 0xfffffff0)).toBe(0);
    expect([...mem().subarray(moved, moved + 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // realloc(p, 0) frees p and returns 0.
    expect(a.realloc(moved, 0)).toBe(0);
  });

  test("reset frees everything at once", async () => {
    const { a } = await make(setup);
    const p = a.malloc(10);
    for (let i = 0; i < 100; i++) a.malloc(1000);
    a.call("reset");
    expect(a.malloc(10)).toBe(p);
  });
});

describe("bump runs out of memory cleanly", () => {
  test("static region: exhaustion returns 0 and later requests that fit succeed", async () => {
    const { a, model } = await make({ backend: staticBackend({ start: PAGE_SIZE, size: 4 * PAGE_SIZE }) });
    const pages = 4;
    const got: number[] = [];
    for (let i = 0; i < 100; i++) {
      const p = a.malloc(20_000);
      if (p === 0) break;
      model.add(p, 20_000);
      got.push(p);
    }
    expect(got.length).toBe(Math.floor((pages * PAGE_SIZE) / 20_000));
    expect(a.malloc(20_000)).toBe(0);
    expect(a.memoryBytes()).toBe(5 * PAGE_SIZE); // never grew
    // What is left at the end of the region still serves small requests.
    const small = a.malloc(100);
    expect(small).not.toBe(0);
    model.add(small, 100);
    // A rollback makes room again.
    a.free(small);
    model.remove(small);
    expect(a.malloc(100)).toBe(small);
  });

  test("grow with a declared maximum: refusal returns 0, then smaller requests succeed", async () => {
    const { a } = await make({ memory: { maximumPages: 4 } });
    expect(a.malloc(3 * PAGE_SIZE)).not.toBe(0);
    expect(a.malloc(PAGE_SIZE + 1)).toBe(0);
    expect(a.memoryBytes()).toBe(4 * PAGE_SIZE);
    expect(a.malloc(1000)).not.toBe(0);
  });

  test("grow backend's own maximum over imported memory (which the engine does not bound)", async () => {
    const { a } = await make({ memory: { mode: "import" }, backend: growBackend({ maximumPages: 3 }) });
    expect(a.malloc(PAGE_SIZE)).not.toBe(0);
    expect(a.malloc(2 * PAGE_SIZE)).toBe(0);
    expect(a.memoryBytes()).toBe(2 * PAGE_SIZE);
    expect(a.malloc(PAGE_SIZE)).not.toBe(0);
    expect(a.memoryBytes()).toBe(3 * PAGE_SIZE);
  });
});

describe("bump shares memory and modules", () => {
  test("imported memory: the allocator works in the memory the host gives it", async () => {
    const memory = new WebAssembly.Memory({ initial: 3 });
    const built = buildAllocator({ strategy: bump(), memory: { mode: "import", importModule: "host", name: "heap" } });
    expect(built.exports).not.toContain("heap");
    const a = await built.instantiate({ memory });
    expect(a.memory).toBe(memory);
    const p = a.malloc(10);
    expect(p).toBeGreaterThanOrEqual(3 * PAGE_SIZE); // never inside the host's pages
    new Uint8Array(memory.buffer)[p] = 42;
    expect(new Uint8Array(a.memory.buffer)[p]).toBe(42);
  });

  test("not exclusive: pages another party grows in between are never handed out", async () => {
    const { a, model } = await make({ backend: growBackend({ exclusive: false }) });
    const p = a.malloc(60_000);
    model.add(p, 60_000);
    const hostPage = a.memory.grow(1) * PAGE_SIZE; // the host takes a page for itself
    new Uint8Array(a.memory.buffer).fill(0x99, hostPage, hostPage + PAGE_SIZE);
    for (let i = 0; i < 20; i++) {
      const q = a.malloc(30_000);
      expect(q + 30_000 <= hostPage || q >= hostPage + PAGE_SIZE, `block ${q} inside the host's page`).toBe(true);
      model.add(q, 30_000);
    }
    expect(new Uint8Array(a.memory.buffer).subarray(hostPage, hostPage + PAGE_SIZE).every((b) => b === 0x99)).toBe(true);
  });

  test("installed into an existing module, called from the module's own code", async () => {
    const module = new binaryen.Module();
    try {
      module.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
      module.setMemory(1, 100, "mem");
      const installed = installAllocator(module, { strategy: bump(), functions: ["malloc", "free"], exports: ["malloc"] });
      // The host's own function: allocate two blocks and return the distance between them.
      const i32 = binaryen.i32;
      module.addFunction(
        "twoBlocks",
        binaryen.none,
        i32,
        [i32],
        module.block(null, [
          module.local.set(0, module.call(installed.functions.malloc!, [module.i32.const(100)], i32)),
          module.i32.sub(module.call(installed.functions.malloc!, [module.i32.const(8)], i32), module.local.get(0, i32)),
        ], i32),
      );
      module.addFunctionExport("twoBlocks", "twoBlocks");
      expect(module.validate()).toBe(1);
      const binary = module.emitBinary();
      const { instance } = await WebAssembly.instantiate(binary as BufferSource);
      const exports = instance.exports as { twoBlocks(): number; malloc(n: number): number; mem: WebAssembly.Memory };
      expect(exports.twoBlocks()).toBe(104);
      expect(exports.malloc(8) >>> 0).toBeGreaterThanOrEqual(PAGE_SIZE);
      expect(installed.exports).toEqual({ malloc: "malloc" });
    } finally {
      module.dispose();
    }
  });

  test("two allocators in one module, each with its own prefix and region", async () => {
    const module = new binaryen.Module();
    try {
      module.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
      module.setMemory(4, 4, "mem");
      installAllocator(module, {
        strategy: bump(),
        prefix: "~heapA",
        backend: staticBackend({ start: PAGE_SIZE, size: PAGE_SIZE }),
        exports: { malloc: "mallocA" },
      });
      installAllocator(module, {
        strategy: bump(),
        prefix: "~heapB",
        backend: staticBackend({ start: 2 * PAGE_SIZE, size: 2 * PAGE_SIZE }),
        exports: { malloc: "mallocB" },
      });
      expect(() => installAllocator(module, { strategy: bump(), prefix: "~heapA" })).toThrow(/already has .*~heapA/);
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      const { mallocA, mallocB } = instance.exports as Record<string, (n: number) => number>;
      expect(mallocA!(8)).toBe(PAGE_SIZE);
      expect(mallocB!(8)).toBe(2 * PAGE_SIZE);
      expect(mallocA!(PAGE_SIZE)).toBe(0); // A's region is full; B's is untouched
      expect(mallocB!(PAGE_SIZE)).not.toBe(0);
    } finally {
      module.dispose();
    }
  });
});

describe("bump code size", () => {
  const size = (options: Omit<BuildOptions, "strategy">) => buildAllocator({ strategy: bump(), ...options }).size;

  // The default grow backend is safe when the host grows the exported memory too (the run's end
  // is a global, pages after someone else's are fenced off) and grows by a sixteenth of the memory
  // at least: 60 bytes over an exclusive backend that grows by the exact pages.
  test("memory + malloc + free over grow, optimised for size: at most 240 bytes", () => {
    expect(size({ exports: ["malloc", "free"] })).toBeLessThanOrEqual(240);
  });

  // (extend returns where the pages start, which costs 14 bytes over a yes/no.)
  test("memory + malloc + free over an exclusive grow backend growing exact pages: at most 170 bytes", () => {
    expect(size({ exports: ["malloc", "free"], backend: growBackend({ exclusive: true, growth: "exact" }) })).toBeLessThanOrEqual(170);
  });

  test("sizes of every bump composition (a change here is a reviewed change)", () => {
    const table = {
      "grow, malloc+free": size({ exports: ["malloc", "free"] }),
      "grow exclusive exact, malloc+free": size({ exports: ["malloc", "free"], backend: growBackend({ exclusive: true, growth: "exact" }) }),
      "grow, C API": size({}),
      "grow, C API + reset": size({ exports: ALL }),
      "grow, C API, speed": size({ optimize: "speed" }),
      "grow imported, malloc+free": size({ exports: ["malloc", "free"], memory: { mode: "import" } }),
      "static, malloc+free": size({
        exports: ["malloc", "free"],
        backend: staticBackend({ start: PAGE_SIZE, size: PAGE_SIZE }),
      }),
      "static, C API": size({ backend: staticBackend({ start: PAGE_SIZE, size: PAGE_SIZE }) }),
    };
    expect(table).toMatchSnapshot();
  });
});
