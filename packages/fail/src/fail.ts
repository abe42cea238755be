import type { AllocatorFunctions, EmitContext, Expr, Parent, Strategy } from "@alloc/core";

/**
 * The fail strategy (lol_alloc's FailAllocator): `alloc` always returns 0 and `free` does
 * nothing. For a program that must never allocate: any allocation shows up at once as a null
 * pointer (Rust's `handle_alloc_error`, C's NULL check), and the allocator is as small as an
 * allocator can be (the backend below it is never called, so the optimiser removes it).
 *
 * It must be the whole stack: it sits on a page backend ("pages") and nothing may sit on it
 * (`topOnly`: a layer above could only ever fail too).
 *
 * Debug builds: nothing was ever allocated, so `free`, `realloc` and `malloc_usable_size` of any
 * pointer but 0 trap as an invalid pointer. There is no heap to walk (no `check`).
 */
export function fail(): Strategy {
  return { name: "fail", accepts: ["pages"], topOnly: true, emit: emitFail };
}

function emitFail({ cg, scope, debug }: EmitContext, _parent: Parent): AllocatorFunctions {
  const zero = () => cg.size(0);
  /** Release: `result`. Debug: nothing was ever allocated, so any pointer given is invalid. */
  const noBlock = (ptr: Expr, result?: Expr): Expr =>
    debug
      ? // (debug.fail traps; the unreachable gives the body the function's type.)
        cg.block([debug.fail("invalid-pointer", "fail never allocates: no pointer but 0 is a block", ptr), cg.module.unreachable()])
      : (result ?? cg.module.nop());
  const alloc = cg.function(scope("alloc"), ["size", "align"], "usize", () => zero());
  const free = cg.function(scope("free"), ["ptr"], "none", (f) => noBlock(f.param("ptr").get()));
  // realloc and malloc_usable_size of a pointer reach these (the C API filters 0).
  const resize = cg.function(scope("resize"), ["ptr", "size"], "usize", (f) => noBlock(f.param("ptr").get(), zero()));
  const usableSize = cg.function(scope("usable_size"), ["ptr"], "usize", (f) => noBlock(f.param("ptr").get(), zero()));
  return {
    alloc,
    free,
    // (The debug free traps for every pointer it is given: the C API filters free(0).)
    freeAcceptsNull: !debug,
    allocAcceptsSmallAlign: true,
    // Every block it returns (none) is zero.
    allocZeroes: true,
    resize,
    usableSize,
  };
}
