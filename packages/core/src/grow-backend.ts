import { PAGE_SHIFT, PAGE_SIZE, type Expr, type FunctionScope, type Local, type Var } from "./codegen.ts";
import type { MemoryDescription, PageBackend } from "./contracts.ts";
import { check, checkOptions, describeValue } from "./errors.ts";

/** The most pages a wasm32 allocator hands out: all of memory but the last page, so that any
 *  address inside a page, plus up to 64 KiB, fits in 32 bits. */
export const WASM32_MAX_PAGES = 65535;

/**
 * The most pages a memory64 allocator hands out: 2^31 - 1 (128 TiB). Engines stop far lower today
 * (Node 20: 4 GiB); the bound keeps every address below 2^47, a safe JS number, and is the largest
 * maximum binaryen.js can declare.
 */
export const MEMORY64_MAX_PAGES = 2 ** 31 - 1;

/** The most pages an allocator of this width hands out. */
export function maxPages(memory64: boolean | undefined): number {
  return memory64 ? MEMORY64_MAX_PAGES : WASM32_MAX_PAGES;
}

/**
 * Where the heap starts in a module that owns its memory: page 0 is the allocator's too, but for
 * its first granule, two pointers (0 is the null pointer, never handed out): 8 bytes on wasm32,
 * 16 on memory64.
 */
export function ownMemoryHeapStart(memory64: boolean): number {
  return memory64 ? 16 : 8;
}

/** Grow backends told that they alone grow their memory (see {@link assumesExclusiveMemory}). */
const exclusiveBackends = new WeakSet<PageBackend>();

/**
 * True for a backend built by {@link growBackend} with `exclusive: true`: the allocator relies on
 * nobody else growing the memory, so nothing else in its module may.
 */
export function assumesExclusiveMemory(backend: PageBackend): boolean {
  return exclusiveBackends.has(backend);
}

/**
 * The default {@link GrowBackendOptions.growth}: grow by at least a sixteenth of the memory.
 * Geometric, so a heap that grows to N pages takes O(log N) grows (V8 pays a full GC for each past
 * about 40 MiB), and it holds at most 1/16 (6.25 %) of the memory unused beyond the last request.
 * An eighth halves the grows but holds up to 12.5 %: that alone put the default at 1.11× Rust
 * std's dlmalloc's memory on generated workloads (seeds 2-5), over issue 10's 1.1× bound.
 */
export const DEFAULT_GROWTH = 1 / 16;

export interface GrowBackendOptions {
  /**
   * The backend refuses to grow memory beyond this many pages (returns 0 instead), even when
   * the engine would allow it. Default and upper bound: 65535 (4 GiB less one page) on wasm32,
   * {@link MEMORY64_MAX_PAGES} on memory64.
   */
  readonly maximumPages?: number;
  /**
   * An opt-in assumption (default false): the allocator is the only code that grows this memory.
   * Nobody else calls `memory.grow` on it: not the host through the exported memory, not other
   * code in the module, not a second allocator. Then every page the backend grows follows the
   * previous ones, the heap's end is `memory.size`, and strategies skip their region bookkeeping
   * and fences (bump with malloc and free: 192 bytes instead of 230 with the default growth, 170
   * instead of 204 with exact growth; the default composition about 80 bytes less). Only for a
   * memory whose size at start is known (not an imported one).
   *
   * Unsafe when the assumption is broken: if anyone else grows the memory, the allocator hands
   * out their pages as its own (blocks overlapping the host's data, or traps). Without it (the
   * default), every grow is checked for where its pages start, so a host may grow and use the
   * memory freely.
   */
  readonly exclusive?: boolean;
  /**
   * How much to grow when pages are lacking: `"exact"` (just the pages asked for), or a fraction
   * of the current memory, `1`, `1/2`, `1/4` ... `1/1024` (default {@link DEFAULT_GROWTH}, 1/16):
   * each `memory.grow` asks for the pages lacking plus that share of the memory's size, capped by
   * the maximum (near the maximum, or when an imported memory's host refuses the step, it grows
   * by just the pages lacking).
   * Engines pay for every grow (V8 runs a full garbage collection inside `memory.grow` past about
   * 40 MiB), so growing in larger steps saves time on growing heaps; memories under 16 pages grow
   * exactly either way (a sixteenth of them is less than a page).
   *
   * What it costs: up to that fraction of the memory held unused until the heap needs it; and
   * code. Over a module's own memory (exclusive or not) the backend is a run whose `extend` grows
   * more than asked: the extra pages are room at the run's end, about 25 bytes. Over an imported
   * memory, or installed into a module, strategies get pages from `allocPages`, and two globals
   * and about 80-100 bytes keep the pages grown beyond a request as a reserve that later calls
   * hand out first (they follow the pages handed out before, so strategies merge them); a reserve
   * that another grow of the memory separates from the next pages is dropped.
   */
  readonly growth?: "exact" | number;
}

/**
 * The default page backend: fresh pages from `memory.grow`.
 *
 * It hands out only pages it grew itself, never memory that existed before (that belongs to
 * the host: its data, its stack, the null page), so it is safe to install into any module, and
 * the host may grow the memory too (unless the backend is told it is {@link
 * GrowBackendOptions.exclusive}). Each grow adds a sixteenth of the memory to the pages lacking
 * by default, keeping what is not needed yet for later requests ({@link GrowBackendOptions.growth}).
 * `allocPages` returns 0 when the engine refuses to grow or the maximum would be passed.
 */
export function growBackend(options: GrowBackendOptions = {}): PageBackend {
  checkOptions("growBackend", options, ["maximumPages", "exclusive", "growth"]);
  const pageLimit = options.maximumPages;
  check(
    pageLimit === undefined || (Number.isInteger(pageLimit) && pageLimit >= 1 && pageLimit <= MEMORY64_MAX_PAGES),
    `grow backend: maximumPages must be an integer from 1 to ${WASM32_MAX_PAGES} (${MEMORY64_MAX_PAGES} on memory64), got ${describeValue(pageLimit)}`,
  );
  const exclusive = options.exclusive ?? false;
  check(typeof exclusive === "boolean", `grow backend: exclusive must be true or false, got ${describeValue(exclusive)}`);
  const growthShift = parseGrowth(options.growth ?? DEFAULT_GROWTH);
  const backend: PageBackend = {
    name: "grow",
    validate(memory: MemoryDescription) {
      const maximumPages = pageLimit ?? maxPages(memory.memory64);
      check(
        maximumPages <= maxPages(memory.memory64),
        `grow backend: maximumPages (${maximumPages}) is above ${WASM32_MAX_PAGES}, the most a wasm32 memory can hold: build with memory64 for more`,
      );
      check(
        memory.initialPages >= 1,
        "grow backend: the memory needs at least 1 initial page (page 0 holds the null address, " +
          "so the allocator never hands it out)",
      );
      check(
        !exclusive || memory.mode !== "import",
        "grow backend: exclusive needs a memory whose size at start is known; an imported memory's is not",
      );
      check(
        memory.initialPages <= maximumPages,
        `grow backend: maximumPages (${maximumPages}) is below the memory's initial size (${memory.initialPages} pages)`,
      );
    },
    emit({ cg, scope }, memory: MemoryDescription) {
      const maximumPages = pageLimit ?? maxPages(cg.memory64);
      // The fewest pages anyone may stop at: ours, or the memory's declared maximum.
      const limit = Math.min(maximumPages, memory.maximumPages ?? maxPages(cg.memory64));
      // The engine enforces a declared maximum for us; otherwise check before growing.
      const engineEnforces = memory.maximumPages !== undefined && memory.maximumPages <= maximumPages;
      /**
       * Grows the memory by `pages` (at least; with a growth policy, by the policy's step, capped
       * by the limit) and sets `old` to the previous size in pages and `grown` (when given) to the
       * pages grown; returns `fail` from the function when it cannot.
       */
      /** `return fail` when `size + pages` pages would pass the limit. */
      const refuseBeyond = (size: Expr, pages: Local, fail: Expr) =>
        cg.returnIf(cg.gtU(cg.add(size, pages.get()), cg.size(limit)), fail);
      /** allocPages without a reserve: the pages asked for, straight from memory.grow. */
      const exactAllocPages = () =>
        cg.function(scope("alloc_pages"), ["pages"], "usize", (f) => {
          const pages = f.param("pages"), old = f.local();
          return [
            ...(engineEnforces ? [] : [refuseBeyond(cg.memorySize(), pages, cg.size(0))]),
            old.set(cg.memoryGrow(pages.get())),
            // memory.grow yields -1 on refusal; page 0 is never handed out, so 0 means failure.
            cg.select(cg.eq(old.get(), cg.size(-1)), cg.size(0), cg.shl(old.get(), cg.size(PAGE_SHIFT))),
          ];
        });
      const grow = (f: FunctionScope, pages: Local, old: Local, fail: Expr, grown?: Local): Expr[] => {
        if (growthShift === undefined) {
          return [
            ...(engineEnforces ? [] : [refuseBeyond(cg.memorySize(), pages, fail)]),
            old.set(cg.memoryGrow(pages.get())),
            ...(grown ? [grown.set(pages.get())] : []),
            cg.returnIf(cg.eq(old.get(), cg.size(-1)), fail),
          ];
        }
        const size = f.local(), room = f.local();
        const g = grown ?? f.local();
        const capped = !engineEnforces;
        return [
          // The engine refuses to pass a declared maximum: a step it refuses falls back to the
          // pages asked for. Under a limit of our own, `size + pages <= limit` first (the sum
          // cannot wrap: strategies never ask for more pages than the address space holds), and the step
          // is capped at `limit - size`.
          ...(capped ? [refuseBeyond(size.tee(cg.memorySize()), pages, fail)] : []),
          // g = pages + (size >> shift)
          g.set(cg.add(pages.get(), cg.shrU(capped ? size.get() : cg.memorySize(), cg.size(growthShift)))),
          ...(capped
            ? [cg.when(cg.gtU(g.get(), room.tee(cg.sub(cg.size(limit), size.get()))), [g.set(room.get())])]
            : []),
          old.set(cg.memoryGrow(g.get())),
          // An engine whose limit the build cannot know (an imported memory's maximum) may refuse
          // the step and still grant the pages asked for.
          ...(!capped || memory.maximumPages === undefined
            ? [cg.when(cg.eq(old.get(), cg.size(-1)), [g.set(pages.get()), old.set(cg.memoryGrow(pages.get()))])]
            : []),
          cg.returnIf(cg.eq(old.get(), cg.size(-1)), fail),
        ];
      };

      const extendFrom = (runEnd?: Var) =>
        cg.function(scope("extend"), ["pages"], "usize", (f) => {
          const old = f.local(), grown = f.local();
          return [
            ...grow(f, f.param("pages"), old, cg.size(0), runEnd && grown),
            // The new pages start at the memory's end before the call: the run's end, unless
            // someone else grew the memory since (then the strategy fences off what lies between).
            ...(runEnd ? [runEnd.set(cg.shl(cg.add(old.get(), grown.get()), cg.size(PAGE_SHIFT)))] : []),
            cg.shl(old.get(), cg.size(PAGE_SHIFT)),
          ];
        });
      if (exclusive) {
        // The run starts where the memory ends at instantiation (in a module that owns its memory,
        // right after the null word) and ends where the memory ends now: pages grown beyond a
        // request are room in the run.
        return {
          allocPages: exactAllocPages(),
          run: {
            start: memory.mode === "own" ? ownMemoryHeapStart(cg.memory64) : memory.initialPages * PAGE_SIZE,
            end: () => cg.shl(cg.memorySize(), cg.size(PAGE_SHIFT)),
            extend: extendFrom(),
            gaps: false,
          },
        };
      }
      if (memory.mode === "own") {
        // A module that owns its memory: its initial memory is the allocator's (after the null
        // word), but the host may grow the exported memory too. The run's end is a global, and
        // pages grown beyond a request are room in the run; pages the host grew are fenced off by
        // the strategy (see ContiguousRun.extend).
        const runEnd = cg.global(scope("end"), memory.initialPages * PAGE_SIZE);
        return {
          allocPages: exactAllocPages(),
          run: { start: ownMemoryHeapStart(cg.memory64), end: () => runEnd.get(), extend: extendFrom(runEnd), gaps: true },
        };
      }

      if (growthShift === undefined) return { allocPages: exactAllocPages() };

      // The reserve: pages [next, end) grown beyond earlier requests, handed out first.
      const next = cg.global(scope("next"));
      const end = cg.global(scope("end"));
      const allocPages = cg.function(scope("alloc_pages"), ["pages"], "usize", (f) => {
        const pages = f.param("pages");
        const old = f.local(), grown = f.local(), p = f.local();
        return [
          cg.when(cg.gtU(pages.get(), cg.sub(end.get(), next.get())), [
            ...grow(f, pages, old, cg.size(0), grown),
            // Pages that follow the reserve extend it; others start a new one (the old reserve is
            // dropped: someone else's pages now separate it from any later ones).
            cg.when(cg.ne(old.get(), end.get()), [next.set(old.get())]),
            end.set(cg.add(old.get(), grown.get())),
          ]),
          next.set(cg.add(p.tee(next.get()), pages.get())),
          cg.shl(p.get(), cg.size(PAGE_SHIFT)),
        ];
      });
      return { allocPages };
    },
  };
  if (exclusive) exclusiveBackends.add(backend);
  return backend;
}

/** The growth option as a shift (grow by `size >> shift`), or undefined for "exact". */
function parseGrowth(growth: "exact" | number): number | undefined {
  if (growth === "exact") return undefined;
  const shift = typeof growth === "number" && growth > 0 ? -Math.log2(growth) : NaN;
  check(
    Number.isInteger(shift) && shift >= 0 && shift <= 10,
    `grow backend: growth must be "exact" or a fraction of the memory from 1 down to 1/1024 that is a power of two (1, 1/2, 1/4, 1/8...), got ${describeValue(growth)}`,
  );
  return shift;
}
