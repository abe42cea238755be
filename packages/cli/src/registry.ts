import { bump } from "@alloc/bump";
import type { Strategy } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "@alloc/size-classes";

/** A strategy the CLI can build, by the name used in `--strategy`. */
export interface StrategyEntry {
  /** One line for `--help`. */
  readonly summary: string;
  /** A strategy with its default options. */
  create(): Strategy;
}

/** Every strategy the CLI knows, by name. */
export const STRATEGIES: Readonly<Record<string, StrategyEntry>> = {
  bump: {
    summary: "bump allocation: smallest and fastest; free takes back only the latest block",
    create: () => bump(),
  },
  "free-list": {
    summary: "general purpose: segregated-fit free list (TLSF), O(1), splitting and coalescing, any alignment; sits on pages",
    create: () => freeList(),
  },
  "size-classes": {
    summary: "the speed layer: per-class spans for small sizes (up to 1024 bytes), larger ones to the strategy below it",
    create: () => sizeClasses(),
  },
};

/**
 * The stack `alloc build` builds when no --strategy is given, top first: the free list alone
 * (bounded work, memory that follows live bytes, the smallest general-purpose build);
 * size-classes on top of it is the faster choice for heaps of many small objects.
 */
export const DEFAULT_STACK: readonly string[] = ["free-list"];
