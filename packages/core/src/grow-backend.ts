import { PAGE_SHIFT, PAGE_SIZE, type Expr } from "./codegen.ts";
import type { MemoryDescription, PageBackend } from "./contracts.ts";
import { check } from "./errors.ts";

/** The most pages a wasm32 allocator hands out: all of memory but the last page, so that any
 *  address inside a page, plus up to 64 KiB, fits in 32 bits. */
export const WASM32_MAX_PAGES = 65535;

/**
 * Where the heap starts in a module that owns its memory and grows it exclusively: page 0 is
 * the allocator's too, but for its first 8 bytes (0 is the null pointer, never handed out).
 */
export const OWN_MEMORY_HEAP_START = 8;

export interface GrowBackendOptions {
  /**
   * The backend refuses to grow memory beyond this many pages (returns 0 instead), even when
   * the engine would allow it. Default and upper bound: 65535 (4 GiB less one page).
   */
  readonly maximumPages?: number;
  /**
   * The allocator is the only code that grows this memory: nobody else calls `memory.grow` on it
   * (not the host through the exported memory, not other code in the module). Then every page the
   * backend grows follows the previous ones, and strategies skip their region bookkeeping (bump
   * saves about 30 bytes). Only for a memory the module defines itself: its size at start is known.
   * Default: true for a module that owns its memory, false when the memory is imported or
   * the allocator is installed into an existing module.
   */
  readonly exclusive?: boolean;
}

/**
 * The default page backend: fresh pages from `memory.grow`.
 *
 * It hands out only pages it grew itself, never memory that existed before (that belongs to
 * the host: its data, its stack, the null page), so it is safe to install into any module.
 * See {@link GrowBackendOptions.exclusive} for the one assumption it makes by default in a
 * module that owns its memory.
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
        !options.exclusive || memory.mode !== "import",
        "grow backend: exclusive needs a memory whose size at start is known; an imported memory's is not",
      );
      check(
        memory.initialPages <= maximumPages,
        `grow backend: maximumPages (${maximumPages}) is below the memory's initial size (${memory.initialPages} pages)`,
      );
    },
    emit({ cg, scope }, memory: MemoryDescription) {
      const exclusive = options.exclusive ?? memory.mode === "own";
      // The engine enforces a declared maximum for us; otherwise check before growing.
      const engineEnforces = memory.maximumPages !== undefined && memory.maximumPages <= maximumPages;
      // Refuse to pass the maximum ourselves when the engine will not.
      const guard = (pages: Expr) =>
        engineEnforces ? [] : [cg.returnIf(cg.gtU(cg.add(cg.memorySize(), pages), cg.size(maximumPages)), cg.size(0))];
      const allocPages = cg.function(scope("alloc_pages"), ["pages"], "usize", (f) => {
        const pages = f.param("pages");
        const old = f.local();
        return [
          ...guard(pages.get()),
          old.set(cg.memoryGrow(pages.get())),
          // memory.grow yields -1 on refusal; page 0 is never handed out, so 0 means failure.
          cg.select(cg.eq(old.get(), cg.size(-1)), cg.size(0), cg.shl(old.get(), cg.size(PAGE_SHIFT))),
        ];
      });
      if (!exclusive) return { allocPages };
      // The run starts where the memory ends at instantiation and ends where it ends now.
      const extend = cg.function(scope("extend"), ["pages"], "i32", (f) => {
        const pages = f.param("pages");
        return [...guard(pages.get()), cg.ne(cg.memoryGrow(pages.get()), cg.size(-1))];
      });
      return {
        allocPages,
        run: {
          // A module that owns its memory has nothing else in it: the run starts right after the
          // null word. Otherwise it starts where the memory ends at instantiation.
          start: memory.mode === "own" ? OWN_MEMORY_HEAP_START : memory.initialPages * PAGE_SIZE,
          end: () => cg.shl(cg.memorySize(), cg.size(PAGE_SHIFT)),
          extend,
        },
      };
    },
  };
}
