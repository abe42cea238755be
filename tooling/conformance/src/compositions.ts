import { growBackend, PAGE_SIZE, type BuildOptions, type Strategy } from "@alloc/core";
import { STRATEGIES } from "@alloc/cli";
import { staticBackend } from "@alloc/page-backend-static";

/** One allocator to hold to the contract: a strategy stack over a backend, in a memory mode. */
export interface Composition {
  readonly name: string;
  /** Strategy names, top first. */
  readonly stack: readonly string[];
  readonly options: BuildOptions;
  /** Whether freed blocks are reused (bump's are not, but for the latest one). */
  readonly reuses: boolean;
  /** A 64-bit build (memory64). */
  readonly memory64: boolean;
  /** Every block's alignment (the build's minAlign): 8, or 16 as C programs swapped in ask. */
  readonly minAlign: number;
}

/**
 * Every strategy stack the registry can express, two levels deep: each strategy that takes pages
 * alone, and each strategy that takes an allocator over each one that takes pages and allows
 * something on top of it (not `topOnly`). A strategy added to the CLI registry is tested here
 * without anyone writing a line.
 */
export function stacks(): string[][] {
  const names = Object.keys(STRATEGIES);
  const strategy = (name: string) => STRATEGIES[name]!.create();
  const bottoms = names.filter((n) => strategy(n).accepts.includes("pages"));
  const tops = names.filter((n) => strategy(n).accepts.includes("allocator"));
  const parents = bottoms.filter((n) => !strategy(n).topOnly);
  return [...bottoms.map((b) => [b]), ...tops.flatMap((t) => parents.map((b) => [t, b]))];
}

/**
 * Strategies that never allocate, so that C's model (whose requests may fail only when memory
 * runs out) does not apply: each is held to its own contract in `never-allocates.test.ts`.
 */
export const NEVER_ALLOCATES: ReadonlySet<string> = new Set(["fail"]);

/** Strategies whose `usableSize` keeps the `usableSizeUnlocked` promise: thread caches build over them. */
export const CACHE_TOPS: ReadonlySet<string> = new Set(["size-classes", "free-list"]);

const backends: Record<string, Pick<BuildOptions, "backend" | "memory">> = {
  grow: {},
  "grow, imported memory": { memory: { mode: "import" }, backend: growBackend({ maximumPages: 512 }) },
  static: { backend: staticBackend({ start: PAGE_SIZE, size: 64 * PAGE_SIZE }) },
};

/**
 * Every stack over every backend and memory mode, in wasm32 and in memory64 (`stacks` as given; by
 * default every stack that allocates), and each wasm32 one over the grow and static backends
 * with `minAlign: 16` too (wasi-libc's alignment, what `alloc swap` builds for C programs: the
 * free list then cuts cells on a 16-byte grid).
 */
export function compositions(list = stacks().filter((s) => !s.some((n) => NEVER_ALLOCATES.has(n)))): Composition[] {
  const aligned16 = baseCompositions(list)
    .filter((c) => !c.memory64 && c.options.memory === undefined)
    .map((c) => ({ ...c, name: `${c.name}, minAlign 16`, options: { ...c.options, minAlign: 16 }, minAlign: 16 }));
  return [...baseCompositions(list), ...aligned16];
}

function baseCompositions(list: string[][]): Composition[] {
  return [false, true].flatMap((memory64) =>
    list.flatMap((stack) =>
      Object.entries(backends).map(([backend, options]) => ({
        name: `${stack.join(" > ")} over ${backend}${memory64 ? ", memory64" : ""}`,
        stack,
        options: {
          strategy: stack.map((n) => STRATEGIES[n]!.create()) as Strategy[],
          exports: ["malloc", "free", "calloc", "realloc", "aligned_alloc"],
          memory64,
          ...options,
        },
        reuses: stack[stack.length - 1] !== "bump" || stack.length > 1,
        memory64,
        minAlign: 8,
      })),
    ),
  );
}

/**
 * Every stack as a thread-safe build (`threads`), over the backends a shared memory allows: the
 * grow backend and a static region, both over an imported shared memory (a module's own memory
 * would be a memory per thread), in wasm32 and in memory64.
 */
export function threadedCompositions(threads: BuildOptions["threads"] = true): Composition[] {
  return compositions()
    .filter((c) => c.minAlign === 8 && (c.options.memory?.mode === "import" || c.options.backend?.name === "static"))
    .map((c) => ({
      ...c,
      name: c.name.replace("grow, imported memory", "grow"),
      options: { ...c.options, threads, memory: { mode: "import" } },
    }));
}

/**
 * The thread-safe builds with thread caches (`threadCache`): those whose top strategy lets a
 * thread read a block's size without the lock (size-classes and free-list; see
 * `usableSizeUnlocked` in @alloc/core's contracts). The others refuse the option.
 */
export function cachedCompositions(threadCache: BuildOptions["threadCache"] = true): Composition[] {
  return threadedCompositions()
    .filter((c) => CACHE_TOPS.has(c.stack[0]!))
    .map((c) => ({ ...c, name: `${c.name}, thread cache`, options: { ...c.options, threadCache } }));
}
