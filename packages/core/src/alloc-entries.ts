import type { Expr, FunctionScope, Local } from "./codegen.ts";
import type { AllocatorFunctions, EmitContext } from "./contracts.ts";

/**
 * Builds the body of `alloc(size, align)` in a function scope: `align()` reads the alignment,
 * and `alignConst` is its value when it is a build-time constant (undefined otherwise).
 */
export type AllocBody = (f: FunctionScope, size: Local, align: () => Expr, alignConst: number | undefined) => Expr[];

/**
 * Emits a strategy's `alloc(size, align)` from `body`, and returns with it the
 * {@link AllocatorFunctions.allocFixed} that emits, once per alignment, a copy of the same body
 * with the alignment folded in.
 */
export function allocEntries(
  { cg, scope }: Pick<EmitContext, "cg" | "scope">,
  body: AllocBody,
): Pick<AllocatorFunctions, "alloc"> & { allocFixed: (align: number) => string } {
  const alloc = cg.function(scope("alloc"), ["size", "align"], "usize", (f) =>
    body(f, f.param("size"), () => f.param("align").get(), undefined),
  );
  const fixed = new Map<number, string>();
  const allocFixed = (align: number): string => {
    let name = fixed.get(align);
    if (!name) {
      name = cg.function(scope(`alloc_${align}`), ["size"], "usize", (f) =>
        body(f, f.param("size"), () => cg.size(align), align),
      );
      fixed.set(align, name);
    }
    return name;
  };
  return { alloc, allocFixed };
}
