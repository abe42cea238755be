import binaryen from "binaryen";
import { AllocConfigError } from "./errors.ts";

/** An expression under construction in a Binaryen module. */
export type Expr = binaryen.ExpressionRef;

/** log2 of the Wasm page size (64 KiB). */
export const PAGE_SHIFT = 16;
/** The Wasm page size in bytes. */
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** A local variable, parameter or global: something that can be read and written. */
export interface Var {
  get(): Expr;
  set(value: Expr): Expr;
}

/** A local or parameter, which can also be written and read in one step. */
export interface Local extends Var {
  readonly index: number;
  tee(value: Expr): Expr;
}

/** The value type of a parameter, local or result. `usize` is the pointer width. */
export type ValueKind = "usize" | "i32" | "i64";

export interface CodegenOptions {
  /**
   * Every function and global this generator emits is named `${prefix}/${scope}/${name}`.
   * The prefix is what lets an allocator live inside someone else's module (or two allocators
   * in one module) without a clash. Default `~alloc`.
   */
  readonly prefix?: string;
  /** Pointers are i64 and the memory is a memory64 memory. Default false (wasm32). */
  readonly memory64?: boolean;
  /**
   * Use `memory.fill` / `memory.copy` (the bulk-memory feature, in every current engine).
   * When false, byte loops are emitted instead, for hosts that only run Wasm MVP. Default true.
   */
  readonly bulkMemory?: boolean;
  /**
   * A thread-safe build: the allocator's state lives in shared memory, in the area described
   * here, instead of in Wasm globals (a global belongs to one instance, and each thread is an
   * instance of its own). See {@link Codegen.global} and `threads.ts`.
   */
  readonly sharedState?: SharedStateArea;
}

/**
 * Where a thread-safe build keeps its state in linear memory (the contract is written in
 * `contracts.ts`, {@link ThreadSafety}): the lock word first, then one word per state cell.
 * The area must be zero when the first thread starts.
 */
export interface SharedStateArea {
  /** Address of the area (a multiple of 8). */
  readonly address: number;
  /** Its size in bytes. */
  readonly bytes: number;
  /** Whether a thread that finds the lock taken waits (`memory.atomic.wait32`) instead of spinning. */
  readonly wait: boolean;
}

/**
 * Where a {@link SharedStateArea} holds the memory's size in pages after the allocator's latest
 * `memory.grow` (an i32 after the lock word): see {@link Codegen.memoryGrow} and `threads.ts`.
 */
export const GROWN_PAGES_OFFSET = 4;

/** Where the state cells start in a {@link SharedStateArea}: after the lock word and the grown-pages word (two i32s). */
export const STATE_CELLS_OFFSET = 8;

/**
 * A thin, typed layer over binaryen.js for allocator code: pointer-width pseudo-ops (`add`,
 * `load`, `alignUp`...) that resolve to i32 or i64 from one setting, reserved names, and
 * function builders with named locals. Strategies are written against this class only, so
 * memory64 is a flag, not a fork.
 *
 * Verbs: `makeX` would be noise here, so expression builders are plain names (`add`, `load`);
 * `ensureX` adds a function or global once and returns its name; `function` adds one.
 */
export class Codegen {
  readonly module: binaryen.Module;
  readonly prefix: string;
  readonly memory64: boolean;
  readonly bulkMemory: boolean;
  /** Thread-safe builds: the state area in shared memory; undefined in a single-threaded build. */
  readonly sharedState: SharedStateArea | undefined;
  /** The Binaryen type of a pointer or size. */
  readonly usize: binaryen.Type;
  /** Bytes in a pointer (4 or 8). */
  readonly ptrBytes: 4 | 8;

  private readonly ops: typeof binaryen.Module.prototype.i32 | typeof binaryen.Module.prototype.i64;
  /** Threaded builds: the state cells by name. */
  private readonly cells = new Map<string, Var>();
  /** Threaded builds: cells `globalVar` made before `global` defined them. */
  private readonly pendingCells = new Set<string>();

  constructor(module: binaryen.Module, options: CodegenOptions = {}) {
    this.module = module;
    this.prefix = options.prefix ?? "~alloc";
    this.memory64 = options.memory64 ?? false;
    this.bulkMemory = options.bulkMemory ?? true;
    this.sharedState = options.sharedState;
    this.usize = this.memory64 ? binaryen.i64 : binaryen.i32;
    this.ptrBytes = this.memory64 ? 8 : 4;
    this.ops = this.memory64 ? module.i64 : module.i32;
  }

  /** The reserved name `${prefix}/${parts...}` for an emitted function or global. */
  name(...parts: string[]): string {
    return [this.prefix, ...parts].join("/");
  }

  /** The Binaryen type of a value kind. */
  type(kind: ValueKind): binaryen.Type {
    return kind === "usize" ? this.usize : kind === "i32" ? binaryen.i32 : binaryen.i64;
  }

  // ---- constants -------------------------------------------------------------------------

  /**
   * A pointer-width constant. `n` is an integer in [-2^31, 2^32) on wasm32 (negative numbers and
   * numbers >= 2^31 give the same bits), or a safe integer on memory64.
   */
  size(n: number): Expr {
    if (!this.memory64) return this.module.i32.const(n | 0);
    return this.i64(BigInt(n));
  }

  /** An i64 constant. (binaryen.js takes a bigint here; its typings still say number.) */
  i64(n: bigint): Expr {
    return this.module.i64.const(BigInt.asIntN(64, n) as unknown as number);
  }

  i32(n: number): Expr {
    return this.module.i32.const(n | 0);
  }

  // ---- pointer-width arithmetic -----------------------------------------------------------

  add(a: Expr, b: Expr): Expr {
    return this.ops.add(a, b);
  }
  sub(a: Expr, b: Expr): Expr {
    return this.ops.sub(a, b);
  }
  mul(a: Expr, b: Expr): Expr {
    return this.ops.mul(a, b);
  }
  and(a: Expr, b: Expr): Expr {
    return this.ops.and(a, b);
  }
  or(a: Expr, b: Expr): Expr {
    return this.ops.or(a, b);
  }
  xor(a: Expr, b: Expr): Expr {
    return this.ops.xor(a, b);
  }
  shl(a: Expr, b: Expr): Expr {
    return this.ops.shl(a, b);
  }
  shrU(a: Expr, b: Expr): Expr {
    return this.ops.shr_u(a, b);
  }
  clz(a: Expr): Expr {
    return this.ops.clz(a);
  }
  ctz(a: Expr): Expr {
    return this.ops.ctz(a);
  }
  /** Comparisons yield i32 (0 or 1), as in Wasm. */
  eq(a: Expr, b: Expr): Expr {
    return this.ops.eq(a, b);
  }
  ne(a: Expr, b: Expr): Expr {
    return this.ops.ne(a, b);
  }
  ltU(a: Expr, b: Expr): Expr {
    return this.ops.lt_u(a, b);
  }
  leU(a: Expr, b: Expr): Expr {
    return this.ops.le_u(a, b);
  }
  gtU(a: Expr, b: Expr): Expr {
    return this.ops.gt_u(a, b);
  }
  geU(a: Expr, b: Expr): Expr {
    return this.ops.ge_u(a, b);
  }
  /** `a == 0` for an i32 or a pointer-width value. */
  eqz(a: Expr): Expr {
    return binaryen.getExpressionType(a) === binaryen.i64 ? this.module.i64.eqz(a) : this.module.i32.eqz(a);
  }
  /**
   * A condition (an i32) from an i32 or a pointer-width value, true when non-zero, as in C's
   * `if (ptr)`: the value itself on wasm32, `ptr != 0` on memory64. `when`, `returnIf` and
   * `select` apply it to their conditions.
   */
  cond(a: Expr): Expr {
    return binaryen.getExpressionType(a) === binaryen.i64 ? this.module.i64.ne(a, this.i64(0n)) : a;
  }
  /** An i32 condition turned into a pointer-width 0 or 1. */
  fromBool(cond: Expr): Expr {
    return this.memory64 ? this.module.i64.extend_u(cond) : cond;
  }
  /** A pointer-width value truncated to i32 (a no-op on wasm32). */
  toI32(a: Expr): Expr {
    return this.memory64 ? this.module.i32.wrap(a) : a;
  }
  /** An i32 widened to pointer width, unsigned (a no-op on wasm32). */
  fromI32(a: Expr): Expr {
    return this.memory64 ? this.module.i64.extend_u(a) : a;
  }
  select(cond: Expr, ifTrue: Expr, ifFalse: Expr): Expr {
    return this.module.select(this.cond(cond), ifTrue, ifFalse);
  }
  /** The unsigned maximum of two side-effect-free pointer-width expressions. */
  maxU(a: Expr, b: Expr, copyA: Expr, copyB: Expr): Expr {
    return this.select(this.gtU(a, b), copyA, copyB);
  }

  /**
   * `x` rounded up to a multiple of `align` (a power of two): `(x + align - 1) & -align`.
   * The caller guarantees `x + align - 1` does not overflow; `alignCopy` is a second,
   * side-effect-free reading of `align`.
   */
  alignUp(x: Expr, align: Expr, alignCopy: Expr): Expr {
    return this.and(this.add(x, this.sub(align, this.size(1))), this.sub(this.size(0), alignCopy));
  }

  /** `x` rounded up to a constant power-of-two `align`. */
  alignUpConst(x: Expr, align: number): Expr {
    if (align <= 1) return x;
    return this.and(this.add(x, this.size(align - 1)), this.size(-align));
  }

  // ---- memory ---------------------------------------------------------------------------

  /** A pointer-width load of `ptr + offset`, naturally aligned. */
  load(ptr: Expr, offset = 0): Expr {
    return this.ops.load(offset, this.ptrBytes, ptr);
  }
  /** A pointer-width store of `value` at `ptr + offset`, naturally aligned. */
  store(ptr: Expr, value: Expr, offset = 0): Expr {
    return this.ops.store(offset, this.ptrBytes, ptr, value);
  }
  load32(ptr: Expr, offset = 0): Expr {
    return this.module.i32.load(offset, 4, ptr);
  }
  store32(ptr: Expr, value: Expr, offset = 0): Expr {
    return this.module.i32.store(offset, 4, ptr, value);
  }
  load8(ptr: Expr, offset = 0): Expr {
    return this.module.i32.load8_u(offset, 1, ptr);
  }
  store8(ptr: Expr, value: Expr, offset = 0): Expr {
    return this.module.i32.store8(offset, 1, ptr, value);
  }

  /**
   * `memory.size` in pages, pointer width. In a thread-safe build, `memory.grow(0)` instead:
   * V8 (Node 20) may answer `memory.size` with the size from before another thread's grow even
   * after the two threads synchronised (the lock), where `memory.grow(0)` reads the memory's
   * current length (measured: hundreds of stale answers in 2,000 grows).
   */
  memorySize(): Expr {
    if (this.sharedState) return this.module.memory.grow(this.size(0), undefined, this.memory64);
    return this.module.memory.size(undefined, this.memory64);
  }
  /**
   * `memory.grow(pages)`: the old size in pages, or -1 (all ones) when the engine refuses. In a
   * thread-safe build, a call of a function that also records the memory's new size in the state
   * area's grown-pages word, so that the lock can tell a thread whose view of the memory's size
   * is older (see `threads.ts`).
   */
  memoryGrow(pages: Expr): Expr {
    if (!this.sharedState) return this.module.memory.grow(pages, undefined, this.memory64);
    return this.module.call(this.ensureMemoryGrow(), [pages], this.usize);
  }

  /** Thread-safe builds: emits (once) `memory/grow(pages)`, which grows and records the new size. */
  private ensureMemoryGrow(): string {
    const name = this.name("memory", "grow");
    if (this.module.getFunction(name)) return name;
    const { module } = this;
    return this.function(name, ["pages"], "usize", (f) => {
      const old = f.local();
      return [
        old.set(module.memory.grow(f.param("pages").get(), undefined, this.memory64)),
        this.store32(this.size(0), this.memoryPages(), this.sharedState!.address + GROWN_PAGES_OFFSET),
        old.get(),
      ];
    });
  }

  /**
   * `memory.size` in pages as an i32, as this thread's instance sees it: in a thread-safe build,
   * it may be from before another thread's grow (only for comparing with the grown-pages word).
   */
  memoryPages(): Expr {
    const pages = this.module.memory.size(undefined, this.memory64);
    return this.memory64 ? this.module.i32.wrap(pages) : pages;
  }

  /** Sets `len` bytes at `dest` to `byte` (an i32). */
  fill(f: FunctionScope, dest: Expr, byte: Expr, len: Expr): Expr {
    if (this.bulkMemory) return this.module.memory.fill(dest, byte, len);
    const d = f.local(), n = f.local(), v = f.local("i32");
    const loop = f.label("fill");
    return this.block([
      d.set(dest),
      n.set(len),
      v.set(byte),
      this.module.loop(
        loop,
        this.when(n.get(), [
          n.set(this.sub(n.get(), this.size(1))),
          this.store8(this.add(d.get(), n.get()), v.get()),
          this.module.br(loop),
        ]),
      ),
    ]);
  }

  /** Copies `len` bytes from `src` to `dest`; the ranges may overlap (memmove). */
  copy(f: FunctionScope, dest: Expr, src: Expr, len: Expr): Expr {
    if (this.bulkMemory) return this.module.memory.copy(dest, src, len);
    // Copy forwards when dest <= src, backwards otherwise: correct for any overlap.
    const d = f.local(), s = f.local(), n = f.local(), i = f.local();
    const fwd = f.label("copy_fwd"), bwd = f.label("copy_bwd");
    return this.block([
      d.set(dest),
      s.set(src),
      n.set(len),
      this.module.if(
        this.leU(d.get(), s.get()),
        this.block([
          i.set(this.size(0)),
          this.module.loop(
            fwd,
            this.when(this.ltU(i.get(), n.get()), [
              this.store8(this.add(d.get(), i.get()), this.load8(this.add(s.get(), i.get()))),
              i.set(this.add(i.get(), this.size(1))),
              this.module.br(fwd),
            ]),
          ),
        ]),
        this.module.loop(
          bwd,
          this.when(n.get(), [
            n.set(this.sub(n.get(), this.size(1))),
            this.store8(this.add(d.get(), n.get()), this.load8(this.add(s.get(), n.get()))),
            this.module.br(bwd),
          ]),
        ),
      ),
    ]);
  }

  // ---- control flow ------------------------------------------------------------------------

  /** A block of statements, or the single statement itself; its value is the last one's, if any. */
  block(stmts: readonly Expr[]): Expr {
    return stmts.length === 1 ? stmts[0]! : this.module.block(null, stmts, binaryen.auto);
  }
  /** `if (cond) { stmts }`. */
  when(cond: Expr, stmts: readonly Expr[], otherwise?: readonly Expr[]): Expr {
    return this.module.if(this.cond(cond), this.block(stmts), otherwise ? this.block(otherwise) : undefined);
  }
  /** `if (cond) ifTrue else ifFalse`, as a statement or (with both arms) a value; `cond` as in {@link cond}. */
  if(cond: Expr, ifTrue: Expr, ifFalse?: Expr): Expr {
    return this.module.if(this.cond(cond), ifTrue, ifFalse);
  }
  /** `return value` (or `return` in a void function). */
  ret(value?: Expr): Expr {
    return this.module.return(value);
  }
  /** `if (cond) return value`. */
  returnIf(cond: Expr, value?: Expr): Expr {
    return this.module.if(this.cond(cond), this.module.return(value));
  }
  /** Traps. */
  trap(): Expr {
    return this.module.unreachable();
  }
  drop(value: Expr): Expr {
    return this.module.drop(value);
  }

  /** A call to an emitted function returning a pointer-width value. */
  call(name: string, args: readonly Expr[]): Expr {
    return this.module.call(name, args, this.usize);
  }
  /** A call to an emitted function with no result. */
  callVoid(name: string, args: readonly Expr[]): Expr {
    return this.module.call(name, args, binaryen.none);
  }

  // ---- definitions ---------------------------------------------------------------------------

  /**
   * A state cell: a mutable pointer-width variable `name` (already prefixed) that starts as
   * `init`. In a single-threaded build it is a Wasm global. In a thread-safe build (see
   * {@link CodegenOptions.sharedState}) it is a word of the state area in shared memory, so that
   * every thread's instance sees the same value: the word holds `value - init`, so the area's
   * zero memory reads as `init` without any initialisation (and reading it costs an add when
   * `init` is not 0). Either way, read and write it only under the build's lock, as everything
   * the C functions run is.
   */
  global(name: string, init = 0): Var {
    if (!this.sharedState) return this.instanceGlobal(name, init);
    // A cell that `globalVar` made before it was defined: its initial value is an immutable global
    // of its name (the same in every instance; the optimiser folds it into a constant).
    if (this.pendingCells.delete(name)) {
      this.module.addGlobal(name, this.usize, false, this.size(init));
      return this.cells.get(name)!;
    }
    this.assertFree(name);
    return this.cell(name, init === 0 ? undefined : () => this.size(init));
  }

  /** A state cell in the next word of the state area, whose value is the word plus `init()`. */
  private cell(name: string, init: (() => Expr) | undefined): Var {
    const area = this.sharedState!;
    const offset = STATE_CELLS_OFFSET + this.cells.size * this.ptrBytes;
    if (offset + this.ptrBytes > area.bytes) {
      throw new AllocConfigError(`alloc: the thread-safe build's state area (${area.bytes} bytes) has no room for "${name}"`);
    }
    const address = area.address + offset;
    const cell: Var = {
      get: () => (init ? this.add(this.load(this.size(0), address), init()) : this.load(this.size(0), address)),
      set: (value) => this.store(this.size(0), init ? this.sub(value, init()) : value, address),
    };
    this.cells.set(name, cell);
    return cell;
  }

  /**
   * A Wasm global, in every build: per instance, so per thread in a thread-safe build. For what
   * belongs to the calling thread (a debug build's fault record and walker statistics, a
   * thread's cache), never for heap state: see {@link global}.
   */
  instanceGlobal(name: string, init = 0): Var {
    this.assertFree(name);
    this.module.addGlobal(name, this.usize, true, this.size(init));
    return this.wasmGlobal(name);
  }

  /** A handle on the Wasm global `name`. */
  private wasmGlobal(name: string): Var {
    const { module, usize } = this;
    return { get: () => module.global.get(name, usize), set: (value) => module.global.set(name, value) };
  }

  /**
   * A handle on a state cell made by {@link global}, which may come later (its initial value is
   * only known then).
   */
  globalVar(name: string): Var {
    // Single-threaded, or a per-instance global made before (`instanceGlobal`): a Wasm global.
    if (!this.sharedState || (!this.cells.has(name) && this.module.getGlobal(name))) return this.wasmGlobal(name);
    if (!this.cells.has(name)) {
      this.pendingCells.add(name);
      this.cell(name, () => this.module.global.get(name, this.usize));
    }
    return this.cells.get(name)!;
  }

  /**
   * Adds function `name` (already prefixed) with pointer-width parameters `params` (named for
   * readability), an optional result, and a body built by `build` in a {@link FunctionScope}.
   */
  function(
    name: string,
    params: readonly string[],
    result: ValueKind | "none",
    build: (f: FunctionScope) => Expr | readonly Expr[],
  ): string {
    this.assertFree(name);
    const f = new FunctionScope(this, params);
    const body = build(f);
    const resultType = result === "none" ? binaryen.none : this.type(result);
    const stmts = Array.isArray(body) ? (body as readonly Expr[]) : [body as Expr];
    // The block's type is inferred from its last expression (a value, or a `return`).
    const bodyExpr = stmts.length === 1 ? stmts[0]! : this.module.block(null, stmts, binaryen.auto);
    this.module.addFunction(
      name,
      binaryen.createType(params.map(() => this.usize)),
      resultType,
      f.varTypes(),
      bodyExpr,
    );
    return name;
  }

  /** Throws an AllocConfigError when a function or global called `name` already exists in the module. */
  assertFree(name: string): void {
    if (this.module.getFunction(name) || this.module.getGlobal(name) || this.cells.has(name)) {
      throw new AllocConfigError(
        `alloc: the module already has a function or global named "${name}". ` +
          `Give this allocator another prefix (the "prefix" option).`,
      );
    }
  }
}

/** The parameters, locals and labels of one function being built. */
export class FunctionScope {
  private readonly cg: Codegen;
  private readonly params: readonly string[];
  private readonly vars: binaryen.Type[] = [];
  private labels = 0;

  constructor(cg: Codegen, params: readonly string[]) {
    this.cg = cg;
    this.params = params;
  }

  /** The parameter called `name`. */
  param(name: string): Local {
    const index = this.params.indexOf(name);
    if (index < 0) throw new Error(`no parameter ${name}`);
    return this.handle(index, this.cg.usize);
  }

  /** A fresh local of the given kind (pointer width by default). */
  local(kind: ValueKind = "usize"): Local {
    const type = this.cg.type(kind);
    this.vars.push(type);
    return this.handle(this.params.length + this.vars.length - 1, type);
  }

  /** A label name unique within this function. */
  label(hint: string): string {
    return `${hint}${this.labels++}`;
  }

  varTypes(): binaryen.Type[] {
    return this.vars;
  }

  private handle(index: number, type: binaryen.Type): Local {
    const m = this.cg.module;
    return {
      index,
      get: () => m.local.get(index, type),
      set: (value) => m.local.set(index, value),
      tee: (value) => m.local.tee(index, value, type),
    };
  }
}
