/**
 * The free list's heap walker, shared by the debug build (`check`, with every check: see
 * `debug.ts`) and the release build with heap statistics (`walk`, with none: `stats` in
 * `@alloc/core`). It visits every cell of every region and counts the used and free cells, their
 * payload bytes and the largest free one; the debug build also walks the free lists.
 *
 * Regions: over a contiguous run there is one region, from the run's start (after the list
 * heads) to `last`. Otherwise each region starts with a record (one header: the previous
 * region's record, then 0) so that the walker can find every region: `regionRecordBytes` more
 * per region, in debug and stats builds only.
 */
import { PAGE_SIZE, type CellLayout, type Codegen, type ContiguousRun, type DebugHooks, type Expr, type FunctionScope, type Local, type StatVars, type Var } from "@alloc/core";

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

/** The debug build's part of the walk: its hooks, the heap's bounds, and the lists' checks. */
export interface WalkChecks {
  readonly hooks: DebugHooks;
  /** Lowest and highest address of the heap. */
  lo(): Expr;
  hi(): Expr;
  /** Checks the free lists with the {@link ListCheck} it is given. */
  lists(check: ListCheck): Expr[];
}

export interface FreeListWalkerOptions {
  readonly cg: Codegen;
  readonly scope: (name: string) => string;
  readonly L: CellLayout;
  readonly run: ContiguousRun | undefined;
  /** The cell grid (the free list's G): every cell starts granule - header past a multiple of it. Default: the header. */
  readonly granule?: number;
}

/** The region records and the walker; see the file comment. */
export class FreeListWalker {
  /** Bytes a new region spends on its record (0 over a run). */
  readonly regionRecordBytes: number;
  /** The newest region's record (no run), 0 before the first. */
  readonly regions: Var | undefined;
  /** Bytes at the start of the first region for the list heads (see {@link bind}). */
  private tableBytes = 0;
  private readonly o: FreeListWalkerOptions & { readonly last: Var };

  constructor(o: FreeListWalkerOptions) {
    const { cg, scope, run } = o;
    this.o = { ...o, last: cg.globalVar(scope("last")) };
    this.regionRecordBytes = run ? 0 : o.L.header;
    this.regions = run ? undefined : cg.global(scope("regions"));
  }

  /** The lists take `tableBytes` at the start of the first region. */
  bind(tableBytes: number): void {
    this.tableBytes = tableBytes;
  }

  /** A new region starts at `base` (no run): its record goes there, and `base` moves past it. */
  newRegion(base: Local): Expr[] {
    const { cg } = this.o;
    const regions = this.regions!;
    return [cg.store(base.get(), regions.get()), regions.set(base.get()), base.set(cg.add(base.get(), cg.size(this.regionRecordBytes)))];
  }

  /**
   * Emits the walker `name`: it sets `vars` from every region's cells, and with `debug`, checks
   * every cell (alignment, links both ways, no two free neighbours, poison, each region's end
   * sentinel) and the free lists.
   */
  emit(name: string, vars: StatVars, debug?: WalkChecks): string {
    const { cg, scope, L, run, last } = this.o;
    const m = cg.module;
    const H = L.header;
    const links = H + 2 * L.word;
    return cg.function(scope(name), [], "none", (f) => {
      const r = f.local(), first = f.local(), c = f.local(), prev = f.local(), w = f.local(), next = f.local();
      const prevFree = f.local("i32"), size = f.local(), listed = f.local(), lastSeen = f.local();
      // Without checks (a stats build), every check is left out.
      const corrupt = (what: string, ptr: Expr) => (debug ? debug.hooks.fail("corrupt-heap", what, ptr) : m.nop());
      const corruptIf = (cond: Expr, what: string, ptr: Expr) => (debug ? debug.hooks.failIf(cond, "corrupt-heap", what, ptr) : m.nop());
      const hi = () => (debug ? debug.hi() : cg.size(0));
      const lo = () => (debug ? debug.lo() : cg.size(0));
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
              corruptIf(
                (this.o.granule ?? H) > H ? cg.and(cg.add(c.get(), cg.size(H)), cg.size(this.o.granule! - 1)) : cg.and(c.get(), cg.size(H - 1)),
                "a cell is misaligned",
                c.get(),
              ),
              corruptIf(cg.ne(L.prevOf(c.get(), c.get()), prev.get()), "a cell's link to the previous cell disagrees with that cell", c.get()),
              // The end sentinel: word 0 is 0.
              m.br(done, cg.eqz(w.tee(L.word0(c.get())))),
              next.set(cg.and(w.get(), cg.size(~1))),
              corruptIf(
                m.i32.or(cg.ltU(next.get(), cg.add(c.get(), cg.size(2 * H))), cg.gtU(next.get(), cg.sub(hi(), cg.size(H)))),
                "a cell's link to the next cell points outside the region",
                c.get(),
              ),
              size.set(cg.sub(next.get(), cg.add(c.get(), cg.size(H)))),
              cg.when(
                L.isFree(c.get()),
                [
                  corruptIf(prevFree.get(), "two free cells are neighbours (free did not merge them)", c.get()),
                  debug ? debug.hooks.checkPoison(cg.add(c.get(), cg.size(links)), cg.sub(next.get(), cg.add(c.get(), cg.size(links))), "free memory was written to") : m.nop(),
                  vars.freeBlocks.set(cg.add(vars.freeBlocks.get(), cg.size(1))),
                  vars.freeBytes.set(cg.add(vars.freeBytes.get(), size.get())),
                  vars.largestFree.set(cg.select(cg.gtU(size.get(), vars.largestFree.get()), size.get(), vars.largestFree.get())),
                  prevFree.set(cg.i32(1)),
                ],
                [
                  vars.usedBlocks.set(cg.add(vars.usedBlocks.get(), cg.size(1))),
                  vars.usedBytes.set(cg.add(vars.usedBytes.get(), size.get())),
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
            first.set(cg.size(run.start + this.tableBytes)),
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
                m.i32.or(m.i32.or(cg.ltU(c.get(), lo()), cg.geU(c.get(), hi())), cg.cond(cg.and(c.get(), cg.size(H - 1)))),
                "a free list links to an address outside the heap",
                c.get(),
              ),
              corruptIf(cg.eqz(L.isFree(c.get())), "a free list holds a cell that is not free", c.get()),
              corruptIf(cg.ne(L.prevFreeOf(c.get()), prev.get()), "a free list's back link disagrees", c.get()),
              ...(belongs ? [corruptIf(cg.eqz(belongs(c)), "a free list holds a cell of another size range", c.get())] : []),
              listed.set(cg.add(listed.get(), cg.size(1))),
              corruptIf(cg.gtU(listed.get(), vars.freeBlocks.get()), "the free lists hold more cells than are free (a cycle?)", c.get()),
              lastSeen.set(c.get()),
              prev.set(c.get()),
              c.set(L.nextFreeOf(c.get())),
              m.br(loop),
            ]),
          ),
        ];
      };

      return [
        ...Object.values(vars).map((s) => s.set(cg.size(0))),
        ...regionsWalk,
        // The lists are walked only to check them.
        ...(debug
          ? [
              listed.set(cg.size(0)),
              ...debug.lists({ f, walk: walkList, lastSeen, listed, corrupt }),
              corruptIf(cg.ne(listed.get(), vars.freeBlocks.get()), "a free cell is on no free list", cg.size(0)),
            ]
          : []),
      ];
    });
  }
}
