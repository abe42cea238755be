import {
  AllocConfigError,
  allocEntries,
  cellLayout,
  check,
  PAGE_SHIFT,
  PAGE_SIZE,
  type AllocatorFunctions,
  type Codegen,
  type ContiguousRun,
  type EmitContext,
  type Expr,
  type FunctionScope,
  type Local,
  type Parent,
  type Strategy,
  type Var,
} from "@alloc/core";
import { FreeListDebug, type ListCheck } from "./debug.ts";
import { FreeListWalker } from "./walk.ts";

export interface FreeListOptions {
  /**
   * How `alloc` finds a free cell.
   * - "bins" (default): two-level segregated fit (TLSF): free cells in bins 12.5 % apart in
   *   size, two bitmaps over the bins; `alloc`, `free` and `realloc` take a bounded number of
   *   steps whatever the heap's history (no walk). The region's free tail (the top) is used only
   *   when no binned cell fits, so memory grows only when no free cell could serve.
   * - "first": one free list, oldest free cell first; the first cell that fits wins. About 150
   *   bytes smaller, but a request walks every free cell in front of the first that fits: work
   *   grows with the number of free cells (unbounded). For tiny modules with few live blocks.
   */
  readonly fit?: Fit;
}

type Fit = "first" | "bins";

/**
 * A general-purpose free list of cells with two-word headers (the layout and its invariants are
 * drawn in `@alloc/core`'s `cell.ts`): splitting, coalescing with both neighbours, any
 * power-of-two alignment up to 64 KiB.
 *
 * ```text
 *   a region of pages from the backend
 *   +--------+-------------+--------+------------------------------+-----+
 *   | used   | free        | used   | free: the "wilderness"       | end |
 *   +--------+-------------+--------+------------------------------+-----+
 *              ^                      ^                               ^ `last`
 *   head ----> free cell <----------> free cell <-> ... <---- tail   (links in the payloads)
 * ```
 *
 * - `alloc(size, align)`: a free cell with room is taken off its list (see
 *   {@link FreeListOptions.fit}); when no listed cell has room, the top (the free tail of the
 *   newest region) is used, grown by pages from the backend for what it lacks. What lies behind the
 *   block is split off as a free cell when it can hold one. Alignments above the granule (8 bytes)
 *   take `align + 8` bytes more and free the gap in front of the aligned block.
 * - `free(ptr)`: O(1). A free previous neighbour absorbs the cell (with first fit it keeps its
 *   place on the list), otherwise the cell joins its list (first fit: at the tail); a free next
 *   neighbour is unlinked and absorbed. With bins, a free cell that ends at the region's end is
 *   the top, on no list.
 * - `resize(ptr, size)`: shrinking splits off the tail; growing absorbs a free next neighbour
 *   (the top included), and, when the block is the last of the newest region and no listed free
 *   cell could hold it, pages that follow it. Otherwise it fails and realloc moves the block. A
 *   grow that fails all the same leaves the block with its neighbour absorbed: larger, contents
 *   intact.
 * - `usableSize(ptr)`: the payload size, read from the header.
 *
 * Memory follows live bytes: the backend is asked for pages only when no free cell can serve
 * (bins: none in a bin whose every cell fits, nor among the first cells of the request's own bin), free
 * neighbours always merge, and pages that follow the region extend its top, so that only what
 * the top lacks is asked for.
 *
 * State: the list's head and tail (or the bin table and bitmaps) and `last`, the newest region's
 * end sentinel. With first fit in a module that owns its memory, the head and tail are the words
 * at 8 and 12 (see `firstFitLists`), and the heap starts at 16; with bins, the table starts at 8.
 */
export function freeList(options: FreeListOptions = {}): Strategy {
  const fit = options.fit ?? "bins";
  check(fit === "first" || fit === "bins", `free-list: fit must be "first" or "bins", got ${JSON.stringify(fit)}`);
  return {
    name: "free-list",
    accepts: ["pages"],
    emit: (ctx, parent) => emitFreeList(ctx, parent, fit),
  };
}

/** The free lists, as seen by the rest of the strategy. */
interface Lists {
  /**
   * Removes free cell `c` from its list; returns its end. Its word 0 still says FREE: the caller
   * marks it allocated, or merges it into a neighbour.
   */
  unlink(c: Expr): Expr;
  /** Puts free cell `c`, its size final, on its list. */
  push(c: Expr): Expr;
  /**
   * Bins: an i32 condition, true when free cells of `a` and `b` bytes (a <= b) go on the same list; and
   * `replace(r, c)`, which puts free cell `c` in listed cell `r`'s place (r is then on no list).
   */
  readonly sameList?: (f: FunctionScope, a: Expr, b: Expr) => Expr;
  replace?(r: Local, c: Local): Expr[];
  /** True when a cell whose size changes must move to another list (bins). */
  readonly rebin: boolean;
  /**
   * True when the top, the free cell in front of the newest region's end sentinel, is kept off
   * the lists (bins): it is used only when no listed cell fits, like dlmalloc's top chunk, so
   * that the heap grows only when no free cell could serve. With one list (first fit) the top
   * is on the list like any free cell.
   */
  readonly top: boolean;
  /** Bytes the first region reserves for the list heads (the bin table), 0 for one list. */
  readonly tableBytes: number;
  /**
   * Where the table goes when its address is only known at run time: statements that place it
   * at the start of the first region `base` and move `base` past it. Absent for one list, and
   * when the table's address is a constant (the start of a contiguous run).
   */
  placeTable?(base: Local): Expr[];
  /**
   * The body of `find(n) -> usize` in `f`: a listed free cell of `n` bytes or more (header
   * included; minCell <= n < 2^32), or 0.
   */
  find(f: FunctionScope, n: Local): Expr[];
  /**
   * `find`'s body never returns early, so speed builds emit it at each call site (a block):
   * Binaryen inlines no function with a loop.
   */
  readonly findInline?: boolean;
  /** Debug builds: the walker's check of the lists (see `debug.ts`). */
  verify(check: ListCheck): Expr[];
}

function emitFreeList(ctx: EmitContext, parent: Parent, fit: Fit): AllocatorFunctions {
  if (parent.kind !== "pages") throw new AllocConfigError("free-list: needs a page backend below it");
  const { cg, scope } = ctx;
  const m = cg.module;
  const L = cellLayout(cg);
  const { header: H, minCell, maxRequest } = L;
  const { allocPages, run } = parent.pages;
  const zero = () => cg.size(0);

  /**
   * The granule G: every cell's size is a multiple of it, and every cell starts G - H past a
   * multiple of it, so that every payload is G-aligned. It is the header's size (H, 8 bytes on
   * wasm32) unless the build's minAlign is 2H (16 on wasm32: wasi-libc's and most C ABIs'
   * max_align_t, what `alloc swap` asks for): then G = 2H and malloc needs no alignment gap.
   * (With 8-byte granules under a 16-byte minAlign, every request of 9-16, 25-32 ... bytes left
   * the next cell misaligned: the next malloc searched for 24 more bytes and split a gap off the
   * front, so a 16-byte request took 48 bytes and twice the list work.) Cells tile a region
   * from its first cell, so only region starts need placing: `lead(a)` is the padding that
   * puts a cell that would start at `a` on the granule's grid.
   */
  const G = ctx.limits.minAlign === 2 * H ? 2 * H : H;
  /** Speed builds (see `EmitContext.goal`): fast paths that cost bytes. */
  const speed = ctx.goal === "speed";
  /** Debug and stats builds: the heap walker and its region records (`walk.ts`). */
  const walker = (ctx.debug || ctx.stats) && new FreeListWalker({ cg, scope, L, run, granule: G });
  /** Debug builds only: poisoning, pointer checks and the walker's checks (`debug.ts`). */
  const dbg = ctx.debug && walker && new FreeListDebug({ cg, debug: ctx.debug, scope, L, run, walker });
  /** Pads a cell that would start at `a` onto the granule's grid (see G above). */
  const lead = (a: number) => (((G - H - a) % G) + G) % G;
  const lists = fit === "first" ? firstFitLists(ctx, run, dbg) : binLists(ctx, run?.start, dbg, G);
  /** The bytes before a contiguous run's first cell: the list heads (bins) and the padding. */
  const tableBytes = lists.tableBytes + (run ? lead(run.start + lists.tableBytes) : 0);
  /** Padding at the start of every region of pages (not a run): after the table and record. */
  const regionLead = run ? 0 : lead(walker ? walker.regionRecordBytes : 0);
  /** The bytes of a cell for a request of `size` (1 to maxRequest): header and size, rounded up to G. */
  const cellBytes = (size: Expr) => (G === H ? L.cellBytes(size) : cg.alignUpConst(cg.add(size, cg.size(H)), G));
  /**
   * The newest region's end sentinel; 0 before the first region. Over a contiguous run, the one
   * region starts at run.start (after the bin table) and its end sentinel is there before the
   * first refill: a cell of no size. A region's first cell is its own prev with no store (word 1
   * is 0), so nothing needs initialising.
   */
  const last = cg.global(scope("last"), run ? run.start + tableBytes : 0);
  walker?.bind(tableBytes);
  dbg?.bind(tableBytes);
  /**
   * The fresh mark, for calloc (see `AllocatorFunctions.fresh`): every byte of the top's payload
   * at or above it is zero. Every block handed out raises it past the block and the header cut
   * behind it (a no-op unless the block came from the top: every other cell lies below it), so
   * that blocks freed into the top, and the top's old header they absorb, lie below it; the
   * top's growth clears the one word of the old end sentinel it takes in. Only with bins (with
   * one list the top holds links in its payload), only in release builds (debug builds poison
   * freed and grown memory), and only when calloc reads it.
   */
  const fresh = lists.top && !dbg && ctx.requested.has("calloc") ? cg.global(scope("fresh")) : undefined;

  // top() -> the free cell in front of `last` (the region's free tail, "top"), or `last` itself
  // when that cell is allocated (or there is no region yet: 0, or a run whose memory is not there).
  const top = cg.function(scope("top"), [], "usize", (f) => {
    const t = f.local();
    // (select evaluates its arms before the condition: the tee comes first.)
    const pick = dbg
      ? cg.block([t.set(L.prevOf(last.get(), last.get())), ...dbg.topChecked(t), cg.select(L.isFree(t.get()), t.get(), last.get())])
      : cg.select(L.isFree(t.get()), t.tee(L.prevOf(last.get(), last.get())), last.get());
    // Before the first region nothing may be read at `last`: it is 0 (no run), or a run's start
    // past the memory that exists (a run that starts on a page boundary).
    if (!run) return cg.if(last.get(), pick, zero());
    if (run.start % PAGE_SIZE === 0) return m.if(cg.gtU(run.end(), last.get()), pick, last.get());
    return pick;
  });
  const topCell = () => cg.call(top, []);

  // take(c) -> end of c: takes free cell c off its list, or, when it is the top (bins), nothing
  // to take it from.
  const take = lists.top
    ? (() => {
        const name = cg.function(scope("take"), ["c"], "usize", (f) => {
          const c = f.param("c"), e = f.local();
          return m.if(cg.eq(e.tee(L.nextOfFree(c.get())), last.get()), e.get(), lists.unlink(c.get()));
        });
        return (c: Expr) => cg.call(name, [c]);
      })()
    : (c: Expr) => lists.unlink(c);

  // release(c, end) -> end of the free cell: frees cell c, which ends at `end`, merging with both
  // neighbours, O(1). Its word 0 is not read: a cell just cut off needs only its prev.
  const release = cg.function(scope("release"), ["c", "end"], "usize", (f) => {
    const c = f.param("c"), end = f.param("end");
    const pv = f.local();
    const next = f.label("next");
    return [
      ...(dbg ? dbg.releaseStart(f, c, end) : []),
      // A free previous neighbour absorbs this cell: with one list it keeps its place there;
      // with bins it changes size class, so it leaves its list to be pushed again below. (It is
      // never the top: its end is c, a cell.)
      lists.rebin
        ? cg.when(L.isFree(pv.tee(L.prevOf(c.get(), c.get()))), [cg.drop(lists.unlink(pv.get())), c.set(pv.get())])
        : cg.when(L.isFree(pv.tee(L.prevOf(c.get(), c.get()))), [c.set(pv.get())], [lists.push(c.get())]),
      // The cell behind points back; a free one is absorbed, and the one behind it points back
      // (free cells never touch: once at most). The store comes before the test: the cell
      // behind may be the end sentinel of pages just grown, and a page written first is
      // mapped once, where a page read first is mapped twice (zero page, then a copy on write).
      m.loop(
        next,
        cg.block([
          L.setPrev(end.get(), end.get(), c.get()),
          cg.when(L.isFree(end.get()), [end.set(take(end.get())), m.br(next)]),
        ]),
      ),
      ...(dbg ? dbg.releasePoison(c, end) : []),
      L.setFree(c.get(), end.get()),
      // With bins, a cell that ends at the region's end is the top, on no list.
      ...(lists.rebin ? [lists.top ? cg.when(cg.ne(end.get(), last.get()), [lists.push(c.get())]) : lists.push(c.get())] : []),
      end.get(),
    ];
  });
  const free = cg.function(scope("free"), ["ptr"], "none", (f) => {
    const c = f.local();
    return [
      ...(dbg ? dbg.checkFree(f, f.param("ptr")) : []),
      cg.drop(cg.call(release, [c.tee(L.cellOf(f.param("ptr").get())), L.word0(c.get())])),
    ];
  });

  /**
   * Cell c, allocated, now ends at `cut`; [cut, end) becomes a free cell with no free neighbour.
   * Its headers only: the caller lists it (or leaves it the top, when end is `last`).
   */
  const cutFree = (c: () => Expr, cut: () => Expr, end: () => Expr) => [
    L.setPrev(cut(), cut(), c()),
    L.setUsed(c(), cut()),
    L.setPrev(end(), end(), cut()),
    L.setFree(cut(), end()),
  ];

  // trim(c, cut) -> payload of c: allocated cell c ends at `cut` (a granule multiple inside it)
  // when what lies behind can be a cell of its own, which is freed. It has no free neighbour to
  // merge with: c is allocated, and the cell behind c is not free (c was a free cell, or resize
  // absorbed its free next neighbour), so speed builds skip release's merging (size builds call
  // release, which is there anyway: 26 bytes less; debug builds too, to poison the cell).
  // Returning the payload saves the callers that hand the block out a read of it. Every block
  // handed out (by alloc and resize) passes here last: the fresh mark rises past its end and the
  // header there (that of the cell cut behind it, or the end sentinel's when the block ends at
  // `last`).
  const trim = cg.function(scope("trim"), ["c", "cut"], "usize", (f) => {
    const c = f.param("c"), cut = f.param("cut");
    const end = f.local();
    return [
      cg.when(cg.geU(cg.sub(end.tee(L.word0(c.get())), cut.get()), cg.size(minCell)), [
        ...(dbg || !speed
          ? [L.setPrev(cut.get(), cut.get(), c.get()), L.setUsed(c.get(), cut.get()), cg.drop(cg.call(release, [cut.get(), end.get()]))]
          : [
              ...cutFree(c.get, cut.get, end.get),
              // (With bins, a cell that ends at the region's end is the top, on no list.)
              lists.top ? cg.when(cg.ne(end.get(), last.get()), [lists.push(cut.get())]) : lists.push(cut.get()),
            ]),
        ...(fresh ? [end.set(cut.get())] : []),
      ]),
      ...(fresh ? [end.set(cg.add(end.get(), cg.size(H))), fresh.set(cg.maxU(fresh.get(), end.get(), fresh.get(), end.get()))] : []),
      L.payloadOf(c.get()),
    ];
  });

  // refill(n) -> the top: makes the top a free cell of at least n bytes (header included), with pages
  // from the backend for what it lacks; 0 when the backend refuses. Pages that follow the region
  // extend the top (or, when the region's last cell is allocated, the old end sentinel becomes
  // the new free cell); pages elsewhere start a region of their own (its first cell is its own
  // prev: word 1 is 0), and the old top joins the lists. Called only when no listed cell fits.
  const overhead = H + lists.tableBytes + (walker ? walker.regionRecordBytes : 0) + regionLead;
  const refill = cg.function(scope("refill"), ["n"], "usize", (f) => {
    const n = f.param("n");
    const t = f.local(), e = f.local(), from = f.local();
    /** The top [t, e) becomes one free cell and e the end sentinel (word 0 already 0: fresh memory). */
    const finish = [
      ...(dbg ? [from.set(last.get()), ...dbg.grownPoison(t, from, e)] : []),
      // A free top that grew now holds the old end sentinel, whose prev word is not zero: it is
      // cleared, so that fresh memory stays zero above the mark. (When the top was allocated,
      // the old end sentinel becomes the new top's header instead. When nothing grew, e is the
      // old end sentinel, and the next store writes its prev word again.)
      ...(fresh ? [cg.when(cg.ne(t.get(), last.get()), [cg.store(last.get(), zero(), L.word)])] : []),
      L.setFree(t.get(), e.get()),
      L.setPrev(e.get(), e.get(), t.get()),
      // With one list, a new cell joins it; a grown one is on it already.
      ...(lists.top ? [] : [cg.when(cg.eq(t.get(), last.get()), [lists.push(t.get())])]),
      last.set(e.get()),
      t.get(),
    ];
    if (run) {
      // One region, [run.start, run.end()), which may hold memory before the first call (page 0
      // of a module's own memory). The top and the end sentinel need n + H bytes from t on; when
      // the run lacks some (n + H > room), ceil(lack / 64 KiB) = ((n + H - 1 - room) >> 16) + 1.
      // Both sides count the bin table too when the run can still be empty (room would be
      // negative: before the first call `last` is past the table). A run that starts inside a
      // page holds the rest of that page from the start.
      const room = f.local(), need = f.local(), base = f.local(), before = f.local();
      const tableSlack = run.start % PAGE_SIZE ? 0 : tableBytes;
      const retry = f.label("refill");
      return m.loop(retry, cg.block([
        t.set(topCell()),
        cg.when(
          cg.geU(
            need.tee(cg.add(n.get(), cg.size(H - 1 + tableSlack))),
            room.tee(cg.sub(before.tee(run.end()), cg.sub(t.get(), cg.size(tableSlack)))),
          ),
          [
            cg.returnIf(
              cg.eqz(base.tee(cg.call(run.extend, [cg.add(cg.shrU(cg.sub(need.get(), room.get()), cg.size(PAGE_SHIFT)), cg.size(1))]))),
              zero(),
            ),
            // Pages after memory that is not ours (the host grew it too): the end sentinel becomes
            // a fence, an allocated cell over that memory that is never freed, and the pages start
            // afresh (the old top joins the lists). Then there may be too little room: again.
            ...(run.gaps
              ? [
                  cg.when(cg.ne(base.get(), before.get()), [
                    ...(lead(0) ? [base.set(cg.add(base.get(), cg.size(lead(0))))] : []),
                    L.setUsed(last.get(), base.get()),
                    L.setPrev(base.get(), base.get(), last.get()),
                    ...(lists.top ? [cg.when(cg.ne(t.get(), last.get()), [lists.push(t.get())])] : []),
                    last.set(base.get()),
                    m.br(retry),
                  ]),
                ]
              : []),
          ],
        ),
        e.set(cg.sub(run.end(), cg.size(H))),
        ...finish,
      ]));
    }
    const pages = f.local(), base = f.local();
    const retry = f.label("refill");
    return m.loop(retry, cg.block([
      // The top holds n now (pages that did not follow the region may have made a top too small).
      cg.returnIf(cg.geU(cg.sub(last.get(), t.tee(topCell())), n.get()), t.get()),
      // ceil((n + overhead - top bytes) / 64 KiB): pages that follow the region need only what
      // the top lacks (the top is smaller than n, so this is positive).
      pages.set(cg.add(cg.shrU(cg.sub(cg.add(n.get(), cg.size(overhead - 1)), cg.sub(last.get(), t.get())), cg.size(PAGE_SHIFT)), cg.size(1))),
      cg.returnIf(cg.eqz(base.tee(cg.call(allocPages, [pages.get()]))), zero()),
      ...(dbg ? dbg.newPages(base, pages) : []),
      e.set(cg.sub(cg.add(base.get(), cg.shl(pages.get(), cg.size(PAGE_SHIFT))), cg.size(H))),
      cg.when(cg.ne(L.cellOf(base.get()), last.get()), [
        // With bins, the old top joins the lists (with one list it is on it already).
        ...(lists.top ? [cg.when(cg.ne(t.get(), last.get()), [lists.push(t.get())])] : []),
        ...(lists.placeTable?.(base) ?? []),
        ...(walker ? walker.newRegion(base) : []),
        ...(regionLead ? [base.set(cg.add(base.get(), cg.size(regionLead)))] : []),
        last.set(t.tee(base.get())),
      ]),
      ...finish.slice(0, -1),
      m.br(retry),
    ]));
  });

  // find(n): the lists' search, in one function that alloc and resize call; in speed builds,
  // emitted at both sites when it can be (see Lists.findInline).
  const findFn = cg.function(scope("find"), ["n"], "usize", (f) => lists.find(f, f.param("n")));
  const find = (f: FunctionScope, n: Local) => (lists.findInline ? cg.block(lists.find(f, n)) : cg.call(findFn, [n.get()]));

  /**
   * alloc(size, align), for `align` an expression (a parameter, or a constant in allocFixed):
   * a listed free cell of `n` bytes or more (n: the size rounded up to the granule, plus the
   * header), else the top, grown when it lacks room, is taken and cut to size; 0 when the backend
   * refuses.
   */
  const allocBody = (f: FunctionScope, size: Local, align: () => Expr, alignConst?: number): Expr[] => {
    const n = f.local(), c = f.local(), q = f.local(), mask = f.local(), end = f.local(), cut = f.local();
    // Payloads are granule aligned: a larger alignment needs room for a gap of at least a cell
    // in front of the aligned address, so that the gap can be freed: the search is for `u`.
    const aligned = alignConst === undefined || alignConst > G;
    const u = aligned ? f.local() : n;
    // At most align + H; none for an alignment of H or less. For every alignment of H or more that
    // is align ^ H (a power of two above H has no H bit: the xor adds it; H ^ H is 0). The smaller
    // ones aligned_alloc may pass (see allocAcceptsSmallAlign) get align + H: the search then asks
    // for up to 15 bytes more than the block needs (the block itself is cut to size all the same).
    // On a 2H grid (G > H), alignments up to G need no gap: every payload is G-aligned.
    /** Speed builds' carving: an i32 condition, true when block c needs no gap in front. */
    const alignedOk = () => (aligned ? cg.eqz(nonZero(cg, cg.and(L.payloadOf(c.get()), cg.sub(align(), cg.size(1))))) : cg.i32(1));
    const gap =
      alignConst !== undefined
        ? cg.size(alignConst + minCell - H)
        : G > H
          ? cg.select(cg.gtU(align(), cg.size(G)), cg.xor(align(), cg.size(H)), zero())
          : ctx.limits.minAlign >= H
            ? cg.xor(align(), cg.size(H))
            : cg.select(cg.gtU(align(), cg.size(H)), cg.add(align(), cg.size(minCell - H)), zero());
    return [
      // Impossible sizes (and 0) return 0 here, and past this nothing can overflow.
      ...(G === H
        ? [cg.returnIf(L.refused(n.tee(L.cellBytes(size.get()))), zero())]
        : [cg.returnIf(cg.geU(cg.sub(size.get(), cg.size(1)), cg.size(maxRequest)), zero()), n.set(cellBytes(size.get()))]),
      ...(aligned ? [u.set(cg.add(n.get(), gap))] : []),
      // (refill returns the top, which holds u now.)
      cg.when(cg.eqz(c.tee(find(f, u))), [
        ...(speed
          ? [
              // Speed builds: a top that holds the block and a cell after it is cut here, without
              // refill, trim and release (the top's rest has no free neighbour; the fresh mark
              // rises past the block and the rest's header).
              cg.when(
                m.i32.and(cg.geU(cg.sub(last.get(), c.tee(topCell())), cg.add(n.get(), cg.size(minCell))), alignedOk()),
                [
                  ...(dbg ? dbg.taken(c, u) : []),
                  cut.set(cg.add(c.get(), n.get())),
                  ...cutFree(c.get, cut.get, last.get),
                  ...(fresh ? [end.set(cg.add(cut.get(), cg.size(H))), fresh.set(cg.maxU(fresh.get(), end.get(), fresh.get(), end.get()))] : []),
                  cg.ret(L.payloadOf(c.get())),
                ],
              ),
            ]
          : []),
        cg.returnIf(cg.eqz(c.tee(cg.call(refill, [u.get()]))), zero()),
      ]),
      ...(speed && lists.replace && lists.sameList
        ? [
            // Speed builds: a listed cell whose rest after the block stays in its bin is carved in
            // place: the rest takes the cell's list place, with no unlink and push (in effect
            // dlmalloc's designated victim: successive requests carve one cell from the front).
            // The rest has no free neighbour (see trim), and the cell is not the top: the fresh
            // mark lies above it. (This is take(c), with the carving inside.)
            cg.when(cg.ne(end.tee(L.nextOfFree(c.get())), last.get()), [
              m.if(
                cg.geU(cg.sub(end.get(), cut.tee(cg.add(c.get(), n.get()))), cg.size(minCell)),
                cg.when(m.i32.and(lists.sameList(f, cg.sub(end.get(), cut.get()), cg.sub(end.get(), c.get())), alignedOk()), [
                  ...(dbg ? dbg.taken(c, u) : []),
                  ...lists.replace(c, cut),
                  ...cutFree(c.get, cut.get, end.get),
                  cg.ret(L.payloadOf(c.get())),
                ]),
                // A listed cell with no rest to cut (and no gap to free) is handed out as it is:
                // trim would leave it whole, and the fresh mark lies above it.
                cg.when(alignedOk(), [
                  ...(dbg ? dbg.taken(c, u) : []),
                  cg.drop(lists.unlink(c.get())),
                  L.setUsed(c.get(), end.get()),
                  cg.ret(L.payloadOf(c.get())),
                ]),
              ),
              cg.drop(lists.unlink(c.get())),
            ]),
            L.setUsed(c.get(), end.get()),
          ]
        : [L.setUsed(c.get(), take(c.get()))]),
      ...(dbg ? dbg.taken(c, u) : []),
      ...(aligned
        ? [
            cg.when(cg.and(L.payloadOf(c.get()), mask.tee(cg.sub(align(), cg.size(1)))), [
              // The aligned block gets a cell q of its own (split off, and taken back from the
              // free list); the gap [c, q) in front is freed. Its payload is the first aligned
              // address a cell or more past c's: ((c + H + minCell - 1) | mask) + 1.
              q.set(cg.sub(cg.or(cg.add(c.get(), cg.size(H + minCell - 1)), mask.get()), cg.size(H - 1))),
              cg.drop(cg.call(trim, [c.get(), q.get()])),
              L.setUsed(q.get(), take(q.get())),
              // (release returns the end of the free cell it made: q.)
              c.set(cg.call(release, [c.get(), q.get()])),
            ]),
          ]
        : []),
      cg.call(trim, [c.get(), cg.add(c.get(), n.get())]),
    ];
  };
  const { alloc, allocFixed } = allocEntries({ cg, scope }, allocBody);

  // resize(ptr, size): a free next neighbour is absorbed first (a block that then still cannot
  // grow keeps it: it is the caller's, contents intact, only larger), then the block is cut to size.
  // (`size` is compared as it is: the block's usable size is a granule multiple.)
  const resize = cg.function(scope("resize"), ["ptr", "size"], "usize", (f) => {
    const ptr = f.param("ptr"), size = f.param("size");
    const c = f.local(), end = f.local(), need = f.local();
    const grow = f.label("grow");
    return [
      ...(dbg ? [dbg.checkLive("realloc", ptr.get())] : []),
      c.set(L.cellOf(ptr.get())),
      m.loop(grow, cg.block([
        // There is at most one free neighbour to absorb: free cells never touch.
        cg.when(L.isFree(end.tee(L.word0(c.get()))), [
          ...(dbg ? dbg.absorbed(end) : []),
          L.setUsed(c.get(), end.tee(take(end.get()))),
          L.setPrev(end.get(), end.get(), c.get()),
        ]),
        cg.when(cg.gtU(size.get(), cg.sub(end.get(), ptr.get())), [
          // Too small. When nothing follows but the newest region's end, and no listed free cell
          // could take the block instead (memory grows only when no free cell fits), pages that
          // follow it become a free neighbour of the shortfall or more (both granule multiples once
          // the size is rounded up), and the block absorbs it. Otherwise realloc moves the block.
          // (Impossible sizes, over maxRequest, are refused here.)
          cg.when(m.i32.and(cg.eq(end.get(), last.get()), cg.leU(size.get(), cg.size(maxRequest))), [
            need.set(cellBytes(size.get())),
            cg.when(cg.eqz(find(f, need)), [
              m.br(grow, nonZero(cg, cg.call(refill, [cg.sub(size.get(), cg.sub(end.get(), ptr.get()))]))),
            ]),
          ]),
          cg.ret(zero()),
        ]),
      ])),
      // It fits: the cut, ptr + size rounded up to the granule, lies inside the block.
      cg.call(trim, [
        c.get(),
        G === H ? cg.alignUpConst(cg.add(ptr.get(), size.get()), H) : cg.sub(cg.alignUpConst(cg.add(ptr.get(), cg.add(size.get(), cg.size(H))), G), cg.size(H)),
      ]),
    ];
  });

  const usableSize = cg.function(scope("usable_size"), ["ptr"], "usize", (f) => {
    const ptr = f.param("ptr");
    const size = cg.sub(L.word0(L.cellOf(ptr.get())), ptr.get());
    return dbg ? [dbg.checkLive("usable", ptr.get()), size] : size;
  });

  const check = dbg && dbg.emitCheck((list) => [
    ...lists.verify(list),
    // The top is free and on no list (bins): the walker counted it among the free cells.
    ...(lists.top ? [cg.when(cg.ne(topCell(), last.get()), [list.listed.set(cg.add(list.listed.get(), cg.size(1)))])] : []),
  ]);

  // Stats builds: the walker without its checks.
  const walk = ctx.stats && walker && walker.emit("walk", ctx.stats.vars);

  // Every block is granule aligned: alignments below minAlign are as good as minAlign.
  const allocAcceptsSmallAlign = ctx.limits.minAlign <= H;
  const freshMark = fresh && cg.function(scope("fresh_mark"), [], "usize", () => fresh.get());
  return {
    ...{ alloc, allocFixed, free, resize, usableSize, shrinksInPlace: true, allocAcceptsSmallAlign },
    // A block's size is its cell's word 0 minus the payload: only alloc, resize and free of that
    // cell write word 0 (invariant 3 of core's cell.ts); a neighbour's merge writes word 1 only.
    usableSizeUnlocked: true,
    ...(freshMark && { fresh: freshMark }),
    ...(check && { check }),
    ...(walk && { walk }),
  };
}

/** An i32 condition: free cell `c` spans `n` bytes or more. */
const holds = (cg: Codegen, c: Local, n: Local) => cellLayout(cg).freeHolds(c.get(), c.get(), n.get());

/** A pointer-width value as an i32 condition. */
const nonZero = (cg: Codegen, x: Expr) => (cg.memory64 ? cg.ne(x, cg.size(0)) : x);

/**
 * First fit: one list, oldest free cell first (freed cells join at the tail), with its head and
 * tail in globals, null-terminated at both ends. Oldest first keeps small requests in old holes and
 * out of a large block freed a moment ago: with newest first, `realloc-growth` needs 20 times its
 * live bytes; with oldest first, 2.3 times (bins: 3.2).
 *
 * When the heap is a run that starts right after the null word (the grow backend in a module that
 * owns its memory), the head and tail are the links of a cell at address 0 instead: the words at 8
 * and 12, the run's first granule. The list is then a ring through cell 0, so that unlinking and
 * pushing need no branches (a cell's neighbour on the list is a real cell or cell 0 alike), and
 * its ends are still 0, the zero memory it starts in.
 */
function firstFitLists({ cg, scope }: EmitContext, run: ContiguousRun | undefined, dbg: FreeListDebug | undefined): Lists {
  const m = cg.module;
  const L = cellLayout(cg);
  const anchored = run?.start === L.header;
  /** The list's head and tail: cell 0's links, or globals. */
  const [head, tail]: [Var, Var] = anchored
    ? [
        { get: () => L.nextFreeOf(cg.size(0)), set: (v) => L.setNextFree(cg.size(0), v) },
        { get: () => L.prevFreeOf(cg.size(0)), set: (v) => L.setPrevFree(cg.size(0), v) },
      ]
    : [cg.global(scope("head")), cg.global(scope("tail"))];
  /** `pr.next = c`, where `pr` is a cell on the list or 0 (then c is the new head). */
  const setNext = (pr: Local, c: Local) =>
    anchored ? L.setNextFree(pr.get(), c.get()) : cg.if(pr.get(), L.setNextFree(pr.get(), c.get()), head.set(c.get()));
  const unlink = cg.function(scope("unlink"), ["c"], "usize", (f) => {
    const c = f.param("c");
    const nx = f.local(), pr = f.local();
    return [
      ...(dbg ? dbg.unlinking(c, cg.eq(head.get(), c.get())) : []),
      nx.set(L.nextFreeOf(c.get())),
      pr.set(L.prevFreeOf(c.get())),
      setNext(pr, nx),
      anchored ? L.setPrevFree(nx.get(), pr.get()) : cg.if(nx.get(), L.setPrevFree(nx.get(), pr.get()), tail.set(pr.get())),
      L.nextOfFree(c.get()),
    ];
  });
  const push = cg.function(scope("push"), ["c"], "none", (f) => {
    const c = f.param("c");
    const pr = f.local();
    return [
      ...(dbg ? dbg.pushingAfter(tail.get(), anchored) : []),
      L.setPrevFree(c.get(), pr.tee(tail.get())),
      L.setNextFree(c.get(), cg.size(0)),
      setNext(pr, c),
      tail.set(c.get()),
    ];
  });
  return {
    unlink: (c) => cg.call(unlink, [c]),
    push: (c) => cg.callVoid(push, [c]),
    rebin: false,
    top: false,
    tableBytes: anchored ? L.header : 0,
    verify: ({ walk, lastSeen, corrupt }) => [
      ...walk(head.get(), cg.size(0)),
      m.if(cg.ne(tail.get(), lastSeen.get()), corrupt("the free list's tail is not its last cell", tail.get())),
    ],
    find: (f, n) => {
      const c = f.local();
      const walk = f.label("walk");
      if (dbg) {
        // Every link is checked before it is followed: the head (from the list's ends), then each
        // cell's next link (from its payload).
        const pr = f.local();
        return [
          c.set(head.get()),
          m.loop(walk, cg.when(nonZero(cg, c.get()), [
            dbg.followLink(m.if(nonZero(cg, pr.get()), cg.add(pr.get(), cg.size(L.header)), c.get()), c.get(), pr.get(), cg.eqz(nonZero(cg, pr.get()))),
            cg.returnIf(holds(cg, c, n), c.get()),
            pr.set(c.get()),
            c.set(L.nextFreeOf(c.get())),
            m.br(walk),
          ])),
          cg.size(0),
        ];
      }
      if (!anchored) {
        const found = f.label("found");
        return [
          c.set(head.get()),
          m.block(found, [m.loop(walk, cg.when(nonZero(cg, c.get()), [m.br(found, holds(cg, c, n)), c.set(L.nextFreeOf(c.get())), m.br(walk)]))]),
          c.get(),
        ];
      }
      // From cell 0 (`c` starts at 0), whose next free cell is the head; the walk ends at cell 0.
      return [m.loop(walk, m.if(nonZero(cg, c.tee(L.nextFreeOf(c.get()))), m.br(walk, cg.eqz(holds(cg, c, n))))), c.get()];
    },
  };
}

/** log2 of the bins each power of two is split into (32: sizes about 3 % apart). */
const SUB_LOG = 5;
/**
 * How many cells of a request's own bin `find` follows when its first did not fit and no bin
 * above holds a cell (see binLists). Bounded: a request's work stays O(1).
 */
const OWN_LOOKS = 8;

/**
 * Two-level segregated fit (TLSF, Masmano et al.): O(1) `find`, `push` and `unlink`, whatever
 * the heap's history. Cells smaller than 2^(SUB_LOG + g) bytes (g: log2 of the granule; 256 bytes
 * on wasm32) have a bin per size, 8 bytes apart; every larger power of two [2^k, 2^(k+1)) is
 * split into S = 2^SUB_LOG bins of equal width. A word per level of S bins (`maps`) has bit s
 * set while that bin is non-empty, and the global `levels` has bit l set while map l is non-zero.
 *
 * ```text
 *   levels   ... 0 1 1 0 1            bit l: some bin of level l is non-empty
 *   maps     [map 0][map 1]...        bit s of map l: bin l*S + s is non-empty
 *   heads    [head 0][head 1]...      head b -> cell <-> cell <-> ... (null-terminated)
 * ```
 *
 * `find(n)` looks at the first cell of n's own bin (a cell there may or may not fit: one look,
 * which finds a same-size cell freed before), then takes from the first non-empty bin whose every
 * cell fits: from bin(n) + 1 on, found with two masks and two ctz. (Every cell of bin(n - 1) + 1
 * fits. That bin is bin(n) + 1, or bin(n) itself when n is its bin's smallest size: then every
 * cell of bin(n) fits, and its first was taken by the look, or the bin is empty. So the search
 * starts from own + 1, with no second bin computation.) Only when no such bin holds a cell,
 * before the top is cut or the heap grows, it follows n's own bin for at most OWN_LOOKS cells and
 * takes the smallest that fits. One bounded loop does the three walks (1, 2 and up to
 * OWN_LOOKS cells). No unbounded walk: a request never costs more than a few dozen instructions.
 * The price is fragmentation bounded by the bin width: a cell in n's own bin that is passed over
 * serves smaller requests.
 *
 * The last look into n's own bin: with the one look only, `source-map` at other seeds than 1
 * kept a buffer's old hole behind a slightly smaller one in the request's bin, with nothing
 * above, and every later buffer took new pages: over 1.1x wasi-libc dlmalloc's memory on 11 of
 * seeds 1-21 at 320,000 operations (1.30x at worst); with it, 1.00x at worst (`pnpm --filter
 * @alloc/bench growth --workloads source-map --seeds 1-21 --ops 320000`). It costs 35 bytes (the
 * five C functions: 1,395 -> 1,424 B, with 6 saved in refill). The first look stays: without it
 * (27 bytes less), size-classes over the free list kept growing on the every-other-one-freed
 * pattern of the conformance suite, and `phase-change` at seed 6 went from 1.11x to 1.20x. A bin
 * whose first OWN_LOOKS cells are all too small still grows the heap: `bin-head-poison` builds
 * that on purpose (1.27x dlmalloc at seed 4; the bounds suite's known failure at seed 2).
 *
 * Best fit within a bin, in O(1): a request served from a bin above its own takes the smaller of
 * that bin's first two cells (bins are LIFO). Taking the first, a large buffer freed a moment ago
 * was cut up for small long-lived blocks while an older hole a little smaller stayed whole, and the
 * next buffer of that size no longer fitted either and took new pages (`source-map`: 1.29x
 * wasi-libc dlmalloc's memory, 4.4 MiB at 20,000 operations and 5.8 at 80,000; with it, 1.00x and
 * flat). The remainder of the split goes back in front, so the next request compares it with the
 * same other cell. (Keeping the smaller of two in front at `push` instead fixed that too, but the
 * look into n's own bin then met the smaller cell first: `realloc-ping-pong` needed 1.13x
 * dlmalloc's memory instead of 1.06x.)
 *
 * The table sits at the start of the first region. The cell at the front of bin b has `prevFree`
 * = (address of head b) - header, so unlinking it writes its successor into the table like into
 * any cell. A last level, always empty, takes the searches past the largest bin.
 */
function binLists({ cg, scope, goal }: EmitContext, at: number | undefined, dbg: FreeListDebug | undefined, granule: number): Lists {
  const m = cg.module;
  const L = cellLayout(cg);
  const W = cg.ptrBytes;
  const bits = W * 8;
  const wordLog = Math.log2(W);
  const S = 1 << SUB_LOG;
  const G = Math.log2(L.header);
  // Levels: the linear one (shift G), one per shift up to bits - 1 - SUB_LOG, and the empty last.
  const levels = bits - SUB_LOG - G + 1;
  const mapsBytes = levels * W;
  // (A multiple of the granule: the first region's cells start after it, on the granule's grid.)
  const tableBytes = Math.ceil((mapsBytes + levels * S * W) / granule) * granule;
  // The table's address: a constant at the start of a contiguous run, or a global set when the
  // first region arrives.
  const tableVar = at === undefined ? cg.global(scope("bins")) : undefined;
  const table = () => tableVar?.get() ?? cg.size(at!);
  const levelBits = cg.global(scope("levels"));
  /** The word of level l's map, and the head of bin b. */
  const mapOf = (l: Expr) => cg.add(table(), cg.shl(l, cg.size(wordLog)));
  const slot = (b: Expr) => cg.add(table(), cg.add(cg.shl(b, cg.size(wordLog)), cg.size(mapsBytes)));
  const one = (shift: Expr) => cg.shl(cg.size(1), shift);
  const low = (b: Expr) => cg.and(b, cg.size(S - 1));
  const levelOf = (b: Expr) => cg.shrU(b, cg.size(SUB_LOG));

  // bin(x) -> the bin of cell size x (any x > 0): with e = max(floor(log2 x) - SUB_LOG, G), the
  // bin is ((e - G) << SUB_LOG) + (x >> e). Below 2^(SUB_LOG + G), e is G: x >> G, one bin per
  // granule. Above, x >> e has SUB_LOG + 1 bits (S + the range in the level), and each e its
  // level. The max is taken by or-ing the bits below 2^(SUB_LOG + G + 1) into x, which keeps its
  // top bit unless it was lower.
  /** e of size x (see bin). */
  const shiftOf = (x: Expr) => cg.sub(cg.size(bits - 1 - SUB_LOG), cg.clz(cg.or(x, cg.size(2 ** (SUB_LOG + G + 1) - 1))));
  const bin = cg.function(scope("bin"), ["x"], "usize", (f) => {
    const x = f.param("x"), e = f.local();
    return cg.add(cg.shl(cg.sub(e.tee(shiftOf(x.get())), cg.size(G)), cg.size(SUB_LOG)), cg.shrU(x.get(), e.get()));
  });
  const binOf = (x: Expr) => cg.call(bin, [x]);
  /** The bin of free cell `c` (read twice). */
  const binOfCell = (c: Local) => binOf(cg.sub(L.nextOfFree(c.get()), c.get()));

  const unlink = cg.function(scope("unlink"), ["c"], "usize", (f) => {
    const c = f.param("c");
    const nx = f.local(), pr = f.local(), b = f.local(), mp = f.local();
    return [
      ...(dbg ? dbg.unlinking(c, cg.i32(0)) : []),
      nx.set(L.nextFreeOf(c.get())),
      L.setNextFree(pr.tee(L.prevFreeOf(c.get())), nx.get()),
      // The bin is empty now when c was its only cell: last (no next), and first (its prev is a
      // head's slot less a header, inside the table: the unsigned offset below is in range, and
      // is the bin's slot offset). Then its bit is cleared, and its level's when that was the
      // last. No bin index to compute from the size.
      cg.when(
        nx.get(),
        [L.setPrevFree(nx.get(), pr.get())],
        [
          cg.when(cg.ltU(b.tee(cg.sub(pr.get(), cg.add(table(), cg.size(mapsBytes - L.header)))), cg.size(levels * S * W)), [
            b.set(cg.shrU(b.get(), cg.size(wordLog))),
            cg.store(mp.tee(mapOf(levelOf(b.get()))), cg.and(cg.load(mp.get()), cg.xor(one(low(b.get())), cg.size(-1)))),
            cg.when(cg.eqz(cg.load(mp.get())), [
              levelBits.set(cg.and(levelBits.get(), cg.xor(one(levelOf(b.get())), cg.size(-1)))),
            ]),
          ]),
        ],
      ),
      L.nextOfFree(c.get()),
    ];
  });
  const push = cg.function(scope("push"), ["c"], "none", (f) => {
    const c = f.param("c");
    const nx = f.local(), b = f.local(), s = f.local(), mp = f.local();
    return [
      s.set(slot(b.tee(binOfCell(c)))),
      ...(dbg ? [cg.when(nonZero(cg, cg.load(s.get())), [dbg.followLink(s.get(), cg.load(s.get()), L.cellOf(s.get()), true)])] : []),
      L.setNextFree(c.get(), nx.tee(cg.load(s.get()))),
      L.setPrevFree(c.get(), L.cellOf(s.get())),
      cg.store(s.get(), c.get()),
      // A bin that was empty gets its bit, and its level's.
      cg.when(
        nx.get(),
        [L.setPrevFree(nx.get(), c.get())],
        [
          cg.store(mp.tee(mapOf(levelOf(b.get()))), cg.or(cg.load(mp.get()), one(low(b.get())))),
          levelBits.set(cg.or(levelBits.get(), one(levelOf(b.get())))),
        ],
      ),
    ];
  });
  // replace(r, c): free cell c takes listed cell r's place in its bin (the same links; the front
  // cell's prev is its head's slot less a header, written like any cell's next link). Emitted
  // when first used.
  let replace: string | undefined;
  const replaceFn = () =>
    (replace ??= cg.function(scope("replace"), ["r", "c"], "none", (f) => {
      const r = f.param("r"), c = f.param("c");
      const nx = f.local(), pr = f.local();
      return [
        ...(dbg ? dbg.unlinking(r, cg.i32(0)) : []),
        L.setNextFree(c.get(), nx.tee(L.nextFreeOf(r.get()))),
        L.setPrevFree(c.get(), pr.tee(L.prevFreeOf(r.get()))),
        L.setNextFree(pr.get(), c.get()),
        cg.when(nx.get(), [L.setPrevFree(nx.get(), c.get())]),
      ];
    }));
  /** The head of the bin whose slot is at `slotAt` (debug builds check it before it is followed). */
  const headOf = (f: FunctionScope, slotAt: Expr): Expr => {
    if (!dbg) return cg.load(slotAt);
    const s = f.local(), c = f.local();
    return cg.block([s.set(slotAt), c.set(cg.load(s.get())), cg.when(nonZero(cg, c.get()), [dbg.followLink(s.get(), c.get(), L.cellOf(s.get()), true)]), c.get()]);
  };
  /** Debug builds: cell c's next link is checked before it is followed. */
  const checkNext = (f: FunctionScope, c: Local): Expr[] => {
    if (!dbg) return [];
    const nx = f.local();
    return [cg.when(nonZero(cg, nx.tee(L.nextFreeOf(c.get()))), [dbg.followLink(cg.add(c.get(), cg.size(L.header)), nx.get(), c.get(), false)])];
  };
  return {
    unlink: (c) => cg.call(unlink, [c]),
    push: (c) => cg.callVoid(push, [c]),
    // Sizes a <= b share a bin when they agree above bit e of a: then they have the same top
    // bit (e lies below it) and so the same e, and the same x >> e. (One clz, not two bins.)
    sameList: (f, a, b) => {
      const x = f.local();
      return cg.eqz(nonZero(cg, cg.shrU(cg.xor(x.tee(a), b), shiftOf(x.get()))));
    },
    replace: (r, c) => [cg.callVoid(replaceFn(), [r.get(), c.get()])],
    rebin: true,
    top: true,
    tableBytes,
    find: (f, n) => {
      const c = f.local(), b = f.local(), l = f.local(), map = f.local(), k = f.local();
      const best = f.local(), bsz = f.local(), t = f.local(), own = f.local();
      const found = f.label("found"), walk = f.label("walk");
      /** In loop `walk`: best <- the smallest cell that holds n among the next k cells from c, bsz its size. */
      const walkK = cg.when(nonZero(cg, c.get()), [
        cg.when(m.i32.and(cg.ltU(n.get(), t.tee(cg.sub(cg.load(c.get()), c.get()))), cg.ltU(t.get(), bsz.get())), [best.set(c.get()), bsz.set(t.get())]),
        ...checkNext(f, c),
        c.set(L.nextFreeOf(c.get())),
        m.br(walk, nonZero(cg, k.tee(cg.sub(k.get(), cg.size(1))))),
      ]);
      /**
       * The first non-empty bin from own + 1 on (own: n's bin, looked at before; see binLists):
       * in its level, or in the next level with a non-empty bin (the last level is always empty:
       * b never leaves the table). `none` runs when there is none.
       */
      const above = (none: Expr[]) => [
        b.set(cg.add(own.get(), cg.size(1))),
        cg.when(
          cg.eqz(nonZero(cg, map.tee(cg.and(cg.load(mapOf(l.tee(levelOf(b.get())))), cg.shl(cg.size(-1), low(b.get())))))),
          [
            cg.when(cg.eqz(nonZero(cg, map.tee(cg.and(levelBits.get(), cg.shl(cg.size(-1), cg.add(l.get(), cg.size(1))))))), none),
            map.set(cg.load(mapOf(l.tee(cg.ctz(map.get()))))),
          ],
        ),
        cg.add(cg.shl(l.get(), cg.size(SUB_LOG)), cg.ctz(map.get())),
      ];
      if (goal === "speed") {
        // Speed builds emit this inside malloc and realloc (see findInline): no early return, no
        // local assumed 0, and the usual paths without the loop (the one look, and the smaller of
        // two cells by a select, as the loop would choose).
        const done = f.label("done"), nx = f.local();
        return [
          m.block(done, [
            cg.drop(m.br(done, m.if(nonZero(cg, c.get()), holds(cg, c, n), cg.i32(0)), c.tee(headOf(f, slot(own.tee(binOf(n.get()))))))),
            c.set(headOf(f, slot(b.tee(m.block(found, above([
              // (c is still the bin's first cell, too small, or 0: an empty bin. The walk starts
              // behind it: the same OWN_LOOKS cells as a size build's, the first not read twice.)
              cg.drop(m.br(done, cg.eqz(nonZero(cg, c.get())), cg.size(0))),
              ...checkNext(f, c),
              c.set(L.nextFreeOf(c.get())),
              k.set(cg.size(OWN_LOOKS - 1)),
              best.set(cg.size(0)),
              bsz.set(cg.size(-1)),
              m.loop(walk, walkK),
              m.br(done, undefined, best.get()),
            ]), cg.usize))))),
            // The bins below 2S hold one size each: the smaller of two is the first, and its
            // successor is not read. (select evaluates its arms before the condition: the tee
            // comes first.)
            m.if(
              cg.ltU(b.get(), cg.size(2 * S)),
              c.get(),
              cg.block([
                ...checkNext(f, c),
                cg.select(
                  m.i32.and(cg.ne(nx.get(), cg.size(0)), cg.ltU(cg.sub(cg.load(nx.get()), nx.get()), cg.sub(cg.load(c.get()), c.get()))),
                  nx.tee(L.nextFreeOf(c.get())),
                  c.get(),
                ),
              ]),
            ),
          ], cg.usize),
        ];
      }
      // Size builds: one bounded loop walks k cells from c and keeps the smallest that holds n:
      // first the first cell of n's own bin; when it does not fit, once more from the bin above,
      // every cell of which fits (the smaller of its first two); none, n's own bin again, for
      // OWN_LOOKS cells. (b is 0 until the second walk is set up, and the bin there is 1 or more;
      // a function's locals start at 0: find is called, never emitted inline, here.)
      return [
        bsz.set(cg.size(-1)),
        k.set(cg.size(1)),
        c.set(headOf(f, slot(own.tee(binOf(n.get()))))),
        m.loop(walk, cg.block([
          walkK,
          cg.when(cg.eqz(cg.or(best.get(), b.get())), [
            k.set(cg.size(2)),
            c.set(headOf(f, slot(m.block(found, above([k.set(cg.size(OWN_LOOKS)), m.br(found, undefined, own.get())]), cg.usize)))),
            m.br(walk),
          ]),
        ])),
        best.get(),
      ];
    },
    // (Only the speed body is written for it: the size body counts on a call's zeroed locals.)
    findInline: goal === "speed",
    verify: ({ f, walk, corrupt }) => {
      // Each bin: its bit set exactly when it is non-empty, every cell in its size range; each
      // level: its bit set exactly when its map is non-zero.
      const k = f.local(), s = f.local();
      const loop = f.label("verify_bins"), levelLoop = f.label("verify_levels");
      const bitOf = (word: Expr, i: Expr) => cg.toI32(cg.and(cg.shrU(word, i), cg.size(1)));
      // Before the first region there is no table to check (its address is 0: memory that is
      // not the allocator's).
      const whenPlaced = (stmts: Expr[]) => (tableVar ? [cg.when(nonZero(cg, tableVar.get()), stmts)] : stmts);
      return whenPlaced([
        k.set(cg.size(0)),
        m.loop(
          loop,
          cg.when(cg.ltU(k.get(), cg.size(levels * S)), [
            s.set(slot(k.get())),
            m.if(
              m.i32.ne(bitOf(cg.load(mapOf(levelOf(k.get()))), low(k.get())), cg.ne(cg.load(s.get()), cg.size(0))),
              corrupt("a bin's bit in its level's map disagrees with the bin", s.get()),
            ),
            ...walk(cg.load(s.get()), L.cellOf(s.get()), (c) => cg.eq(binOfCell(c), k.get())),
            k.set(cg.add(k.get(), cg.size(1))),
            m.br(loop),
          ]),
        ),
        k.set(cg.size(0)),
        m.loop(
          levelLoop,
          cg.when(cg.ltU(k.get(), cg.size(levels)), [
            m.if(
              m.i32.ne(bitOf(levelBits.get(), k.get()), cg.ne(cg.load(mapOf(k.get())), cg.size(0))),
              corrupt("a level's bit disagrees with its map", mapOf(k.get())),
            ),
            k.set(cg.add(k.get(), cg.size(1))),
            m.br(levelLoop),
          ]),
        ),
      ]);
    },
    ...(tableVar && {
      placeTable: (base: Local) => [
        cg.when(cg.eqz(tableVar.get()), [tableVar.set(base.get()), base.set(cg.add(base.get(), cg.size(tableBytes)))]),
      ],
    }),
  };
}
