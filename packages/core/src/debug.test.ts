import { faultOf } from "@alloc/test-utils";
import { describe, expect, test } from "vitest";
import { AllocConfigError, binaryen, buildAllocator, HeapFaultError, installAllocator, POISON, PAGE_SHIFT, type Strategy } from "./index.ts";
import { pagePerBlock } from "./testing.ts";

/**
 * A page-per-block strategy that uses every debug hook: alloc poisons its block, free checks 16
 * bytes of poison and fails as a double free on a second call, and the walker reports fixed
 * statistics. Only the plumbing is under test here; the strategies test their own checks.
 */
const hooked = (): Strategy => ({
  name: "hooked",
  accepts: ["pages"],
  emit({ cg, scope, debug }, parent) {
    if (parent.kind !== "pages") throw new Error("pages only");
    const freed = cg.global(scope("freed"));
    const alloc = cg.function(scope("alloc"), ["size", "align"], "usize", (f) => {
      const size = f.param("size"), p = f.local();
      return [
        cg.returnIf(cg.eqz(size.get()), cg.size(0)),
        p.set(cg.call(parent.pages.allocPages, [cg.add(cg.shrU(cg.sub(size.get(), cg.size(1)), cg.size(PAGE_SHIFT)), cg.size(1))])),
        ...(debug ? [debug.poison(p.get(), size.get())] : []),
        p.get(),
      ];
    });
    const free = cg.function(scope("free"), ["ptr"], "none", (f) => {
      const ptr = f.param("ptr");
      return debug
        ? [
            debug.failIf(cg.eq(ptr.get(), freed.get()), "double-free", "freed twice", ptr.get()),
            debug.checkPoison(ptr.get(), cg.size(16), "the first 16 bytes were written"),
            freed.set(ptr.get()),
          ]
        : [cg.module.nop()];
    });
    const check =
      debug &&
      cg.function(scope("check"), [], "none", () =>
        Object.values(debug.stats).map((v, i) => v.set(cg.size([3, 2, 100, 4, 60][i]!))),
      );
    return { alloc, free, ...(check && { check }) };
  },
});

describe("the debug build's plumbing", () => {
  const built = buildAllocator({ strategy: hooked(), debug: true, exports: ["malloc", "free"] });

  test("exports heap_check and the debug globals; the site table names each check", () => {
    expect(built.exports).toEqual(["malloc", "free", "heap_check", "memory"]);
    expect(built.debug).toMatchObject({ faultExport: "~alloc/debug/fault", stats: [{ layer: "hooked" }] });
    expect(built.text).toContain('(export "~alloc/debug/fault"');
    expect(built.debug!.sites).toEqual(
      expect.arrayContaining([
        { kind: "double-free", layer: "hooked", what: "freed twice" },
        { kind: "use-after-free", layer: "hooked", what: "the first 16 bytes were written" },
      ]),
    );
  });

  test("a failed check throws a HeapFaultError with kind, layer, address and the trap as cause", async () => {
    const a = await built.instantiate();
    const p = a.malloc(32);
    expect([...new Uint8Array(a.memory.buffer, p, 32)]).toEqual(Array(32).fill(POISON));
    a.free(p);
    const error = faultOf(() => a.free(p));
    expect(error).toBeInstanceOf(HeapFaultError);
    expect(error).toMatchObject({ kind: "double-free", layer: "hooked", ptr: p });
    expect(error.message).toBe(`hooked: double free: freed twice (at 0x${p.toString(16)})`);
    expect(error.cause).toBeInstanceOf(WebAssembly.RuntimeError);
    // The fault is cleared once reported: a later trap is reported on its own.
    expect(a.takeFault()).toBeUndefined();
    const q = a.malloc(32);
    new Uint8Array(a.memory.buffer)[q + 5] = 1;
    expect(() => a.free(q)).toThrow(`hooked: write after free: the first 16 bytes were written (at 0x${(q + 5).toString(16)})`);
  });

  test("checkHeap returns each layer's statistics and the totals", async () => {
    const a = await built.instantiate();
    expect(a.checkHeap()).toEqual({
      layers: [{ layer: "hooked", usedBytes: 3, usedBlocks: 2, freeBytes: 100, freeBlocks: 4, largestFree: 60 }],
      freeBytes: 100,
      largestFree: 60,
      fragmentation: 0.4,
    });
  });

  test("a release build has no walker, and says so", async () => {
    const release = buildAllocator({ strategy: pagePerBlock(), exports: ["malloc", "free"] });
    expect(release.debug).toBeUndefined();
    const a = await release.instantiate();
    expect(() => a.checkHeap()).toThrow(/release build/);
    expect(a.takeFault()).toBeUndefined();
    expect(() => buildAllocator({ strategy: pagePerBlock(), exports: ["malloc", "heap_check"] })).toThrow(/only in debug builds/);
    expect(() => buildAllocator({ strategy: pagePerBlock(), debug: "yes" as unknown as boolean })).toThrow(AllocConfigError);
  });
});

test("installed into a module, a debug allocator names its globals for the owner to export", async () => {
  const module = new binaryen.Module();
  try {
    module.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
    module.setMemory(1, 10, "memory");
    const installed = installAllocator(module, { strategy: hooked(), debug: true, functions: ["malloc", "free", "heap_check"], exports: ["malloc", "free", "heap_check"] });
    const info = installed.debug!;
    module.addGlobalExport(info.faultExport, "fault");
    module.addGlobalExport(info.stats[0]!.exports.freeBytes, "free_bytes");
    expect(module.validate()).toBe(1);
    const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
    const { malloc, free, heap_check } = instance.exports as Record<string, (...a: number[]) => number>;
    heap_check!();
    expect((instance.exports.free_bytes as WebAssembly.Global).value).toBe(100);
    const p = malloc!(16);
    free!(p);
    expect(() => free!(p)).toThrow(WebAssembly.RuntimeError);
    const site = info.sites[(instance.exports.fault as WebAssembly.Global).value - 1]!;
    expect(site).toEqual({ kind: "double-free", layer: "hooked", what: "freed twice" });
  } finally {
    module.dispose();
  }
});
