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
}

/**
 * Every strategy stack the registry can express, two levels deep: each strategy that takes pages
 * alone, and each strategy that takes an allocator over each one that takes pages. A strategy
 * added to the CLI registry is tested here without anyone writing a line.
 */
export function stacks(): string[][] {
  const names = Object.keys(STRATEGIES);
  const accepts = (name: string) => STRATEGIES[name]!.create().accepts;
  const bottoms = names.filter((n) => accepts(n).includes("pages"));
  const tops = names.filter((n) => accepts(n).includes("allocator"));
  return [...bottoms.map((b) => [b]), ...tops.flatMap((t) => bottoms.map((b) => [t, b]))];
}

const backends: Record<string, Pick<BuildOptions, "backend" | "memory">> = {
  grow: {},
  "grow, imported memory": { memory: { mode: "import" }, backend: growBackend({ maximumPages: 512 }) },
  static: { backend: staticBackend({ start: PAGE_SIZE, size: 64 * PAGE_SIZE }) },
};

/** Every stack over every backend and memory mode. */
export function compositions(): Composition[] {
  return stacks().flatMap((stack) =>
    Object.entries(backends).map(([backend, options]) => ({
      name: `${stack.join(" > ")} over ${backend}`,
      stack,
      options: {
        strategy: stack.map((n) => STRATEGIES[n]!.create()) as Strategy[],
        exports: ["malloc", "free", "calloc", "realloc", "aligned_alloc"],
        ...options,
      },
      reuses: stack[stack.length - 1] !== "bump" || stack.length > 1,
    })),
  );
}
