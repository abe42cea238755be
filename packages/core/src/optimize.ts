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
  flags: { zeroFilledMemory: boolean },
  fn: () => T,
): T {
  const saved = {
    optimize: binaryen.getOptimizeLevel(),
    shrink: binaryen.getShrinkLevel(),
    zero: binaryen.getZeroFilledMemory(),
    low: binaryen.getLowMemoryUnused(),
    alwaysInline: binaryen.getAlwaysInlineMaxSize(),
    flexibleInline: binaryen.getFlexibleInlineMaxSize(),
  };
  try {
    binaryen.setOptimizeLevel(LEVELS[mode].optimize);
    binaryen.setShrinkLevel(LEVELS[mode].shrink);
    binaryen.setZeroFilledMemory(flags.zeroFilledMemory);
    binaryen.setLowMemoryUnused(true);
    const { alwaysInline, flexibleInline } = LEVELS[mode];
    if (alwaysInline !== undefined) binaryen.setAlwaysInlineMaxSize(alwaysInline);
    if (flexibleInline !== undefined) binaryen.setFlexibleInlineMaxSize(flexibleInline);
    return fn();
  } finally {
    binaryen.setOptimizeLevel(saved.optimize);
    binaryen.setShrinkLevel(saved.shrink);
    binaryen.setZeroFilledMemory(saved.zero);
    binaryen.setLowMemoryUnused(saved.low);
    binaryen.setAlwaysInlineMaxSize(saved.alwaysInline);
    binaryen.setFlexibleInlineMaxSize(saved.flexibleInline);
  }
}
