import { allocEntries, PAGE_SHIFT, type StatVars, type Expr, type FunctionScope, type Local, type AllocatorFunctions, type EmitContext, type Parent, type Strategy } from "@alloc/core";

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
 * - `last`: the most recent allocation, the only one `free` can take back; -1 (no pointer) when
 *   there is none, so `free(0)` needs no test of its own.
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
 * in place while it fits in the region (over a contiguous run, by asking for more pages). There is no per-block header, so `realloc` of an older
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

function emitBump({ cg, scope, requested, debug, limits, stats }: EmitContext, parent: Parent): AllocatorFunctions {
  if (parent.kind !== "pages") throw new Error("bump: needs a page backend below it");
  const { allocPages, run } = parent.pages;
  // Over a contiguous run, the region is the run itself: it starts at run.start and its end is
  // the run's end. Otherwise bump keeps its own `start` and `end`, starting empty at 0.
  const origin = run?.start ?? 0;
  const top = cg.global(scope("top"), origin);
  // NONE: no block can be taken back; it matches no pointer free can be given (free(0) included).
  const NONE = -1;
  const last = cg.global(scope("last"), NONE);
  const dirty = cg.global(scope("dirty"));
  const start = run ? undefined : cg.global(scope("start"));
  const endVar = run ? undefined : cg.global(scope("end"));
  const end = () => (run ? run.end() : endVar!.get());
  const zero = () => cg.size(0);
  const m = cg.module;
  /**
   * Debug builds: `floor`, the lowest address bump ever handed out (blocks below it are not
   * ours); `high`, the highest `top` reached in the current region (memory above it is fresh);
   * `live`, blocks handed out and not taken back since the last reset (stats builds keep it too:
   * it is the one statistic the walker cannot read from the region).
   */
  const floor = debug && cg.global(scope("debug/floor"), run ? origin : -1);
  const high = debug && cg.global(scope("debug/high"), origin);
  const live = (debug || stats) && cg.global(scope(debug ? "debug/live" : "stats/live"));
  /**
   * Debug: [from, top) is given back; it is poisoned so that a later block there (the only
   * reuse bump does) shows writes made after the free.
   */
  const giveBack = (from: Expr): Expr[] =>
    debug ? [debug.poison(from, cg.sub(top.get(), from))] : [];
  /** Debug: [p, p + size) is handed out: what of it was handed out before must still be poison. */
  const takeAgain = (p: () => Expr, size: () => Expr): Expr[] =>
    debug && high
      ? [
          cg.when(cg.ltU(p(), high.get()), [
            debug.checkPoison(
              p(),
              cg.select(cg.ltU(size(), cg.sub(high.get(), p())), size(), cg.sub(high.get(), p())),
              "bump memory freed earlier was written to",
              true,
            ),
          ]),
        ]
      : [];
  /** dirty = max(dirty, top): before top moves down. Only calloc reads `dirty`. */
  const markDirty = () =>
    requested.has("calloc") ? [dirty.set(cg.maxU(dirty.get(), top.get(), dirty.get(), top.get()))] : [];
  /**
   * Pages for a block of `last + 1` bytes, given `last = size - 1`: `(last >> 16) + 1` is
   * ceil(size / 64 KiB) for size >= 1, and 65536 (more than any backend grants) for size 0,
   * whose `last` wraps.
   */
  const pagesFor = (lastByte: Expr) => cg.add(cg.shrU(lastByte, cg.size(PAGE_SHIFT)), cg.size(1));
  /**
   * Extends the run by `pages` into `base`, or returns 0 from the function when the backend
   * refuses. When the pages do not follow the run's end (the host grew the memory too), `p`, the
   * block's address, moves to them (page aligned, so aligned): what lies between is not ours.
   */
  const extend = (pages: Expr, base: Local, p: Local, before: Local): Expr[] => [
    ...(run!.gaps ? [before.set(run!.end())] : []),
    cg.returnIf(cg.eqz(base.tee(cg.call(run!.extend, [pages]))), zero()),
    ...(run!.gaps ? [cg.when(cg.ne(base.get(), before.get()), [p.set(base.get())])] : []),
  ];

  /** The body of alloc(size, align): shared by `alloc` and its constant-alignment copies. */
  const allocBody = (f: FunctionScope, size: Local, align: () => Expr): Expr[] => {
    const p = f.local(), lastByte = f.local(), pages = f.local(), base = f.local(), before = f.local();
    const refill = run
      ? // The run grows by pages enough for the whole block, so it fits whatever `avail` was.
        // That may ask for up to one block more than the block lacks; the surplus stays at the
        // end of the run for the next blocks (bump never gives memory back anyway), and it is
        // 3 bytes less code than asking for exactly what is lacking.
        extend(pagesFor(lastByte.get()), base, p, before)
      : [
          pages.set(pagesFor(lastByte.get())),
          base.set(cg.call(allocPages, [pages.get()])),
          cg.returnIf(cg.eqz(base.get()), zero()),
          // Not adjacent to the current region: start a new one (base is page aligned, so aligned).
          cg.when(cg.ne(base.get(), endVar!.get()), [
            p.set(base.get()),
            start!.set(base.get()),
            ...(high && floor ? [high.set(base.get()), floor.set(cg.select(cg.ltU(base.get(), floor.get()), base.get(), floor.get()))] : []),
          ]),
          endVar!.set(cg.add(base.get(), cg.shl(pages.get(), cg.size(PAGE_SHIFT)))),
        ];
    return [
      p.set(cg.alignUp(top.get(), align(), align())),
      // Slow path: size - 1 >= end - p, i.e. the block does not fit in [p, end) (p <= end
      // always: see the invariants), or size is 0 (size - 1 wraps), which the slow path always
      // refuses: malloc(0) is 0 and nothing changes.
      cg.when(cg.geU(lastByte.tee(cg.sub(size.get(), cg.size(1))), cg.sub(end(), p.get())), refill),
      ...takeAgain(p.get, size.get),
      last.set(p.get()),
      top.set(cg.add(p.get(), size.get())),
      ...(high ? [high.set(cg.maxU(high.get(), top.get(), high.get(), top.get()))] : []),
      ...(live ? [live.set(cg.add(live.get(), cg.size(1)))] : []),
      p.get(),
    ];
  };

  const { alloc, allocFixed } = allocEntries({ cg, scope }, allocBody);

  const free = cg.function(scope("free"), ["ptr"], "none", (f) => {
    const ptr = f.param("ptr");
    if (debug && floor && live) {
      // Debug: the latest block is taken back and poisoned, and `last` forgets it so that a
      // second free of it is seen. An older block below `top` stays (bump cannot free it).
      return [
        debug.failIf(cg.and(ptr.get(), cg.size(limits.minAlign - 1)), "invalid-pointer", "not an address bump returns (misaligned)", ptr.get()),
        debug.failIf(cg.ltU(ptr.get(), floor.get()), "invalid-pointer", "below every block bump handed out", ptr.get()),
        // No live block starts at `top` or above it: one at `top` was just taken back.
        debug.failIf(cg.eq(ptr.get(), top.get()), "double-free", "the block was freed already (it lies at the top of the heap)", ptr.get()),
        debug.failIf(cg.gtU(ptr.get(), top.get()), "invalid-pointer", "above the top of the heap: never allocated", ptr.get()),
        cg.when(cg.eq(ptr.get(), last.get()), [
          ...markDirty(),
          ...giveBack(ptr.get()),
          top.set(ptr.get()),
          last.set(cg.size(NONE)),
          live.set(cg.sub(live.get(), cg.size(1))),
        ]),
      ];
    }
    // Only the most recent block can be taken back. (A br_if out of the body is a byte
    // shorter than an if around it.)
    // Stats builds count the block out, and forget it as the debug build does (a second free of
    // it must not count it out twice).
    const body = f.label("free");
    const counted = live ? [live.set(cg.sub(live.get(), cg.size(1))), last.set(cg.size(NONE))] : [];
    return cg.module.block(body, [cg.module.br(body, cg.ne(ptr.get(), last.get())), ...markDirty(), top.set(ptr.get()), ...counted]);
  });

  const resize = cg.function(scope("resize"), ["ptr", "size"], "usize", (f) => {
    const ptr = f.param("ptr"), size = f.param("size");
    const avail = f.local(), base = f.local(), before = f.local(), moved = f.local();
    return [
      // Only the most recent block can change size in place (size >= 1: the C API sees to it).
      cg.returnIf(cg.ne(ptr.get(), last.get()), zero()),
      cg.when(
        cg.gtU(size.get(), avail.tee(cg.sub(end(), ptr.get()))),
        // Over a run, more pages extend the region right after the block; otherwise it cannot grow.
        // Exactly the pages lacking: realloc-doubling a buffer must not double the memory. Pages
        // that do not follow the run (the host grew the memory too) cannot: the next blocks start
        // there (the block stays where it is, no longer the most recent), and realloc moves it.
        run
          ? [
              moved.set(ptr.get()),
              ...extend(pagesFor(cg.sub(cg.sub(size.get(), cg.size(1)), avail.get())), base, moved, before),
              ...(run.gaps ? [cg.when(cg.ne(moved.get(), ptr.get()), [top.set(base.get()), last.set(cg.size(NONE)), cg.ret(zero())])] : []),
            ]
          : [cg.ret(zero())],
      ),
      ...markDirty(),
      // Debug: a shrink gives the tail back; a growth takes memory freed earlier again.
      ...(debug
        ? [
            cg.when(
              cg.ltU(cg.add(ptr.get(), size.get()), top.get()),
              giveBack(cg.add(ptr.get(), size.get())),
              takeAgain(top.get, () => cg.sub(cg.add(ptr.get(), size.get()), top.get())),
            ),
          ]
        : []),
      top.set(cg.add(ptr.get(), size.get())),
      ...(high ? [high.set(cg.maxU(high.get(), top.get(), high.get(), top.get()))] : []),
      ptr.get(),
    ];
  });

  const reset = cg.function(scope("reset"), [], "none", () => [
    ...markDirty(),
    ...giveBack(start ? start.get() : cg.size(origin)),
    ...(live ? [live.set(zero())] : []),
    top.set(start ? start.get() : cg.size(origin)),
    last.set(cg.size(NONE)),
  ]);

  const base = () => (start ? start.get() : cg.size(origin));
  /** The statistics: the blocks since the last reset, and the rest of the region free. */
  const report = (vars: StatVars): Expr[] => [
    vars.usedBytes.set(cg.sub(top.get(), base())),
    vars.usedBlocks.set(live!.get()),
    vars.freeBytes.set(cg.sub(end(), top.get())),
    vars.freeBlocks.set(cg.fromBool(cg.ne(end(), top.get()))),
    vars.largestFree.set(cg.sub(end(), top.get())),
  ];
  // Stats builds: the walker without the checks.
  const walk = stats && cg.function(scope("walk"), [], "none", () => report(stats.vars));
  // Debug: the walker checks the region's bounds and reports the blocks since the last reset.
  const check =
    debug &&
    cg.function(scope("check"), [], "none", () => {
      return [
        debug.failIf(
          m.i32.or(cg.gtU(base(), top.get()), cg.gtU(top.get(), end())),
          "corrupt-heap",
          "the top of the heap is outside its region",
          top.get(),
        ),
        debug.failIf(
          m.i32.and(cg.ne(last.get(), cg.size(NONE)), m.i32.or(cg.ltU(last.get(), base()), cg.gtU(last.get(), top.get()))),
          "corrupt-heap",
          "the latest block is outside the used part of the region",
          last.get(),
        ),
        // What was taken back must still be poison (or never written: 0).
        cg.when(cg.ltU(top.get(), high!.get()), [
          debug.checkPoison(top.get(), cg.sub(high!.get(), top.get()), "bump memory freed earlier was written to", true),
        ]),
        ...report(debug.stats),
      ];
    });

  return {
    alloc,
    allocFixed,
    free,
    // (The debug free reports addresses below the heap, 0 included: the C API filters free(0).)
    freeAcceptsNull: !debug,
    resize,
    // (Debug builds poison only memory below the mark: it holds there too.)
    ...(requested.has("calloc") && {
      fresh: cg.function(scope("fresh"), [], "usize", () => cg.maxU(top.get(), dirty.get(), top.get(), dirty.get())),
    }),
    extras: { reset },
    ...(check && { check }),
    ...(walk && { walk }),
  };
}
