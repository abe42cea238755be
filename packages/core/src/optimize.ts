import binaryen from "binaryen";

/** "size": Binaryen's -Oz. "speed": -O3. "none": as emitted. */
export type OptimizeMode = "size" | "speed" | "none";

/**
 * Inlining limits (in Binaryen's size units): for speed, helpers such as a free list's `unlink`
 * or its bin computation are inlined at every call site (each call saved is a few ns per
 * operation; free-list's five C functions grow from 1.4 to 2.3 KB). For size, Binaryen's defaults.
 */
const LEVELS: Readonly<Record<Exclude<OptimizeMode, "none">, { optimize: number; shrink: number; alwaysInline?: number; flexibleInline?: number }>> = {
  size: { optimize: 2, shrink: 2 },
  speed: { optimize: 3, shrink: 0, alwaysInline: 40, flexibleInline: 160 },
};

/** What a build tells Binaryen about the module besides the optimisation goal. */
export interface OptimizeFlags {
  /** Memory starts zeroed (a module that owns its memory): Binaryen may drop stores of zero. */
  readonly zeroFilledMemory: boolean;
  /**
   * No code reads or writes addresses below 1024 (default true: an allocator's own module). False
   * for a whole program, whose data and stack may start at address 0.
   */
  readonly lowMemoryUnused?: boolean;
  /** Keep names in the emitted binary (default: as Binaryen was set). */
  readonly debugInfo?: boolean;
  /** Speed builds inline helpers at every call site (default true); false leaves Binaryen's limits. */
  readonly inlineHelpers?: boolean;
}

/**
 * Runs `fn` with Binaryen's process-wide optimisation settings set for `mode`, and restores
 * the previous settings afterwards, so a build never leaks its settings into a user's own
 * Binaryen work (or into the next build).
 *
 * `lowMemoryUnused` is always on: no allocator ever touches addresses below 1024 (page 0 is
 * never handed out), which lets Binaryen fold constant offsets into loads and stores.
 * `zeroFilledMemory` is on only for a module that owns its memory.
 */
export function withOptimizeSettings<T>(
  mode: Exclude<OptimizeMode, "none">,
  flags: OptimizeFlags,
  fn: () => T,
): T {
  const saved = {
    optimize: binaryen.getOptimizeLevel(),
    shrink: binaryen.getShrinkLevel(),
    zero: binaryen.getZeroFilledMemory(),
    low: binaryen.getLowMemoryUnused(),
    debugInfo: binaryen.getDebugInfo(),
    alwaysInline: binaryen.getAlwaysInlineMaxSize(),
    flexibleInline: binaryen.getFlexibleInlineMaxSize(),
  };
  try {
    binaryen.setOptimizeLevel(LEVELS[mode].optimize);
    binaryen.setShrinkLevel(LEVELS[mode].shrink);
    binaryen.setZeroFilledMemory(flags.zeroFilledMemory);
    binaryen.setLowMemoryUnused(flags.lowMemoryUnused ?? true);
    if (flags.debugInfo !== undefined) binaryen.setDebugInfo(flags.debugInfo);
    const { alwaysInline, flexibleInline } = flags.inlineHelpers === false ? {} : LEVELS[mode];
    if (alwaysInline !== undefined) binaryen.setAlwaysInlineMaxSize(alwaysInline);
    if (flexibleInline !== undefined) binaryen.setFlexibleInlineMaxSize(flexibleInline);
    return fn();
  } finally {
    binaryen.setOptimizeLevel(saved.optimize);
    binaryen.setShrinkLevel(saved.shrink);
    binaryen.setZeroFilledMemory(saved.zero);
    binaryen.setLowMemoryUnused(saved.low);
    binaryen.setDebugInfo(saved.debugInfo);
    binaryen.setAlwaysInlineMaxSize(saved.alwaysInline);
    binaryen.setFlexibleInlineMaxSize(saved.flexibleInline);
  }
}
