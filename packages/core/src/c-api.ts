import type { AllocatorFunctions, EmitContext } from "./contracts.ts";
import { AllocConfigError } from "./errors.ts";

/** The C functions an allocator can export, with C semantics. */
export const C_FUNCTIONS = ["malloc", "free", "calloc", "realloc", "aligned_alloc", "malloc_usable_size"] as const;
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
  malloc_usable_size: "malloc_usable_size(ptr) -> size: bytes usable in the block (0 for ptr 0)",
};

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
  const name = (fn: CFunction) => cg.name(fn);
  const minAlign = cg.size(limits.minAlign);
  const out: Partial<Record<CFunction, string>> = {};

  if (wanted.has("malloc")) {
    // malloc alone needs alloc: take the strategy's constant-alignment copy when it has one.
    const allocUsers: CFunction[] = ["calloc", "realloc", "aligned_alloc"];
    out.malloc =
      top.allocFixed && !allocUsers.some((fn) => wanted.has(fn))
        ? top.allocFixed(limits.minAlign)
        : cg.function(name("malloc"), ["size"], "usize", (f) => cg.call(top.alloc, [f.param("size").get(), minAlign]));
  }

  if (wanted.has("free")) {
    out.free = cg.function(name("free"), ["ptr"], "none", (f) => {
      const ptr = f.param("ptr");
      if (top.freeAcceptsNull) return cg.callVoid(top.free, [ptr.get()]);
      return cg.when(ptr.get(), [cg.callVoid(top.free, [ptr.get()])]);
    });
  }

  if (wanted.has("calloc")) {
    out.calloc = cg.function(name("calloc"), ["n", "size"], "usize", (f) => {
      const n = f.param("n"), size = f.param("size");
      const total = f.local(), ptr = f.local();
      const m = cg.module;
      const overflow = cg.memory64
        ? // n * size overflows 64 bits iff size != 0 and n > MAX / size.
          m.i32.and(cg.ne(size.get(), cg.size(0)), cg.gtU(n.get(), m.i64.div_u(cg.size(-1), size.get())))
        : // The exact product in 64 bits has a non-zero high half.
          m.i64.ne(
            m.i64.shr_u(m.i64.mul(m.i64.extend_u(n.get()), m.i64.extend_u(size.get())), cg.i64(32n)),
            cg.i64(0n),
          );
      const stmts = [cg.returnIf(overflow, cg.size(0)), total.set(cg.mul(n.get(), size.get()))];
      if (top.allocZeroed) return [...stmts, cg.call(top.allocZeroed, [total.get(), minAlign])];
      return [
        ...stmts,
        ptr.set(cg.call(top.alloc, [total.get(), minAlign])),
        cg.when(ptr.get(), [cg.fill(f, ptr.get(), cg.i32(0), total.get())]),
        ptr.get(),
      ];
    });
  }

  if (wanted.has("realloc")) {
    out.realloc = cg.function(name("realloc"), ["ptr", "size"], "usize", (f) => {
      const ptr = f.param("ptr"), size = f.param("size");
      const moved = f.local();
      const copyLen = top.usableSize
        ? // min(usable size of the old block, new size)
          (() => {
            const usable = f.local();
            // Wasm evaluates select's condition last: the tee goes in the first operand.
            return cg.select(
              cg.ltU(usable.get(), size.get()),
              usable.tee(cg.call(top.usableSize!, [ptr.get()])),
              size.get(),
            );
          })()
        : size.get();
      return [
        cg.returnIf(cg.eqz(ptr.get()), cg.call(top.alloc, [size.get(), minAlign])),
        cg.when(cg.eqz(size.get()), [cg.callVoid(top.free, [ptr.get()]), cg.ret(cg.size(0))]),
        ...(top.resize ? [cg.returnIf(cg.call(top.resize, [ptr.get(), size.get()]), ptr.get())] : []),
        cg.returnIf(cg.eqz(moved.tee(cg.call(top.alloc, [size.get(), minAlign]))), cg.size(0)),
        cg.copy(f, moved.get(), ptr.get(), copyLen),
        cg.callVoid(top.free, [ptr.get()]),
        moved.get(),
      ];
    });
  }

  if (wanted.has("aligned_alloc")) {
    out.aligned_alloc = cg.function(name("aligned_alloc"), ["align", "size"], "usize", (f) => {
      const align = f.param("align"), size = f.param("size");
      return [
        // Not a power of two (0 included), or above one page: impossible.
        cg.returnIf(
          cg.module.i32.or(
            cg.ne(cg.and(align.get(), cg.sub(align.get(), cg.size(1))), cg.size(0)),
            cg.module.i32.or(cg.eqz(align.get()), cg.gtU(align.get(), cg.size(limits.maxAlign))),
          ),
          cg.size(0),
        ),
        cg.call(top.alloc, [
          size.get(),
          cg.select(cg.ltU(align.get(), cg.size(limits.minAlign)), cg.size(limits.minAlign), align.get()),
        ]),
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
      return cg.module.if(ptr.get(), cg.call(usableSize, [ptr.get()]), cg.size(0));
    });
  }
  return out;
}
