/**
 * Size classes' debug build: what `size-classes.ts` adds when `ctx.debug` is set. Release builds
 * never call anything here.
 *
 * - Headers are stored XOR {@link HEADER_MAGIC}. A free small block's header is its span's
 *   address | 2 (a live one's is the span's address, a large one's is odd), so `free` sees a
 *   double free. Its payload, but for the list link in its first word, is poisoned; popping it
 *   checks both the mark and the poison. A freed large block's header is marked too (| 2, so
 *   its low bits are 3), and a header that reads as poison is memory the layer below took back:
 *   both are reported as double frees.
 * - Canaries: small blocks' headers have room of the minimum alignment in front (`canaryRoom`:
 *   the classes and usable sizes stay the release build's), whose first word holds
 *   {@link CANARY}, so a write of a few bytes past a block's end is caught when the block is
 *   freed, when the next block is handed out, and by the walker.
 * - Spans carry three more words: a mark (their address XOR {@link SPAN_MAGIC}), and the links
 *   of a list of every span, which the walker walks.
 * - `free(ptr)` checks the address is aligned and inside memory, then its header: a small
 *   block's must name a span (its mark intact) that holds a block at `ptr`; a large block's must
 *   fit the gap in front of the block. A large block then goes to the layer below, whose own
 *   checks see the rest.
 * - The walker (`check`) visits every span: its header (class, capacity, bump pointer), every
 *   block it ever handed out (live: header and canary; free: mark, canary and poison), its list
 *   of free blocks (each a free block of the span, no more than it has), and that the blocks in
 *   use and available add up; then every class list (back links, each span on the right list,
 *   with a block available) and the spare spans. Statistics: used = small and large blocks in
 *   use; free = blocks the spans can hand out without asking the parent.
 */
import { POISON_WORD, type Codegen, type DebugHooks, type Expr, type FunctionScope, type Local, type Var } from "@alloc/core";
import type { layoutFor } from "./size-classes.ts";

/** Bit 1 of a header: the block is free (a small block on its span's list, or a large block freed). */
export const SMALL_FREE = 2;
/**
 * Debug builds store every header XOR this: a zero word (or most stray data) then decodes to no
 * valid header, so freeing an address inside a zeroed block is caught.
 */
export const HEADER_MAGIC = 0x5a5a0000;
/** A span's mark is its address XOR this. */
export const SPAN_MAGIC = 0x5ba40000;
/** The word in the pad in front of a small block's header. */
export const CANARY = 0x7e57ab1e;

export interface SizeClassesDebugOptions {
  readonly cg: Codegen;
  readonly debug: DebugHooks;
  readonly scope: (name: string) => string;
  readonly classes: number;
  /** Spares kept (0 when spans are kept for good, or given back at once). */
  readonly spareSpans: number;
  /** How many times a class's spans double (the largest grade). */
  readonly spanDoublings: number;
  /** Spans are never given back (the parent cannot reuse them). */
  readonly keepSpans: boolean;
  readonly minAlign: number;
  /** An upper bound of the gap between a large block's start and its payload. */
  readonly maxLargeHeader: number;
  readonly layout: ReturnType<typeof layoutFor>;
  /** The class table's address (0 before the first span). */
  readonly table: Var;
  /** The byte size of the class whose table offset is `h()`. */
  readonly classSize: (h: () => Expr) => Expr;
  /** The header of the block at `ptr` (decoded), its store, and the size word of a large block. */
  readonly headerOf: (ptr: Expr) => Expr;
  readonly setHeader: (ptr: Expr, h: Expr) => Expr;
  readonly sizeWordAt: (ptr: Expr) => Expr;
}

export class SizeClassesDebug {
  /** Bytes a span keeps after its last block: room for the canary behind it. */
  readonly spanTail: number;
  private readonly o: SizeClassesDebugOptions;
  private readonly spans: Var;
  private readonly spanCount: Var;
  private readonly pooledCount: Var;
  private readonly smallUsed: Var;
  private readonly largeUsed: Var;
  private readonly largeBytes: Var;

  constructor(o: SizeClassesDebugOptions) {
    this.o = o;
    const { cg, scope } = o;
    this.spanTail = o.layout.canaryRoom;
    this.spans = cg.global(scope("debug/spans"));
    this.spanCount = cg.global(scope("debug/span_count"));
    this.pooledCount = cg.global(scope("debug/pooled_count"));
    this.smallUsed = cg.global(scope("debug/small_used"));
    this.largeUsed = cg.global(scope("debug/large_used"));
    this.largeBytes = cg.global(scope("debug/large_bytes"));
  }

  private get(s: Expr, field: Parameters<SizeClassesDebugOptions["layout"]["at"]>[0]): Expr {
    return this.o.cg.load(s, this.o.layout.at(field));
  }
  private set(s: Expr, field: Parameters<SizeClassesDebugOptions["layout"]["at"]>[0], value: Expr): Expr {
    return this.o.cg.store(s, value, this.o.layout.at(field));
  }
  private add(v: Var, n: Expr): Expr {
    return v.set(this.o.cg.add(v.get(), n));
  }
  private sub(v: Var, n: Expr): Expr {
    return v.set(this.o.cg.sub(v.get(), n));
  }

  /** An i32 condition: `ptr` is misaligned, or `ptr - W` .. `ptr + extra` is not inside memory. */
  private outside(ptr: () => Expr, extra = 0): Expr {
    const { cg, minAlign } = this.o;
    const m = cg.module;
    return m.i32.or(
      m.i32.or(cg.ne(cg.and(ptr(), cg.size(minAlign - 1)), cg.size(0)), cg.ltU(ptr(), cg.size(cg.ptrBytes))),
      cg.gtU(cg.add(ptr(), cg.size(extra)), cg.shl(cg.memorySize(), cg.size(16))),
    );
  }

  /** An i32 condition: `s` is not the address of a span (its mark is not intact). */
  private notSpan(s: () => Expr): Expr {
    const { cg, layout } = this.o;
    // (An `if`, not an `or`: the mark is read only when it lies inside memory.)
    return cg.module.if(this.outside(s, layout.spanHeader), cg.i32(1), cg.ne(this.get(s(), "mark"), cg.xor(s(), cg.size(SPAN_MAGIC))));
  }

  /** The address of the canary in front of the small block at `p`. */
  private canaryAt(p: Expr): Expr {
    return this.o.cg.sub(p, this.o.cg.size(this.o.layout.smallHeader));
  }
  private canaryBroken(p: Expr): Expr {
    const { cg } = this.o;
    return cg.module.i32.ne(cg.load32(this.canaryAt(p)), cg.i32(CANARY));
  }
  private failIfCanary(p: () => Expr, what: string): Expr[] {
    const { debug } = this.o;
    return [debug.failIf(this.canaryBroken(p()), "corrupt-heap", what, this.canaryAt(p()))];
  }

  /** Span `s` was made (its fields set): marked, on the list of every span, its first canary set. */
  spanMade(s: Local): Expr[] {
    const { cg, layout } = this.o;
    return [
      this.set(s.get(), "mark", cg.xor(s.get(), cg.size(SPAN_MAGIC))),
      this.set(s.get(), "allNext", this.spans.get()),
      this.set(s.get(), "allPrev", cg.size(0)),
      cg.when(this.spans.get(), [this.set(this.spans.get(), "allPrev", s.get())]),
      this.spans.set(s.get()),
      this.add(this.spanCount, cg.size(1)),
      cg.store32(this.canaryAt(cg.add(s.get(), cg.size(layout.firstBlock))), cg.i32(CANARY)),
    ];
  }

  /** Over a parent that keeps spans: span `s`, empty, goes on the pool (its slot 0 says so). */
  pooled(s: Local): Expr[] {
    return [this.set(s.get(), "slot", this.o.cg.size(0)), this.add(this.pooledCount, this.o.cg.size(1))];
  }
  /** ...and comes off it, to be made again (not counted twice). */
  unpooled(s: Local): Expr[] {
    const { cg } = this.o;
    return [...this.spanReleased(s), this.sub(this.pooledCount, cg.size(1))];
  }

  /** Span `s` goes back to the parent: off the list of every span, its mark cleared. */
  spanReleased(s: Local): Expr[] {
    const { cg } = this.o;
    return [
      cg.if(
        this.get(s.get(), "allPrev"),
        this.set(this.get(s.get(), "allPrev"), "allNext", this.get(s.get(), "allNext")),
        this.spans.set(this.get(s.get(), "allNext")),
      ),
      cg.when(this.get(s.get(), "allNext"), [this.set(this.get(s.get(), "allNext"), "allPrev", this.get(s.get(), "allPrev"))]),
      this.set(s.get(), "mark", cg.size(0)),
      this.sub(this.spanCount, cg.size(1)),
    ];
  }

  /**
   * Before the free block `p` at the front of span `s`'s list is followed (its link read): it must
   * be a block span `s` has handed out (above the span's header, below its next unused block,
   * aligned), or a write after free overwrote the link that led here.
   */
  beforePop(p: Local, s: Local): Expr[] {
    const { cg, debug, minAlign } = this.o;
    const m = cg.module;
    return [
      debug.failIf(
        m.i32.or(
          m.i32.or(cg.leU(p.get(), s.get()), cg.geU(p.get(), this.get(s.get(), "top"))),
          cg.ne(cg.and(p.get(), cg.size(minAlign - 1)), cg.size(0)),
        ),
        "use-after-free",
        "a free block's link was overwritten (a write after free): it leads outside its span",
        p.get(),
      ),
    ];
  }

  /** The free block `p` of span `s` was popped from its span's list: it must be marked and poisoned. */
  popped(p: Local, s: Local): Expr[] {
    const { cg, debug, headerOf } = this.o;
    const W = cg.ptrBytes;
    return [
      debug.failIf(
        cg.ne(headerOf(p.get()), cg.or(s.get(), cg.size(SMALL_FREE))),
        "corrupt-heap",
        "a span's list holds a block that is not one of its free blocks",
        p.get(),
      ),
      debug.checkPoison(cg.add(p.get(), cg.size(W)), cg.sub(this.get(s.get(), "size"), cg.size(W)), "free memory was written to"),
      ...this.failIfCanary(p.get, "a write past the end of the block before this one (its canary is broken)"),
      this.o.setHeader(p.get(), s.get()),
      this.add(this.smallUsed, cg.size(1)),
    ];
  }

  /** A block `p` of span `s` was handed out for the first time (its header set). */
  carved(p: Local, s: Local): Expr[] {
    const { cg } = this.o;
    return [
      ...this.failIfCanary(p.get, "a write past the end of the block before this one (its canary is broken)"),
      cg.store32(cg.add(p.get(), this.get(s.get(), "size")), cg.i32(CANARY)),
      this.add(this.smallUsed, cg.size(1)),
    ];
  }

  /** A large block of `size` bytes was handed out. */
  largeTaken(size: Local): Expr[] {
    return [this.add(this.largeUsed, this.o.cg.size(1)), this.add(this.largeBytes, size.get())];
  }

  /** A large block at `ptr` changes size to `size` (before its size word is written). */
  largeResized(ptr: Local, size: Local): Expr[] {
    const { cg, sizeWordAt } = this.o;
    return [this.largeBytes.set(cg.add(cg.sub(this.largeBytes.get(), cg.load(sizeWordAt(ptr.get()))), size.get()))];
  }

  /**
   * `free(ptr)`, first: traps unless the header is a live block's. For a small block, marks it
   * free and poisons it (the release code then links it); for a large one, marks its header
   * freed and updates the counters. `h` receives the header: the span, or the parent's block + 1.
   */
  free(f: FunctionScope, ptr: Local, h: Local): Expr[] {
    return this.checkBlock(f, ptr, h, true);
  }

  /**
   * The checks of `free` (and, with `mark` false, of `malloc_usable_size`: the same checks, and
   * nothing written): `ptr` must be a live block, small or large.
   */
  checkBlock(f: FunctionScope, ptr: Local, h: Local, mark: boolean): Expr[] {
    const { cg, debug, headerOf, sizeWordAt, layout, maxLargeHeader } = this.o;
    const m = cg.module;
    const W = cg.ptrBytes;
    const gap = f.local(), first = f.local(), size = f.local();
    const invalid = (cond: Expr, what: string) => debug.failIf(cond, "invalid-pointer", what, ptr.get());
    const low2 = () => cg.and(h.get(), cg.size(3));
    const s = () => cg.and(h.get(), cg.size(-4));
    return [
      invalid(this.outside(ptr.get), "not an address size-classes returns (misaligned or outside memory)"),
      debug.failIf(
        cg.eq(cg.load(cg.sub(ptr.get(), cg.size(W))), cg.size(POISON_WORD)),
        "double-free",
        "the block is already free (its memory went back to the layer below)",
        ptr.get(),
      ),
      h.set(headerOf(ptr.get())),
      debug.failIf(cg.eq(low2(), cg.size(3)), "double-free", "the block is already free (a large block)", ptr.get()),
      cg.when(
        cg.toI32(cg.and(h.get(), cg.size(1))),
        [
          // A large header: the block below starts at most maxLargeHeader bytes before ptr.
          invalid(
            m.i32.or(
              cg.ltU(gap.tee(cg.sub(ptr.get(), cg.sub(h.get(), cg.size(1)))), cg.size(layout.largeHeader)),
              cg.gtU(gap.get(), cg.size(maxLargeHeader)),
            ),
            "no block header at this address (a large header that does not fit)",
          ),
          ...(mark
            ? [
                this.o.setHeader(ptr.get(), cg.or(h.get(), cg.size(SMALL_FREE))),
                this.sub(this.largeUsed, cg.size(1)),
                this.sub(this.largeBytes, cg.load(sizeWordAt(ptr.get()))),
              ]
            : []),
        ],
        [
          invalid(this.notSpan(s), "no block header at this address (no span)"),
          // A block the span handed out: at first + k * stride, below top.
          first.set(cg.add(s(), cg.size(layout.firstBlock))),
          size.set(this.get(s(), "size")),
          invalid(
            m.i32.or(
              m.i32.or(cg.ltU(ptr.get(), first.get()), cg.geU(ptr.get(), this.get(s(), "top"))),
              cg.ne(this.remU(cg.sub(ptr.get(), first.get()), cg.add(size.get(), cg.size(layout.smallHeader))), cg.size(0)),
            ),
            "no block header at this address (not a block of its span)",
          ),
          debug.failIf(cg.eq(low2(), cg.size(SMALL_FREE)), "double-free", "the block is already free", ptr.get()),
          ...this.failIfCanary(() => cg.add(ptr.get(), cg.add(size.get(), cg.size(layout.smallHeader))), "a write past the end of the block (the canary after it is broken)"),
          ...this.failIfCanary(ptr.get, "a write past the end of the block before this one (its canary is broken)"),
          ...(mark
            ? [
                h.set(s()),
                this.o.setHeader(ptr.get(), cg.or(h.get(), cg.size(SMALL_FREE))),
                debug.poison(cg.add(ptr.get(), cg.size(W)), cg.sub(size.get(), cg.size(W))),
                this.sub(this.smallUsed, cg.size(1)),
              ]
            : []),
        ],
      ),
    ];
  }

  private remU(a: Expr, b: Expr): Expr {
    const m = this.o.cg.module;
    return this.o.cg.memory64 ? m.i64.rem_u(a, b) : m.i32.rem_u(a, b);
  }
  private divU(a: Expr, b: Expr): Expr {
    const m = this.o.cg.module;
    return this.o.cg.memory64 ? m.i64.div_u(a, b) : m.i32.div_u(a, b);
  }

  /** The walker: see the file comment. */
  emitCheck(): string {
    const { cg, debug, scope, classes, spareSpans, table, classSize, headerOf, layout } = this.o;
    const m = cg.module;
    const W = cg.ptrBytes;
    const { stats } = debug;
    return cg.function(scope("check"), [], "none", (f) => {
      const s = f.local(), k = f.local(), size = f.local(), stride = f.local(), first = f.local(), top = f.local();
      const p = f.local(), hdr = f.local(), live = f.local(), marked = f.local(), n = f.local(), avail = f.local();
      const seen = f.local(), liveAll = f.local(), withFree = f.local(), listed = f.local(), empty = f.local(), spares = f.local();
      const prev = f.local(), pooledSeen = f.local(), counted = f.local();
      const spanLoop = f.label("spans"), blockLoop = f.label("blocks"), freeLoop = f.label("free");
      const classLoop = f.label("classes"), listLoop = f.label("list"), spareLoop = f.label("spares");
      const corruptIf = (cond: Expr, what: string, ptr: Expr) => debug.failIf(cond, "corrupt-heap", what, ptr);
      const max = (v: Var, x: () => Expr) => v.set(cg.select(cg.gtU(x(), v.get()), x(), v.get()));
      const isFree = () => cg.eq(hdr.get(), cg.or(s.get(), cg.size(SMALL_FREE)));
      return [
        ...Object.values(stats).map((v) => v.set(cg.size(0))),
        seen.set(cg.size(0)),
        pooledSeen.set(cg.size(0)),
        liveAll.set(cg.size(0)),
        withFree.set(cg.size(0)),
        empty.set(cg.size(0)),
        spares.set(cg.size(0)),
        // Every span.
        s.set(this.spans.get()),
        m.loop(
          spanLoop,
          cg.when(s.get(), [
            corruptIf(this.notSpan(s.get), "a span's header is broken (its mark)", s.get()),
            seen.set(cg.add(seen.get(), cg.size(1))),
            corruptIf(cg.gtU(seen.get(), this.spanCount.get()), "the list of spans is longer than the spans made (a cycle?)", s.get()),
            // A pooled span (over a parent that keeps spans) is empty and on no class list.
            cg.when(cg.eqz(this.get(s.get(), "slot")), [
              pooledSeen.set(cg.add(pooledSeen.get(), cg.size(1))),
              s.set(this.get(s.get(), "allNext")),
              m.br(spanLoop),
            ]),
            k.set(cg.sub(this.get(s.get(), "slot"), table.get())),
            corruptIf(
              m.i32.or(
                m.i32.or(cg.geU(k.get(), cg.size(classes * W)), cg.ne(cg.and(k.get(), cg.size(W - 1)), cg.size(0))),
                cg.ne(size.tee(this.get(s.get(), "size")), classSize(k.get)),
              ),
              "a span's header is broken (its class)",
              s.get(),
            ),
            stride.set(cg.add(size.get(), cg.size(layout.smallHeader))),
            first.set(cg.add(s.get(), cg.size(layout.firstBlock))),
            top.set(this.get(s.get(), "top")),
            avail.set(this.get(s.get(), "avail")),
            corruptIf(
              m.i32.or(
                m.i32.or(cg.eqz(this.get(s.get(), "cap")), cg.gtU(avail.get(), this.get(s.get(), "cap"))),
                m.i32.or(
                  m.i32.or(cg.ltU(top.get(), first.get()), cg.ne(this.remU(cg.sub(top.get(), first.get()), stride.get()), cg.size(0))),
                  cg.gtU(this.divU(cg.sub(top.get(), first.get()), stride.get()), this.get(s.get(), "cap")),
                ),
              ),
              "a span's header is broken (its capacity, available blocks or top)",
              s.get(),
            ),
            // Every block it handed out: live, or free (marked and poisoned); canaries intact.
            live.set(cg.size(0)),
            marked.set(cg.size(0)),
            p.set(first.get()),
            m.loop(
              blockLoop,
              cg.block([
                ...this.failIfCanary(p.get, "a write past the end of a block (the canary after it is broken)"),
                cg.when(cg.ltU(p.get(), top.get()), [
                  hdr.set(headerOf(p.get())),
                  m.if(
                    cg.eq(hdr.get(), s.get()),
                    live.set(cg.add(live.get(), cg.size(1))),
                    cg.block([
                      corruptIf(cg.eqz(isFree()), "a small block's header is broken", p.get()),
                      marked.set(cg.add(marked.get(), cg.size(1))),
                      debug.checkPoison(cg.add(p.get(), cg.size(W)), cg.sub(size.get(), cg.size(W)), "free memory was written to"),
                    ]),
                  ),
                  p.set(cg.add(p.get(), stride.get())),
                  m.br(blockLoop),
                ]),
              ]),
            ),
            // Its list of free blocks: exactly the blocks marked free.
            n.set(cg.size(0)),
            p.set(this.get(s.get(), "free")),
            m.loop(
              freeLoop,
              cg.when(p.get(), [
                corruptIf(
                  m.i32.or(
                    m.i32.or(cg.ltU(p.get(), first.get()), cg.geU(p.get(), top.get())),
                    cg.ne(this.remU(cg.sub(p.get(), first.get()), stride.get()), cg.size(0)),
                  ),
                  "a span's list links to an address that is not one of its blocks",
                  p.get(),
                ),
                hdr.set(headerOf(p.get())),
                corruptIf(cg.eqz(isFree()), "a span's list holds a block that is not free", p.get()),
                n.set(cg.add(n.get(), cg.size(1))),
                corruptIf(cg.gtU(n.get(), marked.get()), "a span's list holds more blocks than are free (a cycle?)", p.get()),
                p.set(cg.load(p.get())),
                m.br(freeLoop),
              ]),
            ),
            corruptIf(cg.ne(n.get(), marked.get()), "a free block is missing from its span's list", s.get()),
            corruptIf(
              cg.ne(cg.add(live.get(), avail.get()), this.get(s.get(), "cap")),
              "a span's blocks in use and available do not add up to its capacity",
              s.get(),
            ),
            // On its class's list exactly when it has a block available.
            cg.when(avail.get(), [
              withFree.set(cg.add(withFree.get(), cg.size(1))),
              stats.freeBlocks.set(cg.add(stats.freeBlocks.get(), avail.get())),
              stats.freeBytes.set(cg.add(stats.freeBytes.get(), cg.mul(avail.get(), size.get()))),
              max(stats.largestFree, size.get),
            ]),
            ...(spareSpans > 0 ? [cg.when(this.get(s.get(), "spare"), [spares.set(cg.add(spares.get(), cg.size(1)))])] : []),
            // An empty span that is not a spare is its class's only span, of the first size.
            cg.when(
              m.i32.and(cg.eqz(live.get()), spareSpans > 0 ? cg.eqz(this.get(s.get(), "spare")) : cg.i32(1)),
              [
                empty.set(cg.add(empty.get(), cg.size(1))),
                corruptIf(
                  m.i32.or(cg.ne(cg.load(this.get(s.get(), "slot"), layout.countAt), cg.size(1)), cg.ne(this.get(s.get(), "grade"), cg.size(0))),
                  "an empty span is kept that is neither a spare nor its class's only span of the first size",
                  s.get(),
                ),
              ],
            ),
            corruptIf(cg.gtU(this.get(s.get(), "grade"), cg.size(this.o.spanDoublings)), "a span's header is broken (its grade)", s.get()),
            liveAll.set(cg.add(liveAll.get(), live.get())),
            stats.usedBytes.set(cg.add(stats.usedBytes.get(), cg.mul(live.get(), size.get()))),
            s.set(this.get(s.get(), "allNext")),
            m.br(spanLoop),
          ]),
        ),
        corruptIf(cg.ne(seen.get(), this.spanCount.get()), "spans are missing from the list of spans", seen.get()),
        corruptIf(cg.ne(pooledSeen.get(), this.pooledCount.get()), "the pool of empty spans does not add up", pooledSeen.get()),
        corruptIf(cg.ne(liveAll.get(), this.smallUsed.get()), "small blocks in use do not add up (one lost, or handed out twice)", liveAll.get()),
        ...(this.o.keepSpans ? [] : [corruptIf(cg.gtU(empty.get(), cg.size(classes)), "more empty spans are kept than there are classes", empty.get())]),
        // Every class list: spans of its class with a block available, back links consistent.
        listed.set(cg.size(0)),
        counted.set(cg.size(0)),
        cg.when(table.get(), [
          k.set(cg.size(0)),
          m.loop(
            classLoop,
            cg.when(cg.ltU(k.get(), cg.size(classes * W)), [
              prev.set(cg.add(table.get(), k.get())),
              counted.set(cg.add(counted.get(), cg.load(prev.get(), layout.countAt))),
              s.set(cg.load(prev.get())),
              m.loop(
                listLoop,
                cg.when(s.get(), [
                  corruptIf(this.notSpan(s.get), "a class list links to something that is not a span", s.get()),
                  corruptIf(
                    m.i32.or(
                      m.i32.or(cg.ne(this.get(s.get(), "prev"), prev.get()), cg.ne(this.get(s.get(), "slot"), cg.add(table.get(), k.get()))),
                      cg.eqz(this.get(s.get(), "avail")),
                    ),
                    "a class list holds a span of another class, a full one, or its back link is broken",
                    s.get(),
                  ),
                  listed.set(cg.add(listed.get(), cg.size(1))),
                  corruptIf(cg.gtU(listed.get(), withFree.get()), "the class lists hold more spans than have free blocks (a cycle?)", s.get()),
                  prev.set(s.get()),
                  s.set(this.get(s.get(), "next")),
                  m.br(listLoop),
                ]),
              ),
              k.set(cg.add(k.get(), cg.size(W))),
              m.br(classLoop),
            ]),
          ),
          // The spares: spans, each marked so.
          ...(spareSpans > 0
            ? [
                k.set(cg.size(0)),
                n.set(cg.size(0)),
                m.loop(
                  spareLoop,
                  cg.when(cg.ltU(k.get(), cg.size(spareSpans * W)), [
                    cg.when(s.tee(cg.load(cg.add(table.get(), cg.add(k.get(), cg.size(layout.sparesAt))))), [
                      corruptIf(
                        m.i32.or(this.notSpan(s.get), cg.eqz(this.get(s.get(), "spare"))),
                        "a spare is not a span, or not marked spare",
                        s.get(),
                      ),
                      n.set(cg.add(n.get(), cg.size(1))),
                    ]),
                    k.set(cg.add(k.get(), cg.size(W))),
                    m.br(spareLoop),
                  ]),
                ),
                corruptIf(cg.ne(n.get(), spares.get()), "spans marked spare are not the spares", n.get()),
              ]
            : []),
        ]),
        corruptIf(cg.ne(listed.get(), withFree.get()), "a span with free blocks is missing from its class list", listed.get()),
        corruptIf(cg.ne(counted.get(), cg.sub(seen.get(), pooledSeen.get())), "the classes' counts of spans do not add up to their spans", counted.get()),
        stats.usedBlocks.set(cg.add(liveAll.get(), this.largeUsed.get())),
        stats.usedBytes.set(cg.add(stats.usedBytes.get(), this.largeBytes.get())),
      ];
    });
  }
}
