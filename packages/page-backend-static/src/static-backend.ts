import {
  check,
  PAGE_SHIFT,
  PAGE_SIZE,
  MEMORY64_MAX_PAGES,
  WASM32_MAX_PAGES,
  type MemoryDescription,
  type PageBackend,
} from "@alloc/core";

export interface StaticBackendOptions {
  /** First byte of the region: a multiple of 64 KiB, at least 65536 (page 0 holds the null address). */
  readonly start: number;
  /** Bytes in the region: a positive multiple of 64 KiB. */
  readonly size: number;
}

/**
 * A page backend over the fixed region `[start, start + size)` of memory, chosen at build time.
 *
 * It never calls `memory.grow`: for hosts whose memory cannot grow, and for carving a sub-heap
 * out of a larger memory (two allocators, two regions). Pages are handed out upwards from
 * `start`; when the region is used up, `allocPages` returns 0. The region must lie inside the
 * memory at instantiation (the build sets the memory's initial size to cover it) and must be zero
 * then: nothing else (no data segment, no host code) may write to it. Installed into a module
 * (`installAllocator`), the region is checked against what the module is known to use: its active
 * data segments, and its stack and static data (below `__heap_base`, or below the initial value of
 * a `__stack_pointer` global), when the module has them under those names.
 *
 * State: one pointer-width global, the next page to hand out. Code size: about 20 bytes.
 */
export function staticBackend(options: StaticBackendOptions): PageBackend {
  check(
    typeof options === "object" && options !== null,
    `staticBackend: options must be an object with start and size, got ${options === undefined ? "undefined" : JSON.stringify(options)}`,
  );
  const { start, size } = options;
  const where = `static backend [start ${start}, size ${size}]`;
  check(Number.isInteger(start) && start >= PAGE_SIZE && start % PAGE_SIZE === 0,
    `${where}: start must be a multiple of 65536 and at least 65536 (page 0 holds the null address), got ${start}`);
  check(Number.isInteger(size) && size >= PAGE_SIZE && size % PAGE_SIZE === 0,
    `${where}: size must be a positive multiple of 65536, got ${size}`);
  const endPage = (start + size) / PAGE_SIZE;
  check(endPage <= MEMORY64_MAX_PAGES,
    `${where}: the region ends at page ${endPage}, past the memory64 limit of ${MEMORY64_MAX_PAGES} pages`);
  return {
    name: "static",
    minimumMemoryPages: endPage,
    validate(memory: MemoryDescription) {
      check(memory.memory64 || endPage <= WASM32_MAX_PAGES,
        `${where}: the region ends at page ${endPage}, past the wasm32 limit of ${WASM32_MAX_PAGES} pages (build with memory64 for more)`);
      check(memory.initialPages >= endPage,
        `${where}: the region ends at page ${endPage} but the memory starts with only ${memory.initialPages} pages; ` +
          `the region must lie inside the initial memory`);
      for (const used of memory.reserved ?? []) {
        check(used.end <= start || used.start >= start + size,
          Number.isFinite(used.end)
            ? `${where}: the region overlaps ${used.what} at [${used.start}, ${used.end}), which the allocator would ` +
                `overwrite: start the region at or above ${Math.ceil(used.end / PAGE_SIZE) * PAGE_SIZE}`
            : `${where}: the region cannot be checked against ${used.what}, which it may overlap: ` +
                `use the grow backend, which only hands out pages it grew`);
      }
    },
    emit({ cg, scope }) {
      const next = cg.global(scope("next"), start);
      const allocPages = cg.function(scope("alloc_pages"), ["pages"], "usize", (f) => {
        const pages = f.param("pages");
        const bytes = f.local(), base = f.local();
        return [
          // Refuse more pages than the region has (this also keeps `pages << 16` from wrapping),
          // then more bytes than are left in it.
          bytes.set(cg.shl(pages.get(), cg.size(PAGE_SHIFT))),
          cg.returnIf(
            cg.module.i32.or(
              cg.gtU(pages.get(), cg.size(size / PAGE_SIZE)),
              cg.gtU(bytes.get(), cg.sub(cg.size(start + size), next.get())),
            ),
            cg.size(0),
          ),
          base.set(next.get()),
          next.set(cg.add(base.get(), bytes.get())),
          base.get(),
        ];
      });
      // The region is one run: every page follows the last (extend is allocPages itself).
      return { allocPages, run: { start, end: () => next.get(), extend: allocPages, gaps: false } };
    },
  };
}
