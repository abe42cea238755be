import { PAGE_SHIFT, type AllocatorFunctions, type EmitContext, type Parent, type Strategy } from "@alloc/core";

/**
 * Bump allocation: a pointer moves up through the current region of fresh pages.
 *
 * ```text
 *   start              last          top                 end
 *     |  older blocks   | last block  |  fresh (or dirty)  |   next region from the backend...
 *     +-----------------+-------------+--------------------+
 *                                      ^ dirty: bytes below max(top, dirty) may be non-zero
 * ```
 *
 * State (five pointer-width globals):
 * - `top`: the first free byte of the current region; `end`: the region's end (64 KiB aligned).
 * - `start`: where the current region begins (what `reset` returns to).
 * - `last`: the most recent allocation, the only one `free` can take back.
 * - `dirty`: every byte ever handed out lies below `max(top, dirty)`; memory at or above it is
 *   still as the backend gave it, zero. `calloc` zeroes only below it (mini-alloc's insight: fresh
 *   Wasm pages are zero). Whenever `top` moves down, `dirty` rises to the old `top`.
 *
 * Invariants: `start <= top <= end`; `end` is a multiple of 64 KiB (the backend hands out whole,
 * aligned pages), so aligning `top` to any power of two up to 64 KiB never passes `end`.
 *
 * When the region is full, `alloc` asks the backend for enough pages for the request. If they
 * follow `end` (the usual case with `memory.grow`), the region is extended and the block may
 * straddle the old end; otherwise a new region starts at them and the old region's tail is
 * abandoned (a few bytes to at most 64 KiB).
 *
 * `free` takes back only the most recent block; `resize` grows or shrinks the most recent block
 * in place while it fits in the region. There is no per-block header, so `realloc` of an older
 * block copies `newSize` bytes from it (in bounds: a newer block always lies above it).
 */
export function bump(): Strategy {
  return {
    name: "bump",
    accepts: ["pages"],
    extras: { reset: "reset(): frees every block at once; the next allocation starts over at the current region's start" },
    emit: emitBump,
  };
}

function emitBump({ cg, scope, requested }: EmitContext, parent: Parent): AllocatorFunctions {
  if (parent.kind !== "pages") throw new Error("bump: needs a page backend below it");
  const top = cg.global(scope("top"));
  const end = cg.global(scope("end"));
  const start = cg.global(scope("start"));
  const last = cg.global(scope("last"));
  const dirty = cg.global(scope("dirty"));
  const zero = () => cg.size(0);
  /** dirty = max(dirty, top): before top moves down. Only calloc reads `dirty`. */
  const markDirty = () =>
    requested.has("calloc") ? [dirty.set(cg.maxU(dirty.get(), top.get(), dirty.get(), top.get()))] : [];

  const alloc = cg.function(scope("alloc"), ["size", "align"], "usize", (f) => {
    const size = f.param("size"), align = f.param("align");
    const p = f.local(), pages = f.local(), base = f.local();
    return [
      p.set(cg.alignUp(top.get(), align.get(), align.get())),
      // Slow path: the request does not fit in [p, end). (p <= end always: see the invariants.)
      cg.when(cg.gtU(size.get(), cg.sub(end.get(), p.get())), [
        // size >= 1 here, so ((size - 1) >> 16) + 1 = ceil(size / 64 KiB) cannot overflow.
        pages.set(cg.add(cg.shrU(cg.sub(size.get(), cg.size(1)), cg.size(PAGE_SHIFT)), cg.size(1))),
        base.set(cg.call(parent.pages.allocPages, [pages.get()])),
        cg.returnIf(cg.eqz(base.get()), zero()),
        // Not adjacent to the current region: start a new one (base is page aligned, so aligned).
        cg.when(cg.ne(base.get(), end.get()), [p.set(base.get()), start.set(base.get())]),
        end.set(cg.add(base.get(), cg.shl(pages.get(), cg.size(PAGE_SHIFT)))),
      ]),
      last.set(p.get()),
      top.set(cg.add(p.get(), size.get())),
      p.get(),
    ];
  });

  const free = cg.function(scope("free"), ["ptr"], "none", (f) => {
    const ptr = f.param("ptr");
    // Only the most recent block can be taken back.
    // free(0) is harmless: `last` is 0 only while `top` is 0 too (see reset).
    return cg.when(cg.eq(ptr.get(), last.get()), [...markDirty(), top.set(ptr.get())]);
  });

  const resize = cg.function(scope("resize"), ["ptr", "size"], "usize", (f) => {
    const ptr = f.param("ptr"), size = f.param("size");
    return [
      cg.returnIf(
        cg.module.i32.or(cg.ne(ptr.get(), last.get()), cg.gtU(size.get(), cg.sub(end.get(), ptr.get()))),
        zero(),
      ),
      ...markDirty(),
      top.set(cg.add(ptr.get(), size.get())),
      ptr.get(),
    ];
  });

  const allocZeroed = cg.function(scope("alloc_zeroed"), ["size", "align"], "usize", (f) => {
    const size = f.param("size"), align = f.param("align");
    const p = f.local(), len = f.local();
    return [
      p.set(cg.call(alloc, [size.get(), align.get()])),
      // Zero the part of the block below `dirty`; above it memory is still fresh.
      cg.when(cg.module.i32.and(cg.ne(p.get(), zero()), cg.ltU(p.get(), dirty.get())), [
        len.set(cg.sub(dirty.get(), p.get())),
        cg.fill(f, p.get(), cg.i32(0), cg.select(cg.ltU(size.get(), len.get()), size.get(), len.get())),
      ]),
      p.get(),
    ];
  });

  // `last = start` keeps a later free(start) or free(0) harmless: either leaves top at start.
  const reset = cg.function(scope("reset"), [], "none", () => [
    ...markDirty(),
    top.set(start.get()),
    last.set(start.get()),
  ]);

  return { alloc, free, freeAcceptsNull: true, resize, allocZeroed, extras: { reset } };
}
