import { describe, expect, test } from "vitest";
import {
  AllocConfigError,
  binaryen,
  buildAllocator,
  DEFAULT_EXPORTS,
  DEFAULT_THREAD_CACHE,
  HeapFaultError,
  installAllocator,
  PAGE_SIZE,
  THREAD_CACHE_FLUSH,
  type Strategy,
} from "./index.ts";
import { pagePerBlock } from "./testing.ts";

/**
 * A strategy whose blocks carry their size in the word in front (written by alloc only), cut from
 * pages in address order; free keeps a count of live blocks, so a test can see what reached it.
 * Its usableSize may run without the lock (the word is the block's own).
 */
const sized = (): Strategy => ({
  name: "sized",
  accepts: ["pages"],
  emit({ cg, scope }, parent) {
    if (parent.kind !== "pages") throw new Error("sized: needs pages");
    const top = cg.global(scope("top")), end = cg.global(scope("end")), live = cg.global(scope("live"));
    const alloc = cg.function(scope("alloc"), ["size", "align"], "usize", (f) => {
      const size = f.param("size"), n = f.local(), p = f.local();
      return [
        cg.returnIf(cg.module.i32.or(cg.eqz(size.get()), cg.gtU(size.get(), cg.size(PAGE_SIZE - 64))), cg.size(0)),
        n.set(cg.alignUpConst(size.get(), 16)),
        cg.when(cg.gtU(cg.add(cg.add(top.get(), n.get()), cg.size(16)), end.get()), [
          p.set(cg.call(parent.pages.allocPages, [cg.size(1)])),
          cg.returnIf(cg.eqz(p.get()), cg.size(0)),
          top.set(p.get()),
          end.set(cg.add(p.get(), cg.size(PAGE_SIZE))),
        ]),
        p.set(cg.add(top.get(), cg.size(16))),
        cg.store(cg.sub(p.get(), cg.size(4)), n.get()),
        top.set(cg.add(p.get(), n.get())),
        live.set(cg.add(live.get(), cg.size(1))),
        p.get(),
      ];
    });
    const free = cg.function(scope("free"), ["ptr"], "none", () => live.set(cg.sub(live.get(), cg.size(1))));
    const usableSize = cg.function(scope("usable_size"), ["ptr"], "usize", (f) => cg.load(cg.sub(f.param("ptr").get(), cg.size(4))));
    const liveFn = cg.function(scope("live_blocks"), [], "usize", () => live.get());
    return { alloc, free, usableSize, usableSizeUnlocked: true, extras: { live: liveFn } };
  },
});

const sharedMemory = () => new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
/** The lock word, at the default state address. */
const lockWord = (memory: WebAssembly.Memory) => new Int32Array(memory.buffer, 1024, 1);

describe("thread caches", () => {
  const build = (threadCache: Parameters<typeof buildAllocator>[0]["threadCache"] = true) =>
    buildAllocator({ strategy: { ...sized(), extras: { live: "live blocks" } }, threads: true, threadCache, exports: ["malloc", "free", "calloc", "realloc", "live"] });

  test("exports thread_cache_flush; a cached block comes back without the lock, and a block freed by another thread joins that thread's cache", async () => {
    const built = build();
    expect(built.exports).toContain(THREAD_CACHE_FLUSH);
    const memory = sharedMemory();
    const a = await built.instantiate({ memory }), b = await built.instantiate({ memory });
    const p = a.malloc(24);
    // The miss took the lock once: a's table, the block, and a list of 32-byte blocks filled to
    // half the class's budget.
    const refill = DEFAULT_THREAD_CACHE.classBytes / 2 / 32;
    expect(a.call("live")).toBe(2 + refill);
    new Uint8Array(memory.buffer).fill(0xab, p, p + 24);
    b.free(p);
    // b has no table yet (it never missed): the free went to the strategy under the lock.
    expect(a.call("live")).toBe(1 + refill);
    const q = b.malloc(20);
    b.free(q);
    // With the lock held by "another thread", hits and cached frees still run (a taken lock would spin forever).
    Atomics.store(lockWord(memory), 0, 1);
    expect(b.malloc(17)).toBe(q);
    const r = a.malloc(30);
    expect(r).not.toBe(0);
    b.free(r);
    expect(b.malloc(32)).toBe(r);
    Atomics.store(lockWord(memory), 0, 0);
  });

  test("calloc zeroes a dirty cached block; realloc of a cached-class block keeps its contents", async () => {
    const built = build();
    const memory = sharedMemory();
    const a = await built.instantiate({ memory });
    const p = a.malloc(48);
    const bytes = () => new Uint8Array(memory.buffer);
    bytes().fill(0xcd, p, p + 48);
    a.free(p);
    const z = a.calloc(6, 8);
    expect(z).toBe(p);
    expect([...bytes().subarray(z, z + 48)].every((x) => x === 0)).toBe(true);
    bytes().fill(7, z, z + 48);
    const moved = a.realloc(z, 4000);
    expect(moved).not.toBe(0);
    expect([...bytes().subarray(moved, moved + 48)].every((x) => x === 7)).toBe(true);
    // calloc past maxSize, or overflowing, takes the strategy's path.
    expect(a.calloc(2 ** 16, 2 ** 16)).toBe(0);
    expect(a.calloc(1000, 2)).not.toBe(0);
  });

  test("thread_cache_flush hands every cached block and the table back; the thread starts again after it", async () => {
    const built = build();
    const memory = sharedMemory();
    const a = await built.instantiate({ memory });
    const blocks = [16, 32, 100, 512, 600].map((n) => a.malloc(n));
    for (const p of blocks) a.free(p);
    expect(a.call("live")).toBeGreaterThan(0);
    a.call(THREAD_CACHE_FLUSH);
    expect(a.call("live")).toBe(0);
    a.call(THREAD_CACHE_FLUSH);
    expect(a.call("live")).toBe(0);
    expect(a.malloc(16)).not.toBe(0);
  });

  test("a class keeps at most classBytes: frees beyond it reach the strategy", async () => {
    const built = build({ maxSize: 64, classBytes: 64 });
    const memory = sharedMemory();
    const a = await built.instantiate({ memory });
    const blocks = Array.from({ length: 10 }, () => a.malloc(16));
    const before = a.call("live");
    for (const p of blocks) a.free(p);
    // The last refill left two 16-byte blocks on the list (half of 64 bytes): two more fit in
    // the class's 64 bytes, the other eight reach the strategy.
    expect(before - a.call("live")).toBe(8);
  });

  test("a debug build traps on a free of a block already in the thread's cache, and releases the lock", async () => {
    const built = buildAllocator({ strategy: sized(), threads: true, threadCache: true, debug: true });
    const memory = sharedMemory();
    const a = await built.instantiate({ memory });
    const p = a.malloc(40);
    a.free(p);
    expect(() => a.free(p)).toThrow(HeapFaultError);
    expect(() => a.free(p)).toThrow(/already free \(in this thread's cache\)/);
    expect(lockWord(memory)[0]).toBe(0);
    expect(a.malloc(40)).toBe(p);
  });

  test("installAllocator: thread_cache_flush is among the functions emitted by default, and can be exported", async () => {
    const module = new binaryen.Module();
    module.setFeatures(binaryen.Features.All);
    module.setMemory(1, 64, null, [], true, false, "0");
    module.addMemoryImport("0", "env", "memory", true);
    try {
      const installed = installAllocator(module, { strategy: sized(), threads: true, threadCache: true, exports: ["malloc", "free", THREAD_CACHE_FLUSH] });
      expect(Object.keys(installed.functions)).toEqual([...DEFAULT_EXPORTS, THREAD_CACHE_FLUSH]);
      expect(module.validate()).toBe(1);
      const memory = sharedMemory();
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource, { env: { memory } });
      const { malloc, free, [THREAD_CACHE_FLUSH]: flush } = instance.exports as Record<string, (...args: number[]) => number>;
      const p = malloc!(24);
      free!(p);
      expect(malloc!(24)).toBe(p);
      flush!();
    } finally {
      module.dispose();
    }
  });

  const errors: [string, () => unknown, RegExp][] = [
    ["a cache without threads", () => buildAllocator({ strategy: sized(), threadCache: true }), /threadCache needs threads/],
    ["a strategy without sizes", () => buildAllocator({ strategy: pagePerBlock(), threads: true, threadCache: true }), /top strategy "page-per-block" records no block sizes.*size-classes/],
    [
      "a usableSize that needs the lock",
      () => buildAllocator({ strategy: { ...sized(), emit: (ctx, p) => ({ ...sized().emit(ctx, p), usableSizeUnlocked: false }) }, threads: true, threadCache: true }),
      /does not promise that its usableSize reads only what the block's owner writes/,
    ],
    ["an unknown option", () => buildAllocator({ strategy: sized(), threads: true, threadCache: { size: 1 } as object }), /threadCache: unknown option "size"/],
    ["a maxSize off the spacing", () => buildAllocator({ strategy: sized(), threads: true, threadCache: { maxSize: 40 } }), /maxSize \(40\) must be a multiple of the class spacing, 16 bytes/],
    ["classBytes below maxSize", () => buildAllocator({ strategy: sized(), threads: true, threadCache: { classBytes: 100 } }), /classBytes must be an integer from maxSize \(512\)/],
    ["thread_cache_flush without a cache", () => buildAllocator({ strategy: sized(), threads: true, exports: ["malloc", THREAD_CACHE_FLUSH] }), /exists only in builds with thread caches/],
  ];
  test.each(errors)("refuses %s", (_name, run, message) => {
    expect(run).toThrow(AllocConfigError);
    expect(run).toThrow(message);
  });
});
