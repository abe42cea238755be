/**
 * The free list's debug build: what `free-list.ts` adds when `ctx.debug` is set. Release builds
 * never call anything here.
 *
 * - Poison: a free cell's payload, but for its two list links, holds POISON. `release` poisons
 *   exactly what the free makes newly free (the freed cell's payload, its header when it merges
 *   into the cell before it, the header and links of a next cell it absorbs); `take` checks the
 *   part it hands out, and `resize` the neighbour it absorbs. Cost: O(block size), never O(heap).
 * - `free(ptr)` is checked before anything is written: aligned, inside the heap, not in free
 *   memory (poison where a header should be: freed before and merged), not a free cell, and its
 *   neighbours point back at it. A pointer into the middle of a live block is caught when those
 *   words do not happen to form a consistent header, which the links make unlikely but not
 *   impossible.
 * - Regions: without a contiguous run, each region starts with a record (one header: the previous
 *   region's record, then 0), so that the walker can find every region. Over a run there is one
 *   region and no record.
 * - The walker (`check`) visits every cell of every region: alignment, both links of every
 *   neighbour pair, no two free neighbours, the end sentinel where the region ends, poison intact
 *   in every free cell; then walks the free lists (each element a free cell inside the heap, back
 *   links consistent, in its bin) and checks they hold exactly the free cells it counted.
 */
import type { FreeListWalker, ListCheck } from "./walk.ts";
import {
  POISON_WORD,
  PAGE_SHIFT,
  PAGE_SIZE,
  type CellLayout,
  type Codegen,
  type ContiguousRun,
  type DebugHooks,
  type Expr,
  type FunctionScope,
  type Local,
  type Var,
} from "@alloc/core";

export type { ListCheck } from "./walk.ts";

export interface FreeListDebugOptions {
  readonly cg: Codegen;
  readonly debug: DebugHooks;
  readonly scope: (name: string) => string;
  readonly L: CellLayout;
  readonly run: ContiguousRun | undefined;
  /** The heap walker and the region records, which the checks use too. */
  readonly walker: FreeListWalker;
}

/** The free list's debug additions; see the file comment. */
export class FreeListDebug {
  private readonly o: FreeListDebugOptions & {
    /** Bytes at the start of the first region for the list heads (see {@link bind}). */
    tableBytes: number;
    /** The newest region's end sentinel (`free-list.ts` makes the global). */
    readonly last: Var;
  };
  /** Lowest and highest address of the heap (run: its first cell, after the list heads, and its end). */
  private readonly lo: () => Expr;
  private readonly hi: () => Expr;
  private readonly loVar: Var | undefined;
  private readonly hiVar: Var | undefined;
  /** The newest region's record (no run), 0 before the first: the walker's. */
  private readonly regions: Var | undefined;
  private readonly regionRecordBytes: number;
  /** In `release`: the cell freed and the cell after it, before merging. */
  private released: { c: Local; next: Local } | undefined;
  /**
   * The highest address any block has reached since the start (the end of the memory `alloc`
   * took, or `resize` absorbed): free memory at or above it was never handed out, so a pointer
   * there is invalid, not freed twice.
   */
  private readonly high: Var;
  /** The helper functions, emitted on first use. */
  private readonly helpers = new Map<string, string>();

  /**
   * Made before the lists, so that they can emit their checks; {@link bind} completes it once
   * the lists say how many bytes their heads take.
   */
  constructor(o: FreeListDebugOptions) {
    const { cg, scope, run } = o;
    this.o = { ...o, tableBytes: 0, last: cg.globalVar(scope("last")) };
    this.regionRecordBytes = o.walker.regionRecordBytes;
    this.regions = o.walker.regions;
    this.high = cg.global(scope("debug/high"));
    // Over a run, lo is the first cell (after the list heads), a constant: a global whose value
    // `bind` sets, since the heads' size is not known yet.
    const lo = (this.loVar = run ? cg.globalVar(scope("debug/lo")) : cg.global(scope("debug/lo")));
    this.lo = lo.get;
    if (run) {
      this.hi = () => run.end();
    } else {
      const hi = (this.hiVar = cg.global(scope("debug/hi")));
      this.hi = hi.get;
    }
  }

  /** The lists take `tableBytes` at the start of the first region. */
  bind(tableBytes: number): void {
    const { cg, scope, run } = this.o;
    this.o.tableBytes = tableBytes;
    if (run) cg.global(scope("debug/lo"), run.start + tableBytes);
  }

  /**
   * `free(ptr)` (op "free"), `resize` (realloc) and `usableSize` (malloc_usable_size), before
   * anything is read through the pointer: traps unless `ptr` is a live block. See {@link checkLive}.
   */
  checkFree(_f: FunctionScope, ptr: Local): Expr[] {
    return [this.checkLive("free", ptr.get())];
  }

  /**
   * Traps unless `ptr` is a live block: aligned, inside the heap, an allocated cell whose header
   * agrees with both neighbours (each pointing back, and each of theirs pointing back too: a header
   * forged inside a block needs forged neighbours two deep), and a cell that calls itself the first
   * of its region (prev = itself) must be one. Only when that fails is the pointer located, by a
   * walk of its region (O(heap), on the way to a trap only), to name the mistake:
   * - a cell boundary (the cell in front links to it): free already (double free), or its header
   *   or the next cell's overwritten (corrupt heap: an overflow);
   * - inside a free cell: freed already and merged into a neighbour (double free) when a poisoned
   *   header is there and the memory was handed out before, else an invalid pointer (never handed
   *   out: the free tail);
   * - inside an allocated cell, outside every region, the end of a region: an invalid pointer.
   */
  checkLive(op: "free" | "realloc" | "usable", ptr: Expr): Expr {
    const { cg, debug, L, scope } = this.o;
    const m = cg.module;
    const H = L.header;
    const name = this.helper(`check_${op}`, () =>
      cg.function(scope(`debug/check_${op}`), ["ptr"], "none", (f) => {
        const p = f.param("ptr");
        const c = f.local(), w = f.local(), next = f.local();
        const where = f.local("i32");
        const invalid = (what: string) => debug.fail("invalid-pointer", what, p.get());
        const freed = (what: string) =>
          op === "usable"
            ? debug.fail("invalid-pointer", `malloc_usable_size of a block that ${what}`, p.get())
            : debug.fail("double-free", op === "realloc" ? `realloc of a block that ${what}` : what, p.get());
        const corrupt = (what: string, at: Expr) => debug.fail("corrupt-heap", what, at);
        return [
          debug.failIf(cg.toI32(cg.and(p.get(), cg.size(H - 1))), "invalid-pointer", "not an address the free list returns (misaligned)", p.get()),
          debug.failIf(
            m.i32.or(cg.ltU(p.get(), cg.add(this.lo(), cg.size(H))), cg.geU(p.get(), this.hi())),
            "invalid-pointer",
            "outside the heap",
            p.get(),
          ),
          cg.returnIf(m.call(this.liveOk(), [c.tee(L.cellOf(p.get()))], cg.type("i32"))),
          // Something is wrong: where is the pointer?
          where.set(m.call(this.locate(), [c.get()], cg.type("i32"))),
          cg.when(cg.eqz(where.get()), [
            // A cell boundary.
            w.set(L.word0(c.get())),
            next.set(cg.and(w.get(), cg.size(~1))),
            cg.when(
              m.i32.and(cg.eqz(w.get()), m.i32.or(cg.eq(c.get(), this.o.last.get()), cg.eqz(cg.and(cg.add(c.get(), cg.size(H)), cg.size(PAGE_SIZE - 1))))),
              [invalid("not a block: the end of a region")],
            ),
            cg.when(m.call(this.forwardOk(), [c.get()], cg.type("i32")), [
              cg.when(L.isFree(c.get()), [
                cg.when(cg.geU(c.get(), this.high.get()), [invalid("inside free memory that was never handed out")]),
                freed("is already free"),
              ]),
              corrupt("a header next to the block was overwritten (an overflow?)", c.get()),
            ]),
            cg.when(
              cg.eqz(this.badNext(next.get, c.get)),
              [corrupt("the header after the block was overwritten (an overflow of the block?)", next.get())],
            ),
            corrupt("the block's header was overwritten (an overflow of the block in front of it?)", c.get()),
          ]),
          cg.when(m.i32.eq(where.get(), cg.i32(1)), [
            // Inside a free cell.
            cg.when(cg.geU(c.get(), this.high.get()), [invalid("inside free memory that was never handed out")]),
            cg.when(cg.eq(L.word0(c.get()), cg.size(POISON_WORD)), [
              freed("was freed already (and merged with a neighbour)"),
            ]),
            invalid("inside free memory, not a block"),
          ]),
          cg.when(m.i32.eq(where.get(), cg.i32(2)), [invalid("inside a block, not its start")]),
          invalid("not a block of the heap"),
        ];
      }),
    );
    return cg.callVoid(name, [ptr]);
  }

  /** Emits a helper function once. */
  private helper(key: string, make: () => string): string {
    let name = this.helpers.get(key);
    if (!name) this.helpers.set(key, (name = make()));
    return name;
  }

  /**
   * An i32 condition: `next` (read from cell `d`'s word 0, tag cleared) cannot be the cell after
   * `d`: misaligned, less than a minimum cell on, or past the room for an end sentinel.
   */
  private badNext(next: () => Expr, d: () => Expr): Expr {
    const { cg, L } = this.o;
    const m = cg.module;
    const H = L.header;
    return m.i32.or(
      m.i32.or(cg.toI32(cg.and(next(), cg.size(H - 1))), cg.ltU(next(), cg.add(d(), cg.size(2 * H)))),
      cg.gtU(next(), cg.sub(this.hi(), cg.size(H))),
    );
  }

  /** An i32 condition: `x` is granule aligned and in [lo, hi). */
  private inHeap(x: () => Expr): Expr {
    const { cg, L } = this.o;
    const m = cg.module;
    return m.i32.and(
      cg.eqz(cg.and(x(), cg.size(L.header - 1))),
      m.i32.and(cg.geU(x(), this.lo()), cg.ltU(x(), this.hi())),
    );
  }

  /**
   * `forward_ok(d) -> i32`, `d` in the heap: d's word 0 (tag cleared) is a cell inside the heap,
   * at least a minimum cell on, that points back to d.
   */
  private forwardOk(): string {
    const { cg, scope, L } = this.o;
    return this.helper("forward_ok", () =>
      cg.function(scope("debug/forward_ok"), ["d"], "i32", (f) => {
        const d = f.param("d"), next = f.local();
        return [
          next.set(cg.and(L.word0(d.get()), cg.size(~1))),
          cg.returnIf(this.badNext(next.get, d.get), cg.i32(0)),
          cg.eq(L.prevOf(next.get(), next.get()), d.get()),
        ];
      }),
    );
  }

  /**
   * `cell_ok(d) -> i32`, `d` in the heap: d is an end sentinel where a region ends, or its header
   * agrees with both neighbours: forward_ok, and its prev is d itself only when d is the first
   * cell of a region, else a cell in the heap that links to d.
   */
  private cellOk(): string {
    const { cg, scope, L, run, last } = this.o;
    const m = cg.module;
    const H = L.header;
    return this.helper("cell_ok", () =>
      cg.function(scope("debug/cell_ok"), ["d"], "i32", (f) => {
        const d = f.param("d"), pv = f.local(), r = f.local();
        const records = f.label("records");
        const isFirst = run
          ? [cg.eq(d.get(), this.lo())]
          : [
              r.set(this.regions!.get()),
              m.loop(records, cg.when(nonZero(cg, r.get()), [
                cg.returnIf(cg.eq(cg.add(r.get(), cg.size(H)), d.get()), cg.i32(1)),
                r.set(cg.load(r.get())),
                m.br(records),
              ])),
              cg.i32(0),
            ];
        return [
          cg.when(cg.eqz(nonZero(cg, L.word0(d.get()))), [
            cg.ret(m.i32.or(cg.eq(d.get(), last.get()), cg.eqz(cg.and(cg.add(d.get(), cg.size(H)), cg.size(PAGE_SIZE - 1))))),
          ]),
          cg.returnIf(cg.eqz(m.call(this.forwardOk(), [d.get()], cg.type("i32"))), cg.i32(0)),
          cg.when(cg.eq(pv.tee(L.prevOf(d.get(), d.get())), d.get()), isFirst.length === 1 ? [cg.ret(isFirst[0]!)] : [...isFirst.slice(0, -1), cg.ret(isFirst.at(-1)!)]),
          cg.returnIf(cg.eqz(this.inHeap(pv.get)), cg.i32(0)),
          cg.returnIf(cg.gtU(pv.get(), cg.sub(d.get(), cg.size(2 * H))), cg.i32(0)),
          cg.eq(cg.and(L.word0(pv.get()), cg.size(~1)), d.get()),
        ];
      }),
    );
  }

  /** `live_ok(c) -> i32`, `c` in the heap: c is an allocated cell that agrees with its neighbours, and they with theirs. */
  private liveOk(): string {
    const { cg, scope, L } = this.o;
    const i32 = cg.type("i32");
    return this.helper("live_ok", () =>
      cg.function(scope("debug/live_ok"), ["c"], "i32", (f) => {
        const c = f.param("c"), pv = f.local();
        const ok = (x: Expr) => cg.module.call(this.cellOk(), [x], i32);
        return [
          cg.returnIf(L.isFree(c.get()), cg.i32(0)),
          cg.returnIf(cg.eqz(nonZero(cg, L.word0(c.get()))), cg.i32(0)),
          cg.returnIf(cg.eqz(ok(c.get())), cg.i32(0)),
          cg.returnIf(cg.eqz(ok(L.word0(c.get()))), cg.i32(0)),
          cg.returnIf(cg.eq(pv.tee(L.prevOf(c.get(), c.get())), c.get()), cg.i32(1)),
          ok(pv.get()),
        ];
      }),
    );
  }

  /**
   * `locate(c) -> i32`, `c` in the heap: walks the region that holds c from its first cell; 0 when
   * c is a cell boundary (the cell in front links to it, or it is the region's first cell), 1 when
   * it lies inside a free cell, 2 inside an allocated one, 3 in no region. A broken cell on the way
   * fails as a corrupt heap.
   */
  private locate(): string {
    const { cg, scope, L, run, debug } = this.o;
    const m = cg.module;
    return this.helper("locate", () =>
      cg.function(scope("debug/locate"), ["c"], "i32", (f) => {
        const c = f.param("c"), first = f.local(), d = f.local(), next = f.local(), r = f.local();
        const cells = f.label("cells"), regionDone = f.label("region_done"), regionsLoop = f.label("regions");
        const walk = [
          d.set(first.get()),
          m.block(regionDone, [
            m.br(regionDone, cg.ltU(c.get(), first.get())),
            cg.returnIf(cg.eq(c.get(), first.get()), cg.i32(0)),
            m.loop(cells, cg.block([
              // The end sentinel: c is not in this region.
              m.br(regionDone, cg.eqz(nonZero(cg, next.tee(cg.and(L.word0(d.get()), cg.size(~1)))))),
              debug.failIf(
                this.badNext(next.get, d.get),
                "corrupt-heap",
                "a cell's link to the next cell is broken (found looking for the block)",
                d.get(),
              ),
              cg.returnIf(cg.eq(next.get(), c.get()), cg.i32(0)),
              cg.returnIf(cg.gtU(next.get(), c.get()), m.if(L.isFree(d.get()), cg.i32(1), cg.i32(2))),
              debug.failIf(
                cg.ne(L.prevOf(next.get(), next.get()), d.get()),
                "corrupt-heap",
                "a cell's link to the previous cell disagrees with that cell (found looking for the block)",
                next.get(),
              ),
              d.set(next.get()),
              m.br(cells),
            ])),
          ]),
        ];
        if (run) return [first.set(this.lo()), ...walk, cg.i32(3)];
        return [
          r.set(this.regions!.get()),
          m.loop(regionsLoop, cg.when(nonZero(cg, r.get()), [
            first.set(cg.add(r.get(), cg.size(this.regionRecordBytes))),
            ...walk,
            r.set(cg.load(r.get())),
            m.br(regionsLoop),
          ])),
          cg.i32(3),
        ];
      }),
    );
  }

  /**
   * A list link is followed: the link stored at `at` (in a free cell's payload, or in the list
   * heads when `fromHeads`) leads to cell `c` (non-zero), whose back link must be `back`. A link
   * outside the heap or misaligned is a write after free into the cell that holds it (a corrupt
   * heap for the heads), a back link that disagrees one into `c`; then, unless `linkOnly` (in `unlink`, which may run
   * in the middle of a `free` whose cells are not marked yet), `c` must be a free cell whose header
   * agrees with the cell after it (else its header was overwritten: a corrupt heap).
   */
  followLink(at: Expr, c: Expr, back: Expr, fromHeads: boolean | Expr, linkOnly = false): Expr {
    const { cg, scope, L, debug } = this.o;
    const m = cg.module;
    const name = this.helper("link", () =>
      cg.function(scope("debug/link"), ["at", "c", "back", "heads", "link_only"], "none", (f) => {
        const at = f.param("at"), c = f.param("c"), back = f.param("back"), heads = f.param("heads");
        const broken = (what: string) =>
          m.if(
            cg.toI32(heads.get()),
            debug.fail("corrupt-heap", `the free lists' heads were overwritten (${what})`, at.get()),
            debug.fail("use-after-free", `a free cell's list link was overwritten (${what})`, at.get()),
          );
        return [
          cg.when(cg.eqz(this.inHeap(c.get)), [broken("it leads outside the heap")]),
          // The cell's back link disagrees: one of the two links was overwritten; the heads are
          // not a program's memory, the cell's payload was: blame the back link.
          debug.failIf(
            cg.ne(L.prevFreeOf(c.get()), back.get()),
            "use-after-free",
            "a free cell's list links were overwritten (the cell does not link back to the cell or list head that leads to it)",
            cg.add(c.get(), cg.size(L.header + L.word)),
          ),
          cg.returnIf(cg.toI32(f.param("link_only").get())),
          debug.failIf(
            m.i32.or(cg.eqz(L.isFree(c.get())), cg.eqz(m.call(this.forwardOk(), [c.get()], cg.type("i32")))),
            "corrupt-heap",
            "a free cell's header was overwritten (an overflow of the block in front of it?)",
            c.get(),
          ),
        ];
      }),
    );
    const heads = typeof fromHeads === "boolean" ? cg.size(fromHeads ? 1 : 0) : cg.fromBool(fromHeads);
    return cg.callVoid(name, [at, c, back, heads, cg.size(linkOnly ? 1 : 0)]);
  }

  /**
   * `unlink(c)` is about to follow c's links: c must be a free cell whose header agrees with the
   * cell after it; its next link 0 or a free cell that links back; its prev link `pr` a cell (or
   * list head's slot less a header) whose next link is c, or 0 when `isHead` (an i32 condition: c is
   * the list's head).
   */
  unlinking(c: Local, isHead: Expr | undefined): Expr[] {
    const { cg, debug, L, run } = this.o;
    const m = cg.module;
    const H = L.header, W = L.word;
    const pr = () => L.prevFreeOf(c.get());
    const headsLo = run ? cg.size(run.start) : this.lo();
    return [
      debug.failIf(
        m.i32.or(cg.eqz(L.isFree(c.get())), cg.eqz(m.call(this.forwardOk(), [c.get()], cg.type("i32")))),
        "corrupt-heap",
        "a free cell's header was overwritten (an overflow of the block in front of it?)",
        c.get(),
      ),
      cg.when(nonZero(cg, L.nextFreeOf(c.get())), [this.followLink(cg.add(c.get(), cg.size(H)), L.nextFreeOf(c.get()), c.get(), false, true)]),
      m.if(
        nonZero(cg, pr()),
        debug.failIf(
          m.i32.or(
            // (Word aligned only: the front cell of a bin links back to its head's slot, less a header.)
            m.i32.or(cg.toI32(cg.and(pr(), cg.size(W - 1))), m.i32.or(cg.ltU(pr(), headsLo), cg.geU(pr(), this.hi()))),
            cg.ne(L.nextFreeOf(pr()), c.get()),
          ),
          "use-after-free",
          "a free cell's list link was overwritten (the cell it leads back to does not link to it)",
          cg.add(c.get(), cg.size(H + W)),
        ),
        isHead
          ? debug.failIf(cg.eqz(isHead), "use-after-free", "a free cell's list link was overwritten (it says the cell heads its list)", cg.add(c.get(), cg.size(H + W)))
          : undefined,
      ),
    ];
  }

  /**
   * First fit's `push` appends to the list's tail `tail` (0: none, or cell 0 when `anchored`): a
   * tail inside the heap whose next link is 0.
   */
  pushingAfter(tail: Expr, anchored: boolean): Expr[] {
    const { cg, debug, L } = this.o;
    return [
      cg.callVoid(this.helper("check_tail", () =>
        cg.function(this.o.scope(`debug/check_tail`), ["t"], "none", (f) => {
          const tl = f.param("t");
          return [
            cg.when(nonZero(cg, tl.get()), [
              debug.failIf(cg.eqz(this.inHeap(tl.get)), "corrupt-heap", "the free list's tail was overwritten", tl.get()),
            ]),
            ...(anchored ? [] : [cg.returnIf(cg.eqz(nonZero(cg, tl.get())))]),
            debug.failIf(
              nonZero(cg, L.nextFreeOf(tl.get())),
              "use-after-free",
              "a free cell's list link was overwritten (the list's last cell links on)",
              cg.add(tl.get(), cg.size(L.header)),
            ),
          ];
        }),
      ), [tail]),
    ];
  }

  /** The end sentinel's prev, `t`, read by `top()`: `last` itself, or a cell in the heap that ends at `last`. */
  topChecked(t: Local): Expr[] {
    const { cg, debug, L, last } = this.o;
    const m = cg.module;
    return [
      cg.when(cg.ne(t.get(), last.get()), [
        debug.failIf(
          m.i32.or(cg.eqz(this.inHeap(t.get)), cg.ne(cg.and(L.word0(t.get()), cg.size(~1)), last.get())),
          "corrupt-heap",
          "the heap's end sentinel was overwritten (an overflow of the last block?)",
          last.get(),
        ),
      ]),
    ];
  }

  /** At the start of `release(c)`: remembers the cell and its next before they merge. */
  releaseStart(f: FunctionScope, c: Local, end: Local): Expr[] {
    const saved = (this.released = { c: f.local(), next: f.local() });
    return [saved.c.set(c.get()), saved.next.set(end.get())];
  }

  /**
   * In `release`, once the free cell is `[c, end)`: poisons what was not free before, from the
   * freed cell's header (merged into the cell before it) or the end of its links, to the end of
   * the next cell's links (absorbed) or the freed cell's end.
   */
  releasePoison(c: Local, end: Local): Expr[] {
    const { cg, debug, L } = this.o;
    const { c: c0, next: n0 } = this.released!;
    const links = L.header + 2 * L.word;
    const from = () => cg.select(cg.eq(c.get(), c0.get()), cg.add(c0.get(), cg.size(links)), c0.get());
    const to = cg.select(cg.eq(end.get(), n0.get()), n0.get(), cg.add(n0.get(), cg.size(links)));
    return [debug.poison(from(), cg.sub(to, from()))];
  }

  /**
   * `refill` makes the top `[t, e)` one free cell, where `from` was the end sentinel (or a new
   * region's first cell): poisons what was not free before, from the old sentinel's header (or,
   * when t is that cell, the end of its links) to e.
   */
  grownPoison(t: Local, from: Local, e: Local): Expr[] {
    const { cg, debug, L } = this.o;
    const links = L.header + 2 * L.word;
    const start = () => cg.select(cg.eq(t.get(), from.get()), cg.add(from.get(), cg.size(links)), from.get());
    return [debug.poison(start(), cg.sub(e.get(), start()))];
  }

  /**
   * Free cell `c` (just unlinked) is handed out as `n` bytes (header included): its poison must be
   * intact. The memory handed out reaches `c + n`.
   */
  taken(c: Local, n: Local): Expr[] {
    const { cg, debug, L } = this.o;
    const links = L.header + 2 * L.word;
    const end = () => cg.add(c.get(), n.get());
    return [
      this.high.set(cg.maxU(end(), this.high.get(), end(), this.high.get())),
      debug.checkPoison(cg.add(c.get(), cg.size(links)), cg.sub(n.get(), cg.size(links)), "free memory was written to"),
    ];
  }

  /**
   * `resize` absorbs the free cell `next` (found behind a live block): its header must agree with
   * the cell after it, and its poison be intact. The memory handed out reaches that cell's end.
   */
  absorbed(next: Local): Expr[] {
    const { cg, debug, L } = this.o;
    const m = cg.module;
    const links = L.header + 2 * L.word;
    const after = () => L.nextOfFree(next.get());
    return [
      debug.failIf(
        cg.eqz(m.call(this.forwardOk(), [next.get()], cg.type("i32"))),
        "corrupt-heap",
        "a free cell's header was overwritten (an overflow of the block in front of it?)",
        next.get(),
      ),
      this.high.set(cg.maxU(after(), this.high.get(), after(), this.high.get())),
      debug.checkPoison(cg.add(next.get(), cg.size(links)), cg.sub(after(), cg.add(next.get(), cg.size(links))), "free memory was written to"),
    ];
  }

  /** `refill` got `pages` pages at `base` (no run): the heap's bounds include them. */
  newPages(base: Local, pages: Local): Expr[] {
    const { cg } = this.o;
    const lo = this.loVar!, hi = this.hiVar!;
    const end = () => cg.add(base.get(), cg.shl(pages.get(), cg.size(PAGE_SHIFT)));
    return [
      lo.set(cg.select(cg.module.i32.or(cg.eqz(lo.get()), cg.ltU(base.get(), lo.get())), base.get(), lo.get())),
      hi.set(cg.select(cg.gtU(end(), hi.get()), end(), hi.get())),
    ];
  }

  /**
   * The walker with every check (see the file comment and `walk.ts`). `lists` checks the free
   * lists with the {@link ListCheck} it is given and counts the cells they hold in `listed`.
   */
  emitCheck(lists: (check: ListCheck) => Expr[]): string {
    return this.o.walker.emit("check", this.o.debug.stats, { hooks: this.o.debug, lo: this.lo, hi: this.hi, lists });
  }
}

/** A pointer-width value as an i32 condition. */
const nonZero = (cg: Codegen, x: Expr) => (cg.memory64 ? cg.ne(x, cg.size(0)) : x);
