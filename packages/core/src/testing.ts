/**
 * @alloc/core/testing: a reference strategy for testing page backends and the C API without a
 * strategy package (which would make the packages depend on each other in a cycle).
 */
import { PAGE_SHIFT } from "./codegen.ts";
import type { Strategy } from "./contracts.ts";

/**
 * The smallest strategy there is (lol_alloc's LeakingPageAllocator): every block gets fresh pages
 * of its own, so every block is 64 KiB aligned, and `free` does nothing. `alloc(0)` returns 0.
 * The public version is `@alloc/page`, which core cannot depend on (it depends on core); this one
 * also leaves out `resize` and `allocZeroes` on purpose, so that core's tests reach the C API's
 * general paths (calloc clearing its block, realloc moving every block).
 */
export function pagePerBlock(): Strategy {
  return {
    name: "page-per-block",
    accepts: ["pages"],
    emit({ cg, scope }, parent) {
      if (parent.kind !== "pages") throw new Error("page-per-block: needs a page backend below it");
      const alloc = cg.function(scope("alloc"), ["size", "align"], "usize", (f) => {
        const size = f.param("size");
        return [
          cg.returnIf(cg.eqz(size.get()), cg.size(0)),
          cg.call(parent.pages.allocPages, [
            cg.add(cg.shrU(cg.sub(size.get(), cg.size(1)), cg.size(PAGE_SHIFT)), cg.size(1)),
          ]),
        ];
      });
      const free = cg.function(scope("free"), ["ptr"], "none", () => cg.module.nop());
      return { alloc, free };
    },
  };
}
