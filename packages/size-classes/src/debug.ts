/**
 * Size classes' debug build: what `size-classes.ts` adds when `ctx.debug` is set. Release builds
 * never call anything here.
 *
 * - Headers are stored XOR {@link HEADER_MAGIC}. A free small block's header is `class * W | 2` (a live one's is `class * W`, a large one's is
 *   odd), so `free` sees a double free. Its payload, but for the list link in its first word, is
 *   poisoned; popping it checks both the mark and the poison.
 * - Counters: blocks carved from chunks, small blocks in use and their bytes, large blocks in
 *   use and their bytes. Every carved block is either in use or on its class list, so the walker
 *   can check that the lists hold exactly `carved - used` blocks: none lost, none twice.
 * - `free(ptr)` checks the address is aligned and inside memory, and its header: a free mark is
 *   a double free, an unknown class or a large header that does not fit the block is an invalid
 *   pointer. A large block then goes to the layer below, whose own checks see the rest.
 * - The walker (`check`) walks every class list: each element aligned and inside memory, marked
 *   free with its list's class, its poison intact, never more elements than blocks carved (a
 *   cycle would be endless). Statistics: used = small and large blocks in use; free = blocks on
 *   the lists plus what is left of the current chunk.
 */
import type { Codegen, DebugHooks, Expr, FunctionScope, Local, Var } from "@alloc/core";

/** Bit 1 of a small block's header: the block is free (on its class list). */
export const SMALL_FREE = 2;
/**
 * Debug builds store every header XOR this: a zero word (or most stray data) then decodes to no
 * valid header, so freeing an address inside a zeroed block is caught.
 */
export const HEADER_MAGIC = 0x5a5a0000;

export interface SizeClassesDebugOptions {
  readonly cg: Codegen;
  readonly debug: DebugHooks;
  readonly scope: (name: string) => string;
  readonly classes: number;
  readonly minAlign: number;
  /** An upper bound of the gap between a large block's start and its payload. */
  readonly maxLargeHeader: number;
  readonly largeHeader: number;
  /** The class table's address (0 before the first chunk), and the current chunk's free part. */
  readonly table: Var;
  readonly top: Var;
  readonly end: Var;
  /** The byte size of the class whose header is `h`. */
  readonly classSize: (h: Expr) => Expr;
  /** The header of the block at `ptr` (decoded), its store, and the size word of a large block. */
  readonly headerOf: (ptr: Expr) => Expr;
  readonly setHeader: (ptr: Expr, h: Expr) => Expr;
  readonly sizeWordAt: (ptr: Expr) => Expr;
}

export class SizeClassesDebug {
  private readonly o: SizeClassesDebugOptions;
  private readonly carvedCount: Var;
  private readonly smallUsed: Var;
  private readonly smallBytes: Var;
  private readonly largeUsed: Var;
  private readonly largeBytes: Var;

  constructor(o: SizeClassesDebugOptions) {
    this.o = o;
    const { cg, scope } = o;
    this.carvedCount = cg.global(scope("debug/carved"));
    this.smallUsed = cg.global(scope("debug/small_used"));
    this.smallBytes = cg.global(scope("debug/small_bytes"));
    this.largeUsed = cg.global(scope("debug/large_used"));
    this.largeBytes = cg.global(scope("debug/large_bytes"));
  }

  private add(v: Var, n: Expr): Expr {
    return v.set(this.o.cg.add(v.get(), n));
  }
  private sub(v: Var, n: Expr): Expr {
    return v.set(this.o.cg.sub(v.get(), n));
  }

  /** An i32 condition: `ptr` is misaligned or its header word lies outside memory. */
  private outside(ptr: () => Expr): Expr {
    const { cg, minAlign } = this.o;
    return cg.module.i32.or(
      cg.ne(cg.and(ptr(), cg.size(minAlign - 1)), cg.size(0)),
      cg.gtU(ptr(), cg.shl(cg.memorySize(), cg.size(16))),
    );
  }

  /** The free block `p` of class header `h` was popped from its list: it must be marked and poisoned. */
  popped(p: Local, h: Local): Expr[] {
    const { cg, debug, headerOf, classSize } = this.o;
    const W = cg.ptrBytes;
    return [
      debug.failIf(
        cg.ne(headerOf(p.get()), cg.or(h.get(), cg.size(SMALL_FREE))),
        "corrupt-heap",
        "a class list holds a block that is not a free block of its class",
        p.get(),
      ),
      debug.checkPoison(cg.add(p.get(), cg.size(W)), cg.sub(classSize(h.get()), cg.size(W)), "free memory was written to"),
      this.o.setHeader(p.get(), h.get()),
      this.add(this.smallUsed, cg.size(1)),
      this.add(this.smallBytes, classSize(h.get())),
    ];
  }

  /** A new small block of class header `h` was carved from the chunk. */
  carved(h: Local): Expr[] {
    const { cg, classSize } = this.o;
    return [this.add(this.carvedCount, cg.size(1)), this.add(this.smallUsed, cg.size(1)), this.add(this.smallBytes, classSize(h.get()))];
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
   * free and poisons it (the release code then links it); for a large one, updates the counters.
   * `h` receives the header.
   */
  free(f: FunctionScope, ptr: Local, h: Local): Expr[] {
    const { cg, debug, headerOf, sizeWordAt, classSize, classes, largeHeader, maxLargeHeader } = this.o;
    const m = cg.module;
    const W = cg.ptrBytes;
    const gap = f.local();
    const invalid = (cond: Expr, what: string) => debug.failIf(cond, "invalid-pointer", what, ptr.get());
    const low2 = () => cg.and(h.get(), cg.size(3));
    return [
      invalid(this.outside(ptr.get), "not an address size-classes returns (misaligned or outside memory)"),
      h.set(headerOf(ptr.get())),
      debug.failIf(cg.eq(low2(), cg.size(SMALL_FREE)), "double-free", "the block is already free", ptr.get()),
      invalid(cg.eq(low2(), cg.size(3)), "no block header at this address"),
      cg.when(
        cg.eqz(low2()),
        [
          invalid(cg.geU(h.get(), cg.size(classes * W)), "no block header at this address (no such class)"),
          this.o.setHeader(ptr.get(), cg.or(h.get(), cg.size(SMALL_FREE))),
          debug.poison(cg.add(ptr.get(), cg.size(W)), cg.sub(classSize(h.get()), cg.size(W))),
          this.sub(this.smallUsed, cg.size(1)),
          this.sub(this.smallBytes, classSize(h.get())),
        ],
        [
          // A large header: the block below starts at most maxLargeHeader bytes before ptr.
          invalid(
            m.i32.or(
              cg.ltU(gap.tee(cg.sub(ptr.get(), cg.sub(h.get(), cg.size(1)))), cg.size(largeHeader)),
              cg.gtU(gap.get(), cg.size(maxLargeHeader)),
            ),
            "no block header at this address (a large header that does not fit)",
          ),
          this.sub(this.largeUsed, cg.size(1)),
          this.sub(this.largeBytes, cg.load(sizeWordAt(ptr.get()))),
        ],
      ),
    ];
  }

  /** The walker: see the file comment. */
  emitCheck(): string {
    const { cg, debug, scope, classes, table, top, end, classSize, headerOf } = this.o;
    const m = cg.module;
    const W = cg.ptrBytes;
    const { stats } = debug;
    return cg.function(scope("check"), [], "none", (f) => {
      const k = f.local(), c = f.local(), size = f.local(), listed = f.local();
      const classLoop = f.label("classes"), listLoop = f.label("list");
      const corruptIf = (cond: Expr, what: string, ptr: Expr) => debug.failIf(cond, "corrupt-heap", what, ptr);
      return [
        ...Object.values(stats).map((s) => s.set(cg.size(0))),
        listed.set(cg.size(0)),
        cg.when(table.get(), [
          k.set(cg.size(0)),
          m.loop(
            classLoop,
            cg.when(cg.ltU(k.get(), cg.size(classes * W)), [
              size.set(classSize(k.get())),
              c.set(cg.load(cg.add(table.get(), k.get()))),
              m.loop(
                listLoop,
                cg.when(c.get(), [
                  corruptIf(this.outside(c.get), "a class list links to an address outside memory", c.get()),
                  corruptIf(
                    cg.ne(headerOf(c.get()), cg.or(k.get(), cg.size(SMALL_FREE))),
                    "a class list holds a block that is not a free block of its class",
                    c.get(),
                  ),
                  debug.checkPoison(cg.add(c.get(), cg.size(W)), cg.sub(size.get(), cg.size(W)), "free memory was written to"),
                  listed.set(cg.add(listed.get(), cg.size(1))),
                  corruptIf(cg.gtU(listed.get(), this.carvedCount.get()), "the class lists hold more blocks than were carved (a cycle?)", c.get()),
                  stats.freeBytes.set(cg.add(stats.freeBytes.get(), size.get())),
                  stats.largestFree.set(cg.select(cg.gtU(size.get(), stats.largestFree.get()), size.get(), stats.largestFree.get())),
                  c.set(cg.load(c.get())),
                  m.br(listLoop),
                ]),
              ),
              k.set(cg.add(k.get(), cg.size(W))),
              m.br(classLoop),
            ]),
          ),
        ]),
        corruptIf(
          cg.ne(cg.add(listed.get(), this.smallUsed.get()), this.carvedCount.get()),
          "small blocks in use and on the lists do not add up to the blocks carved (one lost or listed twice)",
          listed.get(),
        ),
        corruptIf(cg.gtU(top.get(), end.get()), "the current chunk's top is past its end", top.get()),
        // What is left of the current chunk is free too (for small blocks).
        size.set(cg.sub(end.get(), top.get())),
        stats.freeBlocks.set(cg.add(listed.get(), cg.fromBool(cg.ne(size.get(), cg.size(0))))),
        stats.freeBytes.set(cg.add(stats.freeBytes.get(), size.get())),
        stats.largestFree.set(cg.select(cg.gtU(size.get(), stats.largestFree.get()), size.get(), stats.largestFree.get())),
        stats.usedBlocks.set(cg.add(this.smallUsed.get(), this.largeUsed.get())),
        stats.usedBytes.set(cg.add(this.smallBytes.get(), this.largeBytes.get())),
      ];
    });
  }
}
