/**
 * Size classes' heap statistics in release builds (`stats` in `@alloc/core`): what
 * `size-classes.ts` adds when `ctx.stats` is set.
 *
 * - Blocks in use are counted as they come and go (four globals: small blocks and their class
 *   bytes, large blocks and the bytes asked for them): a release build has no list of every span
 *   to walk (the debug build's), and full spans are on no list. About 10 instructions more on
 *   malloc and free.
 * - Free blocks are walked: every class list holds exactly the spans with a block available
 *   (the debug walker checks it), so the walker adds up `avail` blocks of each listed span.
 *   Empty spans pooled over a parent that keeps spans are on no list and not counted, as in the
 *   debug build.
 *
 * The numbers are those of the debug walker for the same heap (a test compares them).
 */
import type { Codegen, Expr, Local, StatVars, Var } from "@alloc/core";

export interface SizeClassesStatsOptions {
  readonly cg: Codegen;
  readonly scope: (name: string) => string;
  readonly classes: number;
  /** The class table's address (0 before the first span). */
  readonly table: Var;
  /** A span's field. */
  readonly get: (s: Expr, field: "next" | "avail" | "size") => Expr;
  /** The size word of a large block. */
  readonly sizeWordAt: (ptr: Expr) => Expr;
}

export class SizeClassesStats {
  private readonly smallUsed: Var;
  private readonly smallBytes: Var;
  private readonly largeUsed: Var;
  private readonly largeBytes: Var;

  constructor(private readonly o: SizeClassesStatsOptions) {
    const { cg, scope } = o;
    this.smallUsed = cg.global(scope("stats/small_used"));
    this.smallBytes = cg.global(scope("stats/small_bytes"));
    this.largeUsed = cg.global(scope("stats/large_used"));
    this.largeBytes = cg.global(scope("stats/large_bytes"));
  }

  private add(v: Var, x: Expr): Expr {
    return v.set(this.o.cg.add(v.get(), x));
  }
  private sub(v: Var, x: Expr): Expr {
    return v.set(this.o.cg.sub(v.get(), x));
  }

  /** A small block of span `s` was handed out. */
  smallTaken(s: Local): Expr[] {
    return [this.add(this.smallUsed, this.o.cg.size(1)), this.add(this.smallBytes, this.o.get(s.get(), "size"))];
  }
  /** A small block of span `s` was freed. */
  smallFreed(s: Local): Expr[] {
    return [this.sub(this.smallUsed, this.o.cg.size(1)), this.sub(this.smallBytes, this.o.get(s.get(), "size"))];
  }
  /** A large block of `size` bytes was handed out. */
  largeTaken(size: Local): Expr[] {
    return [this.add(this.largeUsed, this.o.cg.size(1)), this.add(this.largeBytes, size.get())];
  }
  /** The large block at `ptr` changes size to `size` (before its size word is written). */
  largeResized(ptr: Local, size: Local): Expr[] {
    const { cg, sizeWordAt } = this.o;
    return [this.largeBytes.set(cg.add(cg.sub(this.largeBytes.get(), cg.load(sizeWordAt(ptr.get()))), size.get()))];
  }
  /** The large block at `ptr` is freed (before it goes to the parent). */
  largeFreed(ptr: Local): Expr[] {
    const { cg, sizeWordAt } = this.o;
    return [this.sub(this.largeUsed, cg.size(1)), this.sub(this.largeBytes, cg.load(sizeWordAt(ptr.get())))];
  }

  /** The walker: the counters, and the class lists' available blocks. */
  emitWalk(vars: StatVars): string {
    const { cg, scope, classes, table, get } = this.o;
    const m = cg.module;
    const W = cg.ptrBytes;
    return cg.function(scope("walk"), [], "none", (f) => {
      const k = f.local(), s = f.local(), avail = f.local(), size = f.local();
      const classLoop = f.label("classes"), listLoop = f.label("list");
      return [
        vars.usedBlocks.set(cg.add(this.smallUsed.get(), this.largeUsed.get())),
        vars.usedBytes.set(cg.add(this.smallBytes.get(), this.largeBytes.get())),
        vars.freeBlocks.set(cg.size(0)),
        vars.freeBytes.set(cg.size(0)),
        vars.largestFree.set(cg.size(0)),
        cg.when(cg.ne(table.get(), cg.size(0)), [
          k.set(cg.size(0)),
          m.loop(
            classLoop,
            cg.when(cg.ltU(k.get(), cg.size(classes * W)), [
              s.set(cg.load(cg.add(table.get(), k.get()))),
              m.loop(
                listLoop,
                cg.when(cg.ne(s.get(), cg.size(0)), [
                  avail.set(get(s.get(), "avail")),
                  size.set(get(s.get(), "size")),
                  vars.freeBlocks.set(cg.add(vars.freeBlocks.get(), avail.get())),
                  vars.freeBytes.set(cg.add(vars.freeBytes.get(), cg.mul(avail.get(), size.get()))),
                  vars.largestFree.set(cg.select(cg.gtU(size.get(), vars.largestFree.get()), size.get(), vars.largestFree.get())),
                  s.set(get(s.get(), "next")),
                  m.br(listLoop),
                ]),
              ),
              k.set(cg.add(k.get(), cg.size(W))),
              m.br(classLoop),
            ]),
          ),
        ]),
      ];
    });
  }
}
