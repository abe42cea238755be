import { describe, expect, test } from "vitest";
import { EINVAL, ENOMEM } from "./c-api.ts";
import { binaryen, buildAllocator, growBackend, installAllocator, PAGE_SIZE, type Strategy } from "./index.ts";
import { pagePerBlock } from "./testing.ts";

/**
 * A strategy that hands out blocks of any alignment from a page of its own, without accepting
 * alignments below minAlign itself: posix_memalign must raise them.
 */
const offsetBlocks = (): Strategy => ({
  name: "offset-blocks",
  accepts: ["pages"],
  emit({ cg, scope }, parent) {
    if (parent.kind !== "pages") throw new Error("needs pages");
    const alloc = cg.function(scope("alloc"), ["size", "align"], "usize", (f) => {
      const size = f.param("size"), align = f.param("align"), page = f.local();
      return [
        cg.returnIf(cg.gtU(size.get(), cg.size(PAGE_SIZE / 2)), cg.size(0)),
        cg.returnIf(cg.eqz(page.tee(cg.call(parent.pages.allocPages, [cg.size(2)]))), cg.size(0)),
        // The block starts at `align` past a page boundary: aligned to `align` and no more (below a page).
        cg.add(page.get(), cg.select(cg.eq(align.get(), cg.size(PAGE_SIZE)), cg.size(PAGE_SIZE), align.get())),
      ];
    });
    const free = cg.function(scope("free"), ["ptr"], "none", () => cg.module.nop());
    return { alloc, free };
  },
});

const SENTINEL = 0xdeadbeef;

/** posix_memalign through the exported function, with *memptr in a word of the allocator's own memory. */
async function posixMemalign(strategy: Strategy = pagePerBlock(), maximumPages?: number) {
  const built = buildAllocator({
    strategy,
    exports: ["malloc", "posix_memalign"],
    ...(maximumPages !== undefined && { backend: growBackend({ maximumPages }) }),
  });
  const heap = await built.instantiate();
  const slot = heap.malloc(16);
  expect(slot).not.toBe(0);
  const view = () => new DataView(heap.memory.buffer);
  return (align: number, size: number) => {
    view().setUint32(slot, SENTINEL, true);
    const err = heap.call("posix_memalign", slot, align, size);
    return { err, ptr: view().getUint32(slot, true) };
  };
}

describe("posix_memalign: C's contract, executed in Wasm", () => {
  test("EINVAL (28) unless align is a power-of-two multiple of the pointer size; *memptr untouched", async () => {
    const pm = await posixMemalign();
    for (const bad of [0, 1, 2, 3, 6, 12, 24, 100, 0x80000001, 0xffffffff]) {
      expect(pm(bad, 16), `align ${bad}`).toEqual({ err: EINVAL, ptr: SENTINEL });
    }
    expect(EINVAL).toBe(28);
  });

  test("every valid alignment gives a block aligned to it, stored at *memptr", async () => {
    const pm = await posixMemalign(offsetBlocks());
    for (let align = 4; align <= PAGE_SIZE; align *= 2) {
      const { err, ptr } = pm(align, 40);
      expect(err, `align ${align}`).toBe(0);
      expect(ptr).not.toBe(0);
      expect(ptr % Math.max(align, 8), `align ${align}`).toBe(0);
    }
  });

  test("ENOMEM (48) when it cannot allocate, and for a valid alignment above 64 KiB; *memptr untouched", async () => {
    const pm = await posixMemalign(pagePerBlock(), 4);
    expect(pm(8, 1 << 30)).toEqual({ err: ENOMEM, ptr: SENTINEL });
    expect(pm(2 * PAGE_SIZE, 8)).toEqual({ err: ENOMEM, ptr: SENTINEL });
    expect(pm(2 ** 31, 8)).toEqual({ err: ENOMEM, ptr: SENTINEL });
    expect(ENOMEM).toBe(48);
    // The heap is still usable afterwards.
    expect(pm(16, 100).err).toBe(0);
  });

  test("size 0: success, with whatever the strategy returns (NULL is allowed)", async () => {
    const pm = await posixMemalign(pagePerBlock());
    expect(pm(16, 0)).toEqual({ err: 0, ptr: 0 });
  });

  test("installed into a module, called from Wasm", async () => {
    const module = new binaryen.Module();
    try {
      module.setMemory(1, 100, "memory");
      const { functions } = installAllocator(module, { strategy: pagePerBlock(), functions: ["posix_memalign"] });
      // run(align) -> err, with *memptr at address 16
      module.addFunction(
        "run",
        binaryen.createType([binaryen.i32]),
        binaryen.i32,
        [],
        module.call(functions.posix_memalign!, [module.i32.const(16), module.local.get(0, binaryen.i32), module.i32.const(10)], binaryen.i32),
      );
      module.addFunctionExport("run", "run");
      const binary = module.emitBinary();
      expect(WebAssembly.validate(binary as BufferSource)).toBe(true);
      const { instance } = await WebAssembly.instantiate(binary as BufferSource);
      const run = instance.exports.run as (align: number) => number;
      const memory = new DataView((instance.exports.memory as WebAssembly.Memory).buffer);
      expect(run(3)).toBe(EINVAL);
      expect(memory.getUint32(16, true)).toBe(0);
      expect(run(256)).toBe(0);
      const ptr = new DataView((instance.exports.memory as WebAssembly.Memory).buffer).getUint32(16, true);
      expect(ptr % PAGE_SIZE).toBe(0);
      expect(ptr).toBeGreaterThan(0);
    } finally {
      module.dispose();
    }
  });
});
