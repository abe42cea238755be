import { PAGE_SHIFT } from "./codegen.ts";
import type { MemoryDescription, PageBackend } from "./contracts.ts";
import { check } from "./errors.ts";

/** The most pages a wasm32 allocator hands out: all of memory but the last page, so that any
 *  address inside a page, plus up to 64 KiB, fits in 32 bits. */
export const WASM32_MAX_PAGES = 65535;

export interface GrowBackendOptions {
  /**
   * The backend refuses to grow memory beyond this many pages (returns 0 instead), even when
   * the engine would allow it. Default and upper bound: 65535 (4 GiB less one page).
   */
  readonly maximumPages?: number;
}

/**
 * The default page backend: fresh pages from `memory.grow`.
 *
 * It hands out only pages it grew itself, never memory that existed before (that belongs to
 * the host: its data, its stack, the null page), so it is safe to install into any module.
 * `allocPages` returns 0 when the engine refuses to grow or the maximum would be passed.
 * Code size: 15–25 bytes.
 */
export function growBackend(options: GrowBackendOptions = {}): PageBackend {
  const maximumPages = options.maximumPages ?? WASM32_MAX_PAGES;
  check(
    Number.isInteger(maximumPages) && maximumPages >= 1 && maximumPages <= WASM32_MAX_PAGES,
    `grow backend: maximumPages must be an integer from 1 to ${WASM32_MAX_PAGES}, got ${maximumPages}`,
  );
  return {
    name: "grow",
    validate(memory: MemoryDescription) {
      check(
        memory.initialPages >= 1,
        "grow backend: the memory needs at least 1 initial page (page 0 holds the null address, " +
          "so the allocator never hands it out)",
      );
      check(
        memory.initialPages <= maximumPages,
        `grow backend: maximumPages (${maximumPages}) is below the memory's initial size (${memory.initialPages} pages)`,
      );
    },
    emit({ cg, scope }, memory: MemoryDescription) {
      // The engine enforces a declared maximum for us; otherwise check before growing.
      const engineEnforces = memory.maximumPages !== undefined && memory.maximumPages <= maximumPages;
      const allocPages = cg.function(scope("alloc_pages"), ["pages"], "usize", (f) => {
        const pages = f.param("pages");
        const old = f.local();
        return [
          ...(engineEnforces
            ? []
            : [cg.returnIf(cg.gtU(cg.add(cg.memorySize(), pages.get()), cg.size(maximumPages)), cg.size(0))]),
          old.set(cg.memoryGrow(pages.get())),
          // memory.grow yields -1 on refusal; page 0 is never handed out, so 0 means failure.
          cg.select(cg.eq(old.get(), cg.size(-1)), cg.size(0), cg.shl(old.get(), cg.size(PAGE_SHIFT))),
        ];
      });
      return { allocPages };
    },
  };
}
