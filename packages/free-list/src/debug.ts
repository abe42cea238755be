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

/** What the walker hands a list to check. */
export interface ListCheck {
  readonly f: FunctionScope;
  /**
   * Statements that walk the null-terminated list from `head` (whose first cell's back link
   * must be `firstPrev`), checking each element, counting it, and leaving the last element in
   * `lastSeen` (0 for an empty list). `belongs(c)`, when given, is an i32 condition every
   * element must meet (its bin).
   */
  walk(head: Expr, firstPrev: Expr, belongs?: (c: Local) => Expr): Expr[];
  readonly lastSeen: Local;
  /** How many cells the walks have listed so far: free cells kept off the lists are added here. */
  readonly listed: Local;
  /** Fails as a corrupt heap at `ptr`. */
  corrupt(what: string, ptr: Expr): Expr;
}

export interface FreeListDebugOptions {
  readonly cg: Codegen;
  readonly debug: DebugHooks;
  readonly scope: (name: string) => string;
  readonly L: CellLayout;
  readonly run: ContiguousRun | undefined;
  /** Bytes at the start of the first region for the bin table (before the region record). */
  readonly tableBytes: number;
  /** The newest region's end sentinel. */
  readonly last: Var;
}

/** The free list's debug additions; see the file comment. */
export class FreeListDebug {
  /** Bytes a new region spends on its record. */
  readonly regionRecordBytes: number;
  private readonly o: FreeListDebugOptions;
  /** Lowest and highest address of the heap (run: its first cell, after the list heads, and its end). */
  private readonly lo: () => Expr;
  private readonly hi: () => Expr;
  private readonly loVar: Var | undefined;
  private readonly hiVar: Var | undefined;
  /** The newest region's record (no run), 0 before the first. */
  private readonly regions: Var | undefined;
  /** In `release`: the cell freed and the cell after it, before merging. */
  private released: { c: Local; next: Local } | undefined;

  constructor(o: FreeListDebugOptions) {
    this.o = o;
    const { cg, scope, run } = o;
    this.regionRecordBytes = run ? 0 : o.L.header;
    if (run) {
      this.lo = () => cg.size(run.start + o.tableBytes);
      this.hi = () => run.end();
    } else {
      const lo = (this.loVar = cg.global(scope("debug/lo")));
      const hi = (this.hiVar = cg.global(scope("debug/hi")));
      this.lo = lo.get;
      this.hi = hi.get;
      this.regions = cg.global(scope("debug/regions"));
    }
  }

  /** `free(ptr)`, before anything is written: traps unless `ptr` looks like a live block. */
  checkFree(f: FunctionScope, ptr: Local): Expr[] {
    const { cg, debug, L } = this.o;
    const m = cg.module;
    const H = L.header;
    const c = f.local(), w = f.local(), pv = f.local();
    const invalid = (cond: Expr, what: string) => debug.failIf(cond, "invalid-pointer", what, ptr.get());
    return [
      invalid(cg.and(ptr.get(), cg.size(H - 1)), "not an address the free list returns (misaligned)"),
      invalid(
        m.i32.or(cg.ltU(ptr.get(), cg.add(this.lo(), cg.size(H))), cg.geU(ptr.get(), this.hi())),
        "outside the heap",
      ),
      w.set(L.word0(c.tee(L.cellOf(ptr.get())))),
      debug.failIf(
        cg.eq(w.get(), cg.size(POISON_WORD)),
        "double-free",
        "the address lies in free memory: freed already (and merged with a neighbour)",
        ptr.get(),
      ),
      debug.failIf(L.isFree(c.get()), "double-free", "the block is already free", ptr.get()),
      invalid(
        m.i32.or(cg.ltU(w.get(), cg.add(c.get(), cg.size(2 * H))), cg.gtU(w.get(), cg.sub(this.hi(), cg.size(H)))),
        "no block header at this address (its end lies outside the heap)",
      ),
      invalid(cg.ne(L.prevOf(w.get(), w.get()), c.get()), "no block header at this address (the next cell does not point back to it)"),
      cg.when(cg.ne(pv.tee(L.prevOf(c.get(), c.get())), c.get()), [
        invalid(
          m.i32.or(cg.ltU(pv.get(), this.lo()), cg.geU(pv.get(), c.get())),
          "no block header at this address (its previous cell lies outside the heap)",
        ),
        invalid(
          cg.ne(cg.and(L.word0(pv.get()), cg.size(~1)), c.get()),
          "no block header at this address (the previous cell does not point to it)",
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

  /** Free cell `c` (just unlinked) is handed out as `n` bytes (header included): its poison must be intact. */
  taken(c: Expr, n: Expr): Expr[] {
    const { cg, debug, L } = this.o;
    const links = L.header + 2 * L.word;
    return [debug.checkPoison(cg.add(c, cg.size(links)), cg.sub(n, cg.size(links)), "free memory was written to")];
  }

  /** `resize` absorbs the free cell `[next, after)`: its poison must be intact. */
  absorbed(next: Expr, nextCopy: Expr, after: Expr): Expr[] {
    const { cg, debug, L } = this.o;
    const links = L.header + 2 * L.word;
    return [debug.checkPoison(cg.add(next, cg.size(links)), cg.sub(after, cg.add(nextCopy, cg.size(links))), "free memory was written to")];
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

  /** A new region starts at `base` (no run): its record goes there, and `base` moves past it. */
  newRegion(base: Local): Expr[] {
    const { cg } = this.o;
    const regions = this.regions!;
    return [cg.store(base.get(), regions.get()), regions.set(base.get()), base.set(cg.add(base.get(), cg.size(this.regionRecordBytes)))];
  }

  /**
   * The walker: see the file comment. `lists` checks the free lists with the {@link ListCheck}
   * it is given and returns how many cells they hold in `count`.
   */
  emitCheck(lists: (check: ListCheck) => Expr[]): string {
    const { cg, debug, scope, L, run, last } = this.o;
    const m = cg.module;
    const H = L.header;
    const links = H + 2 * L.word;
    const { stats } = debug;
    return cg.function(scope("check"), [], "none", (f) => {
      const r = f.local(), first = f.local(), c = f.local(), prev = f.local(), w = f.local(), next = f.local();
      const prevFree = f.local("i32"), size = f.local(), listed = f.local(), lastSeen = f.local();
      const corrupt = (what: string, ptr: Expr) => debug.fail("corrupt-heap", what, ptr);
      const corruptIf = (cond: Expr, what: string, ptr: Expr) => debug.failIf(cond, "corrupt-heap", what, ptr);
      const cells = f.label("cells"), regionsLoop = f.label("regions"), done = f.label("done");

      // One region, from `first` to its end sentinel.
      const walkRegion = [
        c.set(first.get()),
        prev.set(first.get()),
        prevFree.set(cg.i32(0)),
        m.block(done, [
          m.loop(
            cells,
            cg.block([
              corruptIf(cg.and(c.get(), cg.size(H - 1)), "a cell is misaligned", c.get()),
              corruptIf(cg.ne(L.prevOf(c.get(), c.get()), prev.get()), "a cell's link to the previous cell disagrees with that cell", c.get()),
              // The end sentinel: word 0 is 0.
              m.br(done, cg.eqz(w.tee(L.word0(c.get())))),
              next.set(cg.and(w.get(), cg.size(~1))),
              corruptIf(
                m.i32.or(cg.ltU(next.get(), cg.add(c.get(), cg.size(2 * H))), cg.gtU(next.get(), cg.sub(this.hi(), cg.size(H)))),
                "a cell's link to the next cell points outside the region",
                c.get(),
              ),
              size.set(cg.sub(next.get(), cg.add(c.get(), cg.size(H)))),
              cg.when(
                L.isFree(c.get()),
                [
                  corruptIf(prevFree.get(), "two free cells are neighbours (free did not merge them)", c.get()),
                  debug.checkPoison(cg.add(c.get(), cg.size(links)), cg.sub(next.get(), cg.add(c.get(), cg.size(links))), "free memory was written to"),
                  stats.freeBlocks.set(cg.add(stats.freeBlocks.get(), cg.size(1))),
                  stats.freeBytes.set(cg.add(stats.freeBytes.get(), size.get())),
                  stats.largestFree.set(cg.select(cg.gtU(size.get(), stats.largestFree.get()), size.get(), stats.largestFree.get())),
                  prevFree.set(cg.i32(1)),
                ],
                [
                  stats.usedBlocks.set(cg.add(stats.usedBlocks.get(), cg.size(1))),
                  stats.usedBytes.set(cg.add(stats.usedBytes.get(), size.get())),
                  prevFree.set(cg.i32(0)),
                ],
              ),
              prev.set(c.get()),
              c.set(next.get()),
              m.br(cells),
            ]),
          ),
        ]),
      ];

      const regionsWalk = run
        ? [
            first.set(cg.size(run.start + this.o.tableBytes)),
            ...walkRegion,
            // The sentinel is `last`, at the end of the run once the region has cells.
            corruptIf(
              m.i32.or(
                cg.ne(c.get(), last.get()),
                m.i32.and(cg.ne(c.get(), first.get()), cg.ne(cg.add(c.get(), cg.size(H)), run.end())),
              ),
              "the region's end sentinel is not where the region ends",
              c.get(),
            ),
          ]
        : [
            r.set(this.regions!.get()),
            m.loop(
              regionsLoop,
              cg.when(r.get(), [
                first.set(cg.add(r.get(), cg.size(this.regionRecordBytes))),
                ...walkRegion,
                // Regions end on a page boundary; the newest one's sentinel is `last`.
                corruptIf(
                  m.i32.or(
                    cg.ne(cg.and(cg.add(c.get(), cg.size(H)), cg.size(PAGE_SIZE - 1)), cg.size(0)),
                    m.i32.and(cg.eq(r.get(), this.regions!.get()), cg.ne(c.get(), last.get())),
                  ),
                  "a region's end sentinel is not where the region ends",
                  c.get(),
                ),
                r.set(cg.load(r.get())),
                m.br(regionsLoop),
              ]),
            ),
          ];

      // A list walk: every element a free cell inside the heap, linked both ways, never more
      // elements than free cells (a cycle would be endless).
      const walkList = (head: Expr, firstPrev: Expr, belongs?: (c: Local) => Expr): Expr[] => {
        const loop = f.label("list");
        return [
          lastSeen.set(cg.size(0)),
          c.set(head),
          prev.set(firstPrev),
          m.loop(
            loop,
            cg.when(c.get(), [
              corruptIf(
                m.i32.or(m.i32.or(cg.ltU(c.get(), this.lo()), cg.geU(c.get(), this.hi())), cg.and(c.get(), cg.size(H - 1))),
                "a free list links to an address outside the heap",
                c.get(),
              ),
              corruptIf(cg.eqz(L.isFree(c.get())), "a free list holds a cell that is not free", c.get()),
              corruptIf(cg.ne(L.prevFreeOf(c.get()), prev.get()), "a free list's back link disagrees", c.get()),
              ...(belongs ? [corruptIf(cg.eqz(belongs(c)), "a free list holds a cell of another size range", c.get())] : []),
              listed.set(cg.add(listed.get(), cg.size(1))),
              corruptIf(cg.gtU(listed.get(), stats.freeBlocks.get()), "the free lists hold more cells than are free (a cycle?)", c.get()),
              lastSeen.set(c.get()),
              prev.set(c.get()),
              c.set(L.nextFreeOf(c.get())),
              m.br(loop),
            ]),
          ),
        ];
      };

      return [
        ...Object.values(stats).map((s) => s.set(cg.size(0))),
        ...regionsWalk,
        listed.set(cg.size(0)),
        ...lists({ f, walk: walkList, lastSeen, listed, corrupt }),
        corruptIf(cg.ne(listed.get(), stats.freeBlocks.get()), "a free cell is on no free list", cg.size(0)),
      ];
    });
  }
}
