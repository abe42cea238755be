import { describe, expect, test } from "vitest";
import { AllocConfigError, binaryen, buildAllocator, growBackend, installAllocator, PAGE_SIZE, THREAD_STATE_BYTES } from "./index.ts";
import { pagePerBlock } from "./testing.ts";

/** A shared memory for tests: small maximum (each one reserves its maximum up front). */
const sharedMemory = (initial: number) => new WebAssembly.Memory({ initial, maximum: 256, shared: true });

describe("a thread-safe build", () => {
  test("imports a shared memory with a maximum, takes a lock with cmpxchg, and keeps no heap state in globals", () => {
    const built = buildAllocator({ strategy: pagePerBlock(), threads: true, optimize: "none" });
    expect(built.memory).toMatchObject({ mode: "import", shared: true, maximumPages: 65536 });
    expect(built.text).toMatch(/\(import "env" "memory" \(memory \$0 1 65536 shared\)\)/);
    expect(built.text).toContain("i32.atomic.rmw.cmpxchg");
    expect(built.text).not.toContain("memory.atomic.wait32");
    // The memory's size from memory.grow(0): V8 may answer memory.size with a size from before
    // another thread's grow. memory.size only where that view is what counts: the lock compares
    // it with the grown-pages word, which the allocator's memory.grow sets.
    const functions = built.text.split(/(?=\(func )/).filter((f) => f.includes("memory.size"));
    expect(functions.map((f) => f.match(/^\(func \$(\S+)/)?.[1])).toEqual(["~alloc/memory/grow", "~alloc/lock/acquire"]);
    expect(built.text).toMatch(/\(func \$~alloc\/lock\/acquire[^]*i32\.lt_u\s+\(memory\.size\)\s+\(i32\.load offset=1028/);
    // The grow backend's reserve (two words) lives in the state area: no global at all.
    expect(built.text).not.toMatch(/\(global /);
    const waiting = buildAllocator({ strategy: pagePerBlock(), threads: { wait: true }, optimize: "none" });
    expect(waiting.text).toContain("memory.atomic.wait32");
    expect(waiting.text).toContain("memory.atomic.notify");
  });

  test("instances over one memory share the heap: the second takes the pages the first grew in reserve", async () => {
    const built = buildAllocator({ strategy: pagePerBlock(), threads: true, memory: { initialPages: 16 }, backend: growBackend({ growth: 1 / 8 }) });
    const memory = sharedMemory(16);
    const a = await built.instantiate({ memory }), b = await built.instantiate({ memory });
    // 16 pages: a grows 1 + 16/8 pages, hands out the first and keeps two in reserve.
    expect(a.malloc(100)).toBe(16 * PAGE_SIZE);
    expect(b.malloc(100)).toBe(17 * PAGE_SIZE);
    expect(a.malloc(100)).toBe(18 * PAGE_SIZE);
    expect(memory.buffer.byteLength).toBe(19 * PAGE_SIZE);
    // The state area: the lock word free again, the memory's size after the latest grow (19
    // pages), the reserve's cells (pages: next 19, end 19).
    const words = new Uint32Array(memory.buffer, 1024, 4);
    expect([...words]).toEqual([0, 19, 19, 19]);
  });

  test("memory64: the lock and the state cells at 64-bit addresses of a shared memory64 memory, shared by the instances", async () => {
    const built = buildAllocator({ strategy: pagePerBlock(), threads: true, memory64: true, memory: { initialPages: 16 }, backend: growBackend({ growth: 1 / 8 }), optimize: "none" });
    expect(built.text).toMatch(/\(import "env" "memory" \(memory \$0 i64 16 65536 shared\)\)/);
    expect(built.text).toMatch(/i32\.atomic\.rmw\.cmpxchg offset=1024\s+\(i64\.const 0\)/);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 256, shared: true, index: "i64" } as WebAssembly.MemoryDescriptor);
    const a = await built.instantiate({ memory }), b = await built.instantiate({ memory });
    expect(a.malloc(100)).toBe(16 * PAGE_SIZE);
    expect(b.malloc(100)).toBe(17 * PAGE_SIZE);
    // The lock word free again and the grown-pages word (19), then the reserve's cells (pages:
    // next 18, end 19) as 64-bit words.
    expect([...new Uint32Array(memory.buffer, 1024, 2)]).toEqual([0, 19]);
    expect([...new BigUint64Array(memory.buffer, 1032, 2)]).toEqual([18n, 19n]);
  });

  test("a debug build's heap walker runs under the lock and releases it", async () => {
    const built = buildAllocator({ strategy: pagePerBlock(), threads: true, debug: true, memory: { initialPages: 2 } });
    const memory = sharedMemory(2);
    const heap = await built.instantiate({ memory });
    expect(heap.checkHeap().layers).toEqual([]);
    expect(new Uint32Array(memory.buffer, 1024, 1)[0]).toBe(0);
  });

  const errors: [string, () => unknown, RegExp][] = [
    ["an exported memory", () => buildAllocator({ strategy: pagePerBlock(), threads: true, memory: { mode: "export" } }), /imports its memory .* memory\.mode "export"/],
    ["threads not a boolean or object", () => buildAllocator({ strategy: pagePerBlock(), threads: "yes" as unknown as true }), /threads must be true, false or/],
    ["an unknown thread option", () => buildAllocator({ strategy: pagePerBlock(), threads: { spin: 3 } as object }), /threads: unknown option "spin"/],
    ["wait not a boolean", () => buildAllocator({ strategy: pagePerBlock(), threads: { wait: 1 as unknown as boolean } }), /threads\.wait must be/],
    ["a misaligned state address", () => buildAllocator({ strategy: pagePerBlock(), threads: { stateAddress: 1028 } }), /stateAddress must be a positive multiple of 8/],
    ["a state area past the initial memory", () => buildAllocator({ strategy: pagePerBlock(), threads: { stateAddress: PAGE_SIZE - 64 } }), /must lie inside the initial memory \(1 pages\)/],
    ["a maximum above 4 GiB", () => buildAllocator({ strategy: pagePerBlock(), threads: true, memory: { maximumPages: 65537 } }), /maximumPages must be an integer from initialPages \(1\) to 65536/],
  ];
  test.each(errors)("refuses %s", (_name, build, message) => {
    expect(build).toThrow(AllocConfigError);
    expect(build).toThrow(message);
  });

  test("the state area is among the memory's reserved ranges, so that no backend hands it out", () => {
    let reserved: unknown;
    const grow = growBackend();
    const watching = { ...grow, validate: (memory: Parameters<NonNullable<typeof grow.validate>>[0]) => void (reserved = memory.reserved) };
    buildAllocator({ strategy: pagePerBlock(), backend: watching, threads: { stateAddress: 2048 } });
    expect(reserved).toEqual([{ start: 2048, end: 2048 + THREAD_STATE_BYTES, what: expect.stringContaining("state area") }]);
  });
});

describe("installAllocator into a module with a shared memory", () => {
  function threadedModule(setup?: (m: binaryen.Module) => void) {
    const module = new binaryen.Module();
    module.setFeatures(binaryen.Features.All);
    setup?.(module);
    return module;
  }

  test("places the state area above the module's data, and two instances share the heap", async () => {
    const module = threadedModule((m) => {
      m.setMemory(2, 256, null, [{ offset: m.i32.const(1024), data: new Uint8Array(3000), passive: false }], true, false, "0");
      m.addMemoryImport("0", "env", "memory", true);
    });
    try {
      installAllocator(module, { strategy: pagePerBlock(), threads: true, exports: ["malloc", "free"] });
      expect(module.validate()).toBe(1);
      const text = module.emitText();
      // The data ends at 4024: the area starts at the next multiple of 64.
      expect(text).toMatch(/i32\.atomic\.rmw\.cmpxchg offset=4032/);
      const binary = module.emitBinary();
      const memory = sharedMemory(2);
      const a = await WebAssembly.instantiate(binary as BufferSource, { env: { memory } });
      const b = await WebAssembly.instantiate(binary as BufferSource, { env: { memory } });
      const malloc = (i: WebAssembly.WebAssemblyInstantiatedSource) => (i.instance.exports.malloc as (n: number) => number)(10) >>> 0;
      expect(malloc(a)).toBe(2 * PAGE_SIZE);
      expect(malloc(b)).toBe(3 * PAGE_SIZE);
    } finally {
      module.dispose();
    }
  });

  test("needs the atomics feature, and a place for the state area", () => {
    const noAtomics = threadedModule((m) => {
      m.setFeatures(binaryen.Features.MVP);
      m.setMemory(1, 10, null, [], true);
    });
    const full = threadedModule((m) => m.setMemory(1, 10, null, [{ offset: m.i32.const(1024), data: new Uint8Array(PAGE_SIZE - 1100), passive: false }], true));
    try {
      expect(() => installAllocator(noAtomics, { strategy: pagePerBlock(), threads: true })).toThrow(/threads needs the atomics feature/);
      expect(() => installAllocator(full, { strategy: pagePerBlock(), threads: true })).toThrow(/state area \[65472, 65728\) must lie inside the initial memory/);
      // Below the data, where the module's code does not write: accepted.
      installAllocator(full, { strategy: pagePerBlock(), threads: { stateAddress: 512 } });
      expect(() => installAllocator(threadedModule((m) => m.setMemory(1, 10, null, [{ offset: m.i32.const(1024), data: new Uint8Array(8), passive: false }], true)), { strategy: pagePerBlock(), threads: { stateAddress: 1024 } })).toThrow(/state area \[1024, 1280\) overlaps data segment/);
    } finally {
      noAtomics.dispose();
      full.dispose();
    }
  });
});
