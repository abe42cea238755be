import { bump } from "@alloc/bump";
import type { Strategy } from "@alloc/core";

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
};

/** The stack `alloc build` builds when no --strategy is given, top first. */
export const DEFAULT_STACK: readonly string[] = ["bump"];
