/** @alloc/cli: the `alloc` command line, also callable in-process. */
export { buildOptionsFromFlags, enableMemory64, run } from "./cli.ts";
export type { Io } from "./cli.ts";
export { DEFAULT_STACK, STRATEGIES } from "./registry.ts";
export type { StrategyEntry } from "./registry.ts";
