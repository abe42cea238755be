import { binaryen, type CFunction } from "@alloc/core";
import type { RustRole } from "./entries.ts";

/**
 * The new body of one of Rust's global allocator functions over our C functions. Rust passes the
 * alignment (a power of two) with every call and the old size to dealloc and realloc:
 * alignments up to `minAlign` are what malloc, calloc and realloc give anyway; larger ones go
 * through aligned_alloc (and a realloc then copies `min(old, new)` bytes itself).
 */
export function rustBody(
  module: binaryen.Module,
  role: RustRole,
  ours: Readonly<Partial<Record<CFunction, string>>>,
  minAlign: number,
  bulkMemory: boolean,
): { vars: number[]; body: number } {
  const i32 = binaryen.i32;
  const get = (i: number) => module.local.get(i, i32);
  const call = (fn: CFunction, args: number[]) => module.call(ours[fn]!, args, fn === "free" ? binaryen.none : i32);
  const small = (align: number) => module.i32.le_u(get(align), module.i32.const(minAlign));
  switch (role) {
    case "rust_alloc": // (size, align)
      return { vars: [], body: module.if(small(1), call("malloc", [get(0)]), call("aligned_alloc", [get(1), get(0)])) };
    case "rust_dealloc": // (ptr, size, align)
      return { vars: [], body: call("free", [get(0)]) };
    case "rust_alloc_zeroed": {
      // (size, align); local 2: the block, 3: the byte loop's counter
      const block = 2;
      return {
        vars: [i32, i32],
        body: module.if(
          small(1),
          call("calloc", [module.i32.const(1), get(0)]),
          module.block(null, [
            module.local.set(block, call("aligned_alloc", [get(1), get(0)])),
            module.if(get(block), fill(module, get(block), get(0), bulkMemory, 3)),
            get(block),
          ], i32),
        ),
      };
    }
    case "rust_realloc": {
      // (ptr, old_size, align, new_size); local 4: the new block, 5: the byte loop's counter
      const moved = 4;
      const min = module.select(module.i32.lt_u(get(1), get(3)), get(1), get(3));
      return {
        vars: [i32, i32],
        body: module.if(
          small(2),
          call("realloc", [get(0), get(3)]),
          module.block(null, [
            module.local.set(moved, call("aligned_alloc", [get(2), get(3)])),
            module.if(get(moved), module.block(null, [copy(module, get(moved), get(0), min, bulkMemory, 5), call("free", [get(0)])])),
            get(moved),
          ], i32),
        ),
      };
    }
  }
}

/** Zeroes `len` bytes at `dest`: memory.fill, or a byte loop with counter local `counter`. */
function fill(module: binaryen.Module, dest: number, len: number, bulkMemory: boolean, counter: number): number {
  if (bulkMemory) return module.memory.fill(dest, module.i32.const(0), len);
  return byteLoop(module, len, counter, (at) => module.i32.store8(0, 1, module.i32.add(dest, at), module.i32.const(0)));
}

/** Copies `len` bytes from `src` to `dest` (not overlapping): memory.copy, or a byte loop. */
function copy(module: binaryen.Module, dest: number, src: number, len: number, bulkMemory: boolean, counter: number): number {
  if (bulkMemory) return module.memory.copy(dest, src, len);
  const i32 = binaryen.i32;
  return byteLoop(module, len, counter, (at) =>
    module.i32.store8(0, 1, module.i32.add(dest, at), module.i32.load8_u(0, 1, module.i32.add(src, module.local.get(counter, i32)))),
  );
}

/** `for (counter = len; counter--; ) body(counter)`. `len` is evaluated once. */
function byteLoop(module: binaryen.Module, len: number, counter: number, body: (at: number) => number): number {
  const i32 = binaryen.i32;
  const c = () => module.local.get(counter, i32);
  const label = `~swap/bytes${counter}`;
  return module.block(null, [
    module.local.set(counter, len),
    module.block(`${label}/done`, [
      module.loop(
        label,
        module.block(null, [
          module.br(`${label}/done`, module.i32.eqz(c())),
          module.local.set(counter, module.i32.sub(c(), module.i32.const(1))),
          body(c()),
          module.br(label),
        ]),
      ),
    ]),
  ]);
}
