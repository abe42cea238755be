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

export interface FreeListOptions {
  /**
   * How `alloc` finds a free cell.
   * - "first" (default): one free list, oldest free cell first; the first cell that fits wins.
   *   Smallest code. A walk gets long when many small free cells sit in front of one that fits.
   * - "bins": segregated fit (the idea behind TLSF): one list per power-of-two payload range and
   *   a bitmap of the non-empty ones. `alloc` walks only the request's own range, then takes the
   *   first cell of the next non-empty larger range, which always fits. About 150 bytes more.
   *
   * Measured (see the README): level in the default composition (size-classes on top) but for
   * large blocks; used alone, bins is up to twice as fast under churn. First fit stays the
   * default because it is the smaller (the 500-byte budget of memory, malloc and free; the
   * 800-byte budget of the five C functions).
   */
  readonly fit?: "first" | "bins";
}

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
 * - `alloc(size, align)`: the first free cell with room (see {@link FreeListOptions.fit}) is
 *   taken off its list, and what lies behind the block is split off as a free cell when it can
 *   hold one. Alignments above the granule (8 bytes) take `align + 8` bytes more and free the gap
 *   in front of the aligned block. When nothing fits: pages from the backend become one free cell
 *   (`free` merges it with the region's last cell when the pages follow it), and the search runs
 *   again.
 * - `free(ptr)`: O(1). A free previous neighbour absorbs the cell (with first fit it keeps its
 *   place on the list), otherwise the cell joins its list (first fit: at the tail); a free next
 *   neighbour is unlinked and absorbed.
 * - `resize(ptr, size)`: shrinking splits off the tail; growing absorbs a free next neighbour,
 *   and, when the block is the last of the newest region, pages that follow it. A grow that
 *   fails all the same leaves the block with its neighbour absorbed: larger, contents intact.
 * - `usableSize(ptr)`: the payload size, read from the header.
 *
 * Memory stays bounded: a request reuses any free cell that fits before the backend is asked,
 * free neighbours always merge, and fresh pages that follow the region extend its last cell.
 * The backend is asked for the request plus two headers, rounded up to pages.
 *
 * State: the list's head and tail (or the bin table and bitmap) and `last`, the newest region's
 * end sentinel. With first fit in a module that owns its memory, the head and tail are the words
 * at 8 and 12 (see `firstFitLists`), and the heap starts at 16.
 */
export function freeList(options: FreeListOptions = {}): Strategy {
  const fit = options.fit ?? "first";
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
  /** True when a cell whose size changes must move to another list (bins). */
  readonly rebin: boolean;
  /** Bytes the first region reserves for the list heads (the bin table), 0 for one list. */
  readonly tableBytes: number;
  /**
   * Where the table goes when its address is only known at run time: statements that place it
   * at the start of the first region `base` and move `base` past it. Absent for one list, and
   * when the table's address is a constant (the start of a contiguous run).
   */
  placeTable?(base: Local): Expr[];
  /**
   * Walks the lists for a cell of `n` bytes or more, and ends with `c` set to it. When none
   * has one, evaluates `more` (an i32: non-zero when the lists may hold one now) and searches
   * again, or runs `fail`, which must leave the function.
   */
  search(s: SearchScope): Expr;
  /** Debug builds: the walker's check of the lists (see `debug.ts`). */
  verify(check: ListCheck): Expr[];
}

interface SearchScope {
  readonly f: FunctionScope;
  /** 0 on entry (a fresh local). */
  readonly c: Local;
  /** The bytes wanted: a cell of at least `n` bytes, header included (any number). */
  readonly n: Local;
  readonly more: Expr;
  readonly fail: Expr;
}

function emitFreeList(ctx: EmitContext, parent: Parent, fit: "first" | "bins"): AllocatorFunctions {
  if (parent.kind !== "pages") throw new AllocConfigError("free-list: needs a page backend below it");
  const { cg, scope } = ctx;
  const m = cg.module;
  const L = cellLayout(cg);
  const { header: H, minCell, maxRequest } = L;
  const { allocPages, run } = parent.pages;
  const zero = () => cg.size(0);
  const i32 = cg.type("i32");

  const lists = fit === "first" ? firstFitLists(ctx, run) : binLists(ctx, run?.start);
  /**
   * The newest region's end sentinel; 0 before the first region. Over a contiguous run, the one
   * region starts at run.start (after the bin table) and its end sentinel is there before the
   * first refill: a cell of no size. A region's first cell is its own prev with no store (word 1
   * is 0), so nothing needs initialising.
   */
  const last = cg.global(scope("last"), run ? run.start + lists.tableBytes : 0);
  /** Debug builds only: poisoning, pointer checks, region records and the walker (`debug.ts`). */
  const dbg = ctx.debug && new FreeListDebug({ cg, debug: ctx.debug, scope, L, run, tableBytes: lists.tableBytes, last });

  // release(c, end) -> end of the free cell: frees cell c, which ends at `end`, merging with both
  // neighbours, O(1). Its word 0 is not read: a cell just cut off needs only its prev.
  const release = cg.function(scope("release"), ["c", "end"], "usize", (f) => {
    const c = f.param("c"), end = f.param("end");
    const pv = f.local();
    const next = f.label("next");
    return [
      ...(dbg ? dbg.releaseStart(f, c, end) : []),
      // A free previous neighbour absorbs this cell: with one list it keeps its place there;
      // with bins it changes size class, so it leaves its list to be pushed again below.
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
          cg.when(L.isFree(end.get()), [end.set(lists.unlink(end.get())), m.br(next)]),
        ]),
      ),
      ...(dbg ? dbg.releasePoison(c, end) : []),
      L.setFree(c.get(), end.get()),
      ...(lists.rebin ? [lists.push(c.get())] : []),
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

  // trim(c, cut) -> payload of c: allocated cell c ends at `cut` (a granule multiple inside it)
  // when what lies behind can be a cell of its own, which is freed (merging with a free next
  // neighbour; release also sets the prev of the cell behind it). Returning the payload saves the
  // callers that hand the block out a read of it.
  const trim = cg.function(scope("trim"), ["c", "cut"], "usize", (f) => {
    const c = f.param("c"), cut = f.param("cut");
    const end = f.local();
    return [
      cg.when(cg.geU(cg.sub(end.tee(L.word0(c.get())), cut.get()), cg.size(minCell)), [
        L.setPrev(cut.get(), cut.get(), c.get()),
        L.setUsed(c.get(), cut.get()),
        cg.drop(cg.call(release, [cut.get(), end.get()])),
      ]),
      L.payloadOf(c.get()),
    ];
  });

  // refill(n) -> i32: pages from the backend become a free cell of at least n bytes (header
  // included), merged with the region's last cell when they follow it. 0 when the backend refuses.
  // A fresh region holds the end sentinel besides the cell (and, the first time, the bin table).
  const overhead = H + lists.tableBytes + (dbg ? dbg.regionRecordBytes : 0);
  /**
   * The new cell [last, e) is freed: e, the end of the free cell, becomes the end sentinel (word 0
   * already 0: fresh memory; release sets its prev).
   */
  const finish = (e: Expr) => [last.set(cg.call(release, [last.get(), e])), cg.i32(1)];
  const refill = cg.function(scope("refill"), ["n"], "i32", (f) => {
    const n = f.param("n");
    if (run) {
      // One region, [run.start, run.end()), which may hold memory before the first call (page 0
      // of a module's own memory). The new cell starts at the end sentinel.
      const room = f.local();
      const tableSlack = run.start % PAGE_SIZE ? 0 : lists.tableBytes;
      return [
        // The cell and the end sentinel need n + H bytes from `last` on; when the run lacks some
        // (n + H > room), ceil(lack / 64 KiB) = ((n + H - 1 - room) >> 16) + 1.
        // Both sides count the bin table too when the run can still be empty (room would be
        // negative: before the first call `last` is past the table). A run that starts inside a
        // page holds the rest of that page from the start.
        cg.when(
          cg.geU(
            n.tee(cg.add(n.get(), cg.size(H - 1 + tableSlack))),
            room.tee(cg.sub(run.end(), cg.sub(last.get(), cg.size(tableSlack)))),
          ),
          [
            cg.returnIf(
              cg.eqz(
                m.call(run.extend, [cg.add(cg.shrU(cg.sub(n.get(), room.get()), cg.size(PAGE_SHIFT)), cg.size(1))], i32),
              ),
              cg.i32(0),
            ),
          ],
        ),
        ...finish(cg.sub(run.end(), cg.size(H))),
      ];
    }
    const pages = f.local(), base = f.local(), e = f.local();
    return [
      // ceil((n + overhead) / 64 KiB)
      pages.set(cg.add(cg.shrU(cg.add(n.get(), cg.size(overhead - 1)), cg.size(PAGE_SHIFT)), cg.size(1))),
      cg.returnIf(cg.eqz(base.tee(cg.call(allocPages, [pages.get()]))), cg.i32(0)),
      ...(dbg ? dbg.newPages(base, pages) : []),
      e.set(cg.sub(cg.add(base.get(), cg.shl(pages.get(), cg.size(PAGE_SHIFT))), cg.size(H))),
      // Pages that do not follow the newest region start one of their own (its first cell is its
      // own prev: word 1 is 0). Pages that do turn the old end sentinel into a cell.
      cg.when(cg.ne(L.cellOf(base.get()), last.get()), [...(lists.placeTable?.(base) ?? []), ...(dbg ? dbg.newRegion(base) : []), last.set(base.get())]),
      ...finish(e.get()),
    ];
  });

  /**
   * alloc(size, align), for `align` an expression (a parameter, or a constant in allocFixed):
   * the first free cell of `n` bytes or more (n: the size rounded up to the granule, plus the
   * header) is taken off its list and cut to size. When none has room, pages from the backend make
   * one, and the search runs again; 0 when the backend refuses.
   */
  const allocBody = (f: FunctionScope, size: Local, align: () => Expr, alignConst?: number): Expr[] => {
    const n = f.local(), c = f.local(), q = f.local(), mask = f.local();
    // Payloads are granule aligned: a larger alignment needs room for a gap of at least a cell
    // in front of the aligned address, so that the gap can be freed: the search is for `u`.
    const aligned = alignConst === undefined || alignConst > H;
    const u = aligned ? f.local() : n;
    // At most align + H; none for an alignment of H or less. For every alignment of H or more that
    // is align ^ H (a power of two above H has no H bit: the xor adds it; H ^ H is 0). The smaller
    // ones aligned_alloc may pass (see allocAcceptsSmallAlign) get align + H: the search then asks
    // for up to 15 bytes more than the block needs (the block itself is cut to size all the same).
    const gap =
      alignConst !== undefined
        ? cg.size(alignConst + minCell - H)
        : ctx.limits.minAlign >= H
          ? cg.xor(align(), cg.size(H))
          : cg.select(cg.gtU(align(), cg.size(H)), cg.add(align(), cg.size(minCell - H)), zero());
    return [
      // Impossible sizes (and 0) return 0 here, and past this nothing can overflow.
      cg.returnIf(L.refused(n.tee(L.cellBytes(size.get()))), zero()),
      ...(aligned ? [u.set(cg.add(n.get(), gap))] : []),
      lists.search({ f, c, n: u, more: m.call(refill, [u.get()], i32), fail: cg.ret(zero()) }),
      L.setUsed(c.get(), lists.unlink(c.get())),
      ...(dbg ? dbg.taken(c.get(), u.get()) : []),
      ...(aligned
        ? [
            cg.when(cg.and(L.payloadOf(c.get()), mask.tee(cg.sub(align(), cg.size(1)))), [
              // The aligned block gets a cell q of its own (split off, and taken back from the
              // free list); the gap [c, q) in front is freed. Its payload is the first aligned
              // address a cell or more past c's: ((c + H + minCell - 1) | mask) + 1.
              q.set(cg.sub(cg.or(cg.add(c.get(), cg.size(H + minCell - 1)), mask.get()), cg.size(H - 1))),
              cg.drop(cg.call(trim, [c.get(), q.get()])),
              L.setUsed(q.get(), lists.unlink(q.get())),
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
    const c = f.local(), end = f.local();
    const grow = f.label("grow");
    return [
      c.set(L.cellOf(ptr.get())),
      m.loop(grow, cg.block([
        // There is at most one free neighbour to absorb: free cells never touch.
        cg.when(L.isFree(end.tee(L.word0(c.get()))), [
          ...(dbg ? dbg.absorbed(end.get(), end.get(), L.nextOfFree(end.get())) : []),
          L.setUsed(c.get(), end.tee(lists.unlink(end.get()))),
          L.setPrev(end.get(), end.get(), c.get()),
        ]),
        cg.when(cg.gtU(size.get(), cg.sub(end.get(), ptr.get())), [
          // Too small. When nothing follows but the newest region's end, pages that follow it
          // become a free neighbour of the shortfall or more (both granule multiples once the
          // size is rounded up), and the block absorbs it.
          // (Impossible sizes, over maxRequest, are refused here.)
          cg.when(m.i32.and(cg.eq(end.get(), last.get()), cg.leU(size.get(), cg.size(maxRequest))), [
            m.br(grow, m.call(refill, [cg.sub(size.get(), cg.sub(end.get(), ptr.get()))], i32)),
          ]),
          cg.ret(zero()),
        ]),
      ])),
      // It fits: the cut, ptr + size rounded up to the granule, lies inside the block.
      cg.call(trim, [c.get(), cg.alignUpConst(cg.add(ptr.get(), size.get()), H)]),
    ];
  });

  const usableSize = cg.function(scope("usable_size"), ["ptr"], "usize", (f) => {
    const ptr = f.param("ptr");
    return cg.sub(L.word0(L.cellOf(ptr.get())), ptr.get());
  });

  const check = dbg && dbg.emitCheck((list) => lists.verify(list));

  // Every block is granule aligned: alignments below minAlign are as good as minAlign.
  const allocAcceptsSmallAlign = ctx.limits.minAlign <= H;
  return { alloc, allocFixed, free, resize, usableSize, shrinksInPlace: true, allocAcceptsSmallAlign, ...(check && { check }) };
}

/**
 * Walks a null-terminated list from `c`, its first cell: branches to `found` at the first cell
 * of `n` bytes or more, and falls through at the end of the list.
 */
function walkList(cg: Codegen, c: Local, n: Local, found: string): Expr {
  const m = cg.module;
  const L = cellLayout(cg);
  const walk = "walk";
  return m.loop(
    walk,
    cg.when(nonZero(cg, c.get()), [m.br(found, holds(cg, c, n)), c.set(L.nextFreeOf(c.get())), m.br(walk)]),
  );
}

/** An i32 condition: free cell `c` spans `n` bytes or more. */
const holds = (cg: Codegen, c: Local, n: Local) => cellLayout(cg).freeHolds(c.get(), c.get(), n.get());

/** A pointer-width value as an i32 condition. */
const nonZero = (cg: Codegen, x: Expr) => (cg.memory64 ? cg.ne(x, cg.size(0)) : x);

/**
 * A search that runs `walk` (which branches to `found`), and when it falls through, `more` and
 * `walk` again, or `fail`.
 */
function retrying(cg: Codegen, { more, fail }: SearchScope, walk: (found: string) => Expr[]): Expr {
  const m = cg.module;
  const found = "found", retry = "retry";
  return m.block(found, [m.loop(retry, cg.block([...walk(found), m.br(retry, more), fail]))]);
}

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
function firstFitLists({ cg, scope }: EmitContext, run: ContiguousRun | undefined): Lists {
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
    anchored ? L.setNextFree(pr.get(), c.get()) : m.if(pr.get(), L.setNextFree(pr.get(), c.get()), head.set(c.get()));
  const unlink = cg.function(scope("unlink"), ["c"], "usize", (f) => {
    const c = f.param("c");
    const nx = f.local(), pr = f.local();
    return [
      nx.set(L.nextFreeOf(c.get())),
      pr.set(L.prevFreeOf(c.get())),
      setNext(pr, nx),
      anchored ? L.setPrevFree(nx.get(), pr.get()) : m.if(nx.get(), L.setPrevFree(nx.get(), pr.get()), tail.set(pr.get())),
      L.nextOfFree(c.get()),
    ];
  });
  const push = cg.function(scope("push"), ["c"], "none", (f) => {
    const c = f.param("c");
    const pr = f.local();
    return [
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
    tableBytes: anchored ? L.header : 0,
    verify: ({ walk, lastSeen, corrupt }) => [
      ...walk(head.get(), cg.size(0)),
      m.if(cg.ne(tail.get(), lastSeen.get()), corrupt("the free list's tail is not its last cell", tail.get())),
    ],
    search: (s) => {
      const { c, n, more, fail } = s;
      if (!anchored) return retrying(cg, s, (found) => [c.set(head.get()), walkList(cg, c, n, found)]);
      // From cell 0 (`c` on entry), whose next free cell is the head; the walk ends at cell 0
      // again, where it starts over when there is more.
      const walk = "walk";
      return m.loop(
        walk,
        m.if(
          nonZero(cg, c.tee(L.nextFreeOf(c.get()))),
          m.br(walk, cg.eqz(holds(cg, c, n))),
          cg.block([m.br(walk, more), fail]),
        ),
      );
    },
  };
}

/**
 * Segregated fit: bin k holds the free cells whose payload lies in [2^(k+g), 2^(k+g+1)), where
 * 2^g is the granule; bit k of a bitmap is set while bin k is non-empty. The bin heads live at the
 * start of the first region. The cell at the front of bin k has `prevFree` = (address of head k)
 * - header, so unlinking it writes its successor into the table like into any cell.
 *
 * ```text
 *   bitmap   ... 0 1 1 0 1        bit k: bin k is non-empty
 *   table    [head 0][head 1]...  head k -> cell <-> cell <-> ... (null-terminated)
 * ```
 */
function binLists({ cg, scope }: EmitContext, at: number | undefined): Lists {
  const m = cg.module;
  const L = cellLayout(cg);
  const bits = cg.ptrBytes * 8;
  const granuleLog = Math.log2(L.header);
  const wordLog = Math.log2(cg.ptrBytes);
  const bins = bits - granuleLog;
  const tableBytes = Math.ceil((bins * cg.ptrBytes) / L.header) * L.header;
  // The table's address: a constant at the start of a contiguous run, or a global set when the
  // first region arrives.
  const tableVar = at === undefined ? cg.global(scope("bins")) : undefined;
  const table = { get: () => tableVar?.get() ?? cg.size(at!) };
  const bitmap = cg.global(scope("bitmap"));
  /** The bin of a payload of `size` bytes (at least a granule). */
  const binOf = (size: Expr) => cg.sub(cg.size(bits - 1 - granuleLog), cg.clz(size));
  /** The bin of free cell `c` (read twice). */
  const binOfCell = (c: Local) => binOf(cg.sub(L.nextOfFree(c.get()), L.payloadOf(c.get())));
  const slot = (bin: Expr) => cg.add(table.get(), cg.shl(bin, cg.size(wordLog)));
  const bit = (bin: Expr) => cg.shl(cg.size(1), bin);
  // (tableBytes is rounded up to the granule: cells after the table stay granule aligned.)

  const unlink = cg.function(scope("unlink"), ["c"], "usize", (f) => {
    const c = f.param("c");
    const nx = f.local(), pr = f.local(), b = f.local();
    return [
      nx.set(L.nextFreeOf(c.get())),
      L.setNextFree(pr.tee(L.prevFreeOf(c.get())), nx.get()),
      cg.when(nx.get(), [L.setPrevFree(nx.get(), pr.get())]),
      // The bin is empty now: clear its bit.
      cg.when(cg.eqz(cg.load(slot(b.tee(binOfCell(c))))), [
        bitmap.set(cg.and(bitmap.get(), cg.xor(bit(b.get()), cg.size(-1)))),
      ]),
      L.nextOfFree(c.get()),
    ];
  });
  const push = cg.function(scope("push"), ["c"], "none", (f) => {
    const c = f.param("c");
    const nx = f.local(), b = f.local(), s = f.local();
    return [
      s.set(slot(b.tee(binOfCell(c)))),
      L.setNextFree(c.get(), nx.tee(cg.load(s.get()))),
      L.setPrevFree(c.get(), L.cellOf(s.get())),
      cg.when(nx.get(), [L.setPrevFree(nx.get(), c.get())]),
      cg.store(s.get(), c.get()),
      bitmap.set(cg.or(bitmap.get(), bit(b.get()))),
    ];
  });
  return {
    unlink: (c) => cg.call(unlink, [c]),
    push: (c) => cg.callVoid(push, [c]),
    rebin: true,
    tableBytes,
    verify: ({ f, walk, corrupt }) => {
      // Each bin: its bit set exactly when it is non-empty, every cell in its size range.
      const k = f.local(), s = f.local();
      const loop = f.label("verify_bins");
      return [
        k.set(cg.size(0)),
        m.loop(
          loop,
          cg.when(cg.ltU(k.get(), cg.size(bins)), [
            s.set(slot(k.get())),
            m.if(
              m.i32.ne(cg.toI32(cg.and(cg.shrU(bitmap.get(), k.get()), cg.size(1))), cg.ne(cg.load(s.get()), cg.size(0))),
              corrupt("a bin's bit in the bitmap disagrees with the bin", s.get()),
            ),
            ...walk(cg.load(s.get()), L.cellOf(s.get()), (c) => cg.eq(binOfCell(c), k.get())),
            k.set(cg.add(k.get(), cg.size(1))),
            m.br(loop),
          ]),
        ),
      ];
    },
    ...(tableVar && {
      placeTable: (base: Local) => [
        cg.when(cg.eqz(tableVar.get()), [tableVar.set(base.get()), base.set(cg.add(base.get(), cg.size(tableBytes)))]),
      ],
    }),
    search: (sc) => {
      // Walk the request's own bin, then each larger non-empty one, where the first cell fits.
      // No bin past the last is searched: payloads are below 2^bits, so b + 1 <= bins, and
      // `-1 << bins` keeps no bit of the bitmap (bins < bits).
      const { f, c, n } = sc;
      const k = f.local();
      const bin = "bin", done = "bins_end";
      return retrying(cg, sc, (found) => [
        m.block(done, [
          k.set(binOf(cg.sub(n.get(), cg.size(L.header)))),
          m.loop(
            bin,
            cg.block([
              k.set(cg.and(bitmap.get(), cg.shl(cg.size(-1), k.get()))),
              m.br(done, cg.eqz(k.get())),
              c.set(cg.load(slot(k.tee(cg.ctz(k.get()))))),
              walkList(cg, c, n, found),
              k.set(cg.add(k.get(), cg.size(1))),
              m.br(bin),
            ]),
          ),
        ]),
      ]);
    },
  };
}
