import {
  AllocConfigError,
  PAGE_SHIFT,
  PAGE_SIZE,
  type AllocatorFunctions,
  type EmitContext,
  type Expr,
  type Parent,
  type StatVars,
  type Strategy,
  type Var,
} from "@alloc/core";

/**
 * The page strategy (lol_alloc's LeakingPageAllocator): every block gets fresh pages of its own
 * from the page backend, `ceil(size / 64 KiB)` of them, and they are never used again.
 *
 * ```text
 *   allocPages(3)            allocPages(1)     allocPages(1)
 *   | block a (130 KiB)    | | block b (10 B) | | block c (freed: leaked) | ...
 *   +----------------------+ +----------------+ +-------------------------+
 *   ^ 64 KiB aligned         ^                  ^  every block starts a page
 * ```
 *
 * No state at all in a release build: `alloc` is one call to the backend, `free` does nothing.
 * Every block is 64 KiB aligned (so every alignment `alloc` may be asked for is honoured), its
 * memory fresh from the backend (zero: calloc never clears anything), and a block allocated later
 * lies above every earlier one (backends hand out pages upwards), which is what lets realloc copy
 * without knowing the old block's size. `alloc(0)` asks for 65536 pages (`size - 1` wraps), which
 * no backend grants: it returns 0, as C allows.
 *
 * `resize` keeps a block in place up to 64 KiB (its first page is always its own, whatever size it
 * was given); a larger realloc moves it to fresh pages, copying the new size from the old block
 * (in bounds: the new block lies above it). The old pages are not reused.
 *
 * Debug builds count live blocks and pages, and `free` checks what it can without a record of
 * each block: the pointer is 64 KiB aligned and inside the pages handed out, and there are not
 * more frees than allocations; the first page of a freed block is poisoned (a read after free sees
 * 0xdd). A second free of a block is caught only when it makes frees outnumber allocations.
 */
export function page(): Strategy {
  return { name: "page", accepts: ["pages"], emit: emitPage };
}

function emitPage({ cg, scope, debug, stats }: EmitContext, parent: Parent): AllocatorFunctions {
  if (parent.kind !== "pages") throw new AllocConfigError("page: needs a page backend below it");
  const { allocPages } = parent.pages;
  const zero = () => cg.size(0);
  /**
   * Pages for a block of `size` bytes: `((size - 1) >> 16) + 1`, ceil(size / 64 KiB) for
   * size >= 1, and 65536 (more than any backend grants) for size 0.
   */
  const pagesFor = (size: Expr) => cg.add(cg.shrU(cg.sub(size, cg.size(1)), cg.size(PAGE_SHIFT)), cg.size(1));
  /**
   * Debug builds: `floor`, the lowest block handed out (-1 before the first); `end`, the end of
   * the highest pages handed out; `live`, blocks allocated and not freed; `pages`, pages handed out.
   */
  const dbg = debug && {
    floor: cg.global(scope("debug/floor"), -1),
    end: cg.global(scope("debug/end")),
    live: cg.global(scope("debug/live")),
    pages: cg.global(scope("debug/pages")),
  };
  /** Release builds with heap statistics: the same two counters (`stats` in @alloc/core). */
  const st = !dbg && stats && { live: cg.global(scope("stats/live")), pages: cg.global(scope("stats/pages")) };
  const counts = dbg || st;
  /** The statistics: every page handed out is used (freed blocks' pages are never reused), nothing free. */
  const report = (vars: StatVars, c: { live: Var; pages: Var }): Expr[] => [
    vars.usedBytes.set(cg.shl(c.pages.get(), cg.size(PAGE_SHIFT))),
    vars.usedBlocks.set(c.live.get()),
    vars.freeBytes.set(zero()),
    vars.freeBlocks.set(zero()),
    vars.largestFree.set(zero()),
  ];

  const alloc = cg.function(scope("alloc"), ["size", "align"], "usize", (f) => {
    const size = f.param("size");
    if (!counts) return cg.call(allocPages, [pagesFor(size.get())]);
    const p = f.local(), pages = f.local();
    return [
      cg.when(p.tee(cg.call(allocPages, [pages.tee(pagesFor(size.get()))])), [
        counts.live.set(cg.add(counts.live.get(), cg.size(1))),
        counts.pages.set(cg.add(counts.pages.get(), pages.get())),
        ...(dbg
          ? [
              dbg.floor.set(cg.select(cg.ltU(p.get(), dbg.floor.get()), p.get(), dbg.floor.get())),
              dbg.end.set(cg.add(p.get(), cg.shl(pages.get(), cg.size(PAGE_SHIFT)))),
            ]
          : []),
      ]),
      p.get(),
    ];
  });

  const free = cg.function(scope("free"), ["ptr"], "none", (f) => {
    const ptr = f.param("ptr");
    // Stats builds: one block fewer (free(0) reaches here: nothing to count).
    if (st) return cg.when(cg.ne(ptr.get(), zero()), [st.live.set(cg.sub(st.live.get(), cg.size(1)))]);
    if (!debug || !dbg) return cg.module.nop();
    return [
      debug.failIf(cg.and(ptr.get(), cg.size(PAGE_SIZE - 1)), "invalid-pointer", "not an address page returns (not 64 KiB aligned)", ptr.get()),
      debug.failIf(
        cg.module.i32.or(cg.ltU(ptr.get(), dbg.floor.get()), cg.geU(ptr.get(), dbg.end.get())),
        "invalid-pointer",
        "outside the pages page handed out",
        ptr.get(),
      ),
      debug.failIf(cg.eqz(dbg.live.get()), "double-free", "more frees than allocations: a block was freed twice", ptr.get()),
      dbg.live.set(cg.sub(dbg.live.get(), cg.size(1))),
      // Its first page is the block's for ever: poison it, so that a read after free shows.
      debug.poison(ptr.get(), cg.size(PAGE_SIZE)),
    ];
  });

  // In place up to a page: the first page of every block is its own.
  const resize = cg.function(scope("resize"), ["ptr", "size"], "usize", (f) =>
    cg.select(cg.leU(f.param("size").get(), cg.size(PAGE_SIZE)), f.param("ptr").get(), zero()),
  );

  // Debug: the walker reports every page handed out as used (freed blocks' pages are never
  // reused) and nothing free.
  const check =
    debug &&
    dbg &&
    cg.function(scope("check"), [], "none", () => [
      debug.failIf(
        cg.gtU(cg.shl(dbg.pages.get(), cg.size(PAGE_SHIFT)), cg.sub(dbg.end.get(), dbg.floor.get())),
        "corrupt-heap",
        "more pages handed out than lie between the first block and the end of the last",
        dbg.floor.get(),
      ),
      ...report(debug.stats, dbg),
    ]);
  // Stats builds: the walker without the check.
  const walk = st && stats && cg.function(scope("walk"), [], "none", () => report(stats.vars, st));

  return {
    alloc,
    free,
    // (The debug free reports every address outside the heap, 0 included: the C API filters free(0).)
    freeAcceptsNull: !debug,
    allocAcceptsSmallAlign: true,
    resize,
    // Fresh pages, never handed out twice: already zero.
    allocZeroes: true,
    ...(check && { check }),
    ...(walk && { walk }),
  };
}
