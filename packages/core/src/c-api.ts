import type { Expr } from "./codegen.ts";
import type { AllocatorFunctions, EmitContext } from "./contracts.ts";
import { AllocConfigError } from "./errors.ts";

/** The C functions an allocator can export, with C semantics. */
export const C_FUNCTIONS = [
  "malloc",
  "free",
  "calloc",
  "realloc",
  "aligned_alloc",
  "posix_memalign",
  "malloc_usable_size",
] as const;
export type CFunction = (typeof C_FUNCTIONS)[number];

/** What each C function does, for `--help` and the docs. */
export const C_FUNCTION_DOCS: Readonly<Record<CFunction, string>> = {
  malloc: "malloc(size) -> ptr: a block of at least size bytes aligned to minAlign, or 0",
  free: "free(ptr): releases a block; free(0) does nothing",
  calloc: "calloc(n, size) -> ptr: n*size zeroed bytes, or 0 (also when n*size overflows)",
  realloc:
    "realloc(ptr, size) -> ptr: resizes in place when the strategy can, else moves; realloc(0, n) is malloc(n); realloc(p, 0) frees p and returns 0; on failure returns 0 and p is untouched",
  aligned_alloc:
    "aligned_alloc(align, size) -> ptr: align must be a power of two up to 65536, else 0",
  posix_memalign:
    "posix_memalign(memptr, align, size) -> err: stores the block at *memptr and returns 0; EINVAL (28) unless align is a power-of-two multiple of the pointer size, ENOMEM (48) when it cannot allocate (align above 65536 included); *memptr is written only on success",
  malloc_usable_size: "malloc_usable_size(ptr) -> size: bytes usable in the block (0 for ptr 0)",
};

/** errno values as wasi-libc (and WASI) number them: what posix_memalign returns. */
export const EINVAL = 28;
export const ENOMEM = 48;

/**
 * Emits the requested C functions over the top strategy `top`. Returns their emitted names.
 * `minAlign` and `maxAlign` come from the build limits.
 */
export function emitCApi(
  ctx: EmitContext,
  top: AllocatorFunctions,
  wanted: ReadonlySet<CFunction>,
): Partial<Record<CFunction, string>> {
  const { cg, limits } = ctx;
  // (ctx.scope: `~alloc/malloc`; in a thread-safe build, the unlocked copy the exported one calls.)
  const name = (fn: CFunction) => ctx.scope(fn);
  const minAlign = cg.size(limits.minAlign);
  const out: Partial<Record<CFunction, string>> = {};
  /** A pointer-width value as an i32 condition. */
  const nonZero = (x: Expr) => (cg.memory64 ? cg.ne(x, cg.size(0)) : x);

  // One entry for every minimum-aligned request: malloc, and calloc and realloc call it too.
  // When nothing else calls `alloc` (aligned_alloc does, and calloc when every block is zero), the
  // strategy's constant-alignment copy (when it has one); else a wrapper around the one `alloc`
  // they all use: aligned_alloc(minAlign, size) when aligned_alloc is emitted, so that
  // `alloc` keeps one caller and Binaryen inlines it there (a few bytes less; the alignment check
  // costs malloc a few instructions).
  const allocUsed = wanted.has("aligned_alloc") || (wanted.has("calloc") && top.allocZeroes === true);
  let mallocEntry: string | undefined;
  const malloc = (): string =>
    (mallocEntry ??=
      (!allocUsed && top.allocFixed?.(limits.minAlign)) ||
      cg.function(name("malloc"), ["size"], "usize", (f) => {
        const size = f.param("size").get();
        return wanted.has("aligned_alloc") ? cg.call(name("aligned_alloc"), [minAlign, size]) : cg.call(top.alloc, [size, minAlign]);
      }));
  if (wanted.has("malloc")) out.malloc = malloc();

  if (wanted.has("free")) {
    out.free = cg.function(name("free"), ["ptr"], "none", (f) => {
      const ptr = f.param("ptr");
      if (top.freeAcceptsNull) return cg.callVoid(top.free, [ptr.get()]);
      return cg.when(ptr.get(), [cg.callVoid(top.free, [ptr.get()])]);
    });
  }
  /** Frees a non-null block: through `free` when it is emitted, so the strategy's is called from one place. */
  const freeBlock = (ptr: Expr) => cg.callVoid(out.free ?? top.free, [ptr]);

  if (wanted.has("calloc")) {
    out.calloc = cg.function(name("calloc"), ["n", "size"], "usize", (f) => {
      const n = f.param("n"), size = f.param("size");
      const total = f.local(), ptr = f.local();
      const m = cg.module;
      const overflow = cg.memory64
        ? // n * size overflows 64 bits iff n > MAX / size, with size 0 read as 1 (no overflow). The
          // division must never see 0: Wasm evaluates both operands of an i32.and (an and with
          // `size != 0` trapped on calloc(n, 0)).
          cg.gtU(n.get(), m.i64.div_u(cg.size(-1), cg.select(cg.ne(size.get(), cg.size(0)), size.get(), cg.size(1))))
        : // The exact product in 64 bits has a non-zero high half.
          m.i32.wrap(m.i64.shr_u(m.i64.mul(m.i64.extend_u(n.get()), m.i64.extend_u(size.get())), cg.i64(32n)));
      // On overflow, ask for all of the address space: every strategy refuses that size (alloc's
      // contract), so the 0 comes from there.
      const stmts = [total.set(cg.select(overflow, cg.size(-1), cg.mul(n.get(), size.get())))];
      if (top.allocZeroes) return [...stmts, cg.call(top.alloc, [total.get(), minAlign])];
      // Only the part of the block below the fresh mark (read before the call) can be non-zero.
      const fresh = top.fresh;
      const before = f.local();
      return [
        ...stmts,
        ...(fresh ? [before.set(cg.call(fresh, []))] : []),
        ptr.set(cg.call(malloc(), [total.get()])),
        cg.when(nonZero(ptr.get()), [
          cg.fill(
            f,
            ptr.get(),
            cg.i32(0),
            // min(max(before, ptr) - ptr, total): 0 when the block lies wholly above the mark.
            // (select evaluates its arms before the condition: the tee comes first.)
            fresh
              ? cg.select(
                  cg.ltU(before.get(), total.get()),
                  before.tee(cg.sub(cg.maxU(before.get(), ptr.get(), before.get(), ptr.get()), ptr.get())),
                  total.get(),
                )
              : total.get(),
          ),
        ]),
        ptr.get(),
      ];
    });
  }

  if (wanted.has("realloc")) {
    out.realloc = cg.function(name("realloc"), ["ptr", "size"], "usize", (f) => {
      const ptr = f.param("ptr"), size = f.param("size");
      const moved = f.local();
      const usableSize = top.usableSize;
      /** How many bytes of the old block a move copies. */
      const copyLen = (): Expr => {
        if (!usableSize) return size.get();
        // resize failed, so the old block is smaller than the new size.
        if (top.shrinksInPlace && top.resize) return cg.call(usableSize, [ptr.get()]);
        // min(usable size of the old block, new size). Wasm evaluates select's condition last:
        // the tee goes in the first operand.
        const usable = f.local();
        return cg.select(cg.ltU(usable.get(), size.get()), usable.tee(cg.call(usableSize, [ptr.get()])), size.get());
      };
      return [
        cg.when(ptr.get(), [
          cg.when(cg.eqz(size.get()), [freeBlock(ptr.get()), cg.ret(cg.size(0))]),
          ...(top.resize ? [cg.returnIf(cg.call(top.resize, [ptr.get(), size.get()]), ptr.get())] : []),
        ]),
        // A new block (realloc(0, size) is malloc(size)); an old one moves into it and is freed.
        cg.when(moved.tee(cg.call(malloc(), [size.get()])), [
          cg.when(ptr.get(), [cg.copy(f, moved.get(), ptr.get(), copyLen()), freeBlock(ptr.get())]),
        ]),
        moved.get(),
      ];
    });
  }

  if (wanted.has("aligned_alloc")) {
    out.aligned_alloc = cg.function(name("aligned_alloc"), ["align", "size"], "usize", (f) => {
      const align = f.param("align"), size = f.param("size");
      const mask = f.local();
      return [
        // Valid (a power of two up to maxAlign, itself a power of two) exactly when
        // `mask = align - 1` shares no bit with `align | -maxAlign`: a power of two shares none
        // with its mask, any other number every set bit above its lowest; `-maxAlign` catches the
        // masks of maxAlign * 2 and more, and of 0 (all ones).
        cg.returnIf(
          nonZero(cg.and(mask.tee(cg.sub(align.get(), cg.size(1))), cg.or(align.get(), cg.size(-limits.maxAlign)))),
          cg.size(0),
        ),
        // max(align, minAlign), both powers of two: the union of their masks, plus one (unless
        // the strategy raises it itself).
        cg.call(top.alloc, [
          size.get(),
          top.allocAcceptsSmallAlign ? align.get() : cg.add(cg.or(mask.get(), cg.size(limits.minAlign - 1)), cg.size(1)),
        ]),
      ];
    });
  }

  if (wanted.has("posix_memalign")) {
    out.posix_memalign = cg.function(name("posix_memalign"), ["memptr", "align", "size"], "i32", (f) => {
      const memptr = f.param("memptr"), align = f.param("align"), size = f.param("size");
      const mask = f.local(), ptr = f.local();
      return [
        // EINVAL unless align is a power of two (it shares no bit with its mask; 0's mask is all
        // ones) and a multiple of the pointer size (a power of two at least that large).
        cg.returnIf(
          cg.module.i32.or(
            nonZero(cg.and(mask.tee(cg.sub(align.get(), cg.size(1))), align.get())),
            cg.ltU(align.get(), cg.size(cg.ptrBytes)),
          ),
          cg.i32(EINVAL),
        ),
        // A valid alignment the strategies cannot give (above maxAlign): ENOMEM, as for any
        // request the allocator cannot satisfy.
        cg.returnIf(cg.gtU(align.get(), cg.size(limits.maxAlign)), cg.i32(ENOMEM)),
        ptr.set(
          cg.call(top.alloc, [
            size.get(),
            top.allocAcceptsSmallAlign ? align.get() : cg.add(cg.or(mask.get(), cg.size(limits.minAlign - 1)), cg.size(1)),
          ]),
        ),
        // A null block for size 0 is a success in C (*memptr = NULL); for any other size, ENOMEM
        // and *memptr untouched.
        cg.returnIf(cg.module.i32.and(cg.eqz(ptr.get()), cg.ne(size.get(), cg.size(0))), cg.i32(ENOMEM)),
        cg.store(memptr.get(), ptr.get()),
        cg.i32(0),
      ];
    });
  }

  if (wanted.has("malloc_usable_size")) {
    if (!top.usableSize) {
      throw new AllocConfigError(
        "malloc_usable_size cannot be exported: the top strategy does not record block sizes",
      );
    }
    const usableSize = top.usableSize;
    out.malloc_usable_size = cg.function(name("malloc_usable_size"), ["ptr"], "usize", (f) => {
      const ptr = f.param("ptr");
      return cg.if(ptr.get(), cg.call(usableSize, [ptr.get()]), cg.size(0));
    });
  }
  return out;
}
