import { bump } from "@alloc/bump";
import { DEFAULT_GROWTH, growBackend, MEMORY64_MAX_PAGES, WASM32_MAX_PAGES, type PageBackend, type Strategy } from "@alloc/core";
import { fail } from "@alloc/fail";
import { freeList, type FreeListOptions } from "@alloc/free-list";
import { page } from "@alloc/page";
import { staticBackend } from "@alloc/page-backend-static";
import { sizeClasses, type SizeClassesOptions } from "@alloc/size-classes";
import type { OptionSpec, OptionValue } from "./options.ts";

/** Options as parsed from the command line, by the API's names. */
export type ParsedOptions = Readonly<Record<string, OptionValue>>;

/** A strategy the CLI can build, by the name used in `--strategy`. */
export interface StrategyEntry {
  /** One line for `--help`. */
  readonly summary: string;
  /**
   * The strategy's options, as `--strategy "name(option=value,...)"` takes them (none when
   * absent). Adding one here puts it in `--help`, parsing, `--json` and the measured code sizes.
   */
  readonly options?: readonly OptionSpec[];
  /** The strategy, with these options (already checked against `options`) or its defaults. */
  create(options?: ParsedOptions): Strategy;
}

/** A page backend the CLI can build, by the name used in `--backend`. */
export interface BackendEntry {
  readonly summary: string;
  readonly options: readonly OptionSpec[];
  create(options: ParsedOptions): PageBackend;
}

/** Every strategy the CLI knows, by name. */
export const STRATEGIES: Readonly<Record<string, StrategyEntry>> = {
  bump: {
    summary: "bump allocation: smallest and fastest; free takes back only the latest block",
    create: () => bump(),
  },
  "free-list": {
    summary: "general purpose: segregated-fit free list (TLSF), O(1), splitting and coalescing, any alignment; sits on pages",
    options: [
      {
        name: "fit",
        kind: "enum",
        values: ["bins", "first"],
        default: "bins",
        doc: "how alloc finds a free cell: bins (TLSF, bounded steps) or first (one list, first fit: smaller, walks grow with free cells)",
        samples: ["first"],
      },
    ],
    create: (options = {}) => freeList(options as FreeListOptions),
  },
  "size-classes": {
    summary: "the speed layer: per-class spans for small sizes (up to maxSmall bytes), larger ones to the strategy below it",
    options: [
      { name: "maxSmall", kind: "bytes", default: 1024, doc: "the largest request served from a class (1 to 65536)", samples: [256, 4096] },
      {
        name: "classes",
        kind: "int",
        derive: (o, minAlign) => Math.max(1, Math.floor(Number(o.maxSmall ?? 1024) / Math.max(8, minAlign))),
        defaultText: "maxSmall / max(8, minAlign)",
        doc: "how many classes share [1, maxSmall] (their spacing, maxSmall / classes, must be a power of two >= minAlign); one class more holds the requests up to maxSmall that the header word leaves out",
        samples: [16],
      },
      { name: "spanBytes", kind: "bytes", default: 1024, doc: "a class's first span (256 B to 16 MiB, a multiple of minAlign)", samples: [4096] },
      { name: "spanBlocks", kind: "int", default: 2, doc: "the fewest blocks a span holds (1 to 4096)", samples: [8] },
      { name: "spanDoublings", kind: "int", default: 2, doc: "how many times a class's spans double (0 to 16)", samples: [0] },
      { name: "spareSpans", kind: "int", default: 4, doc: "empty spans kept rather than given back (0 or a power of two up to 256)", samples: [0, 16] },
    ],
    create: (options = {}) => sizeClasses(options as SizeClassesOptions),
  },
  page: {
    summary: "fresh pages for every block, never reused (lol_alloc's LeakingPageAllocator): tiny; for a few large blocks",
    create: () => page(),
  },
  fail: {
    summary: "every allocation returns 0: proves a program never allocates, the smallest module; only alone",
    create: () => fail(),
  },
};

/** Every page backend the CLI knows, by name. */
export const BACKENDS: Readonly<Record<string, BackendEntry>> = {
  grow: {
    summary: "memory.grow (the default): safe when the host grows the memory too",
    options: [
      {
        name: "growth",
        kind: "growth",
        default: DEFAULT_GROWTH,
        defaultText: "1/16",
        doc: "grow by the pages lacking plus this fraction of the memory (1 to 1/1024, powers of two), or exact",
        samples: ["exact"],
      },
      {
        name: "exclusive",
        kind: "bool",
        default: false,
        doc: "assume nothing else ever grows the memory: smaller, but unsafe if the host grows the exported memory",
        samples: [true],
      },
      {
        name: "maximumPages",
        kind: "int",
        derive: (_options, _minAlign, memory64) => (memory64 ? MEMORY64_MAX_PAGES : WASM32_MAX_PAGES),
        defaultText: `${WASM32_MAX_PAGES} (${MEMORY64_MAX_PAGES} on memory64)`,
        doc: "never grow memory past this many pages",
        samples: [256],
      },
    ],
    create: (options) => growBackend(options),
  },
  static: {
    summary: "a fixed region [start, start + size); never calls memory.grow",
    options: [
      { name: "start", kind: "bytes", defaultText: "none: required", doc: "first byte of the region (a multiple of 64KiB, at least 64KiB)", samples: [] },
      { name: "size", kind: "bytes", defaultText: "none: required", doc: "bytes in the region (a positive multiple of 64KiB)", samples: [] },
    ],
    create: (options) => staticBackend(options as { start: number; size: number }),
  },
};

/**
 * The stack `alloc build` builds when no --strategy is given, top first: the free list alone
 * (bounded work, memory that follows live bytes, the smallest general-purpose build);
 * size-classes on top of it is the faster choice for heaps of many small objects.
 */
export const DEFAULT_STACK: readonly string[] = ["free-list"];
