import binaryen from "binaryen";

/** "size": Binaryen's -Oz. "speed": -O3. "none": as emitted. */
export type OptimizeMode = "size" | "speed" | "none";

const LEVELS: Readonly<Record<Exclude<OptimizeMode, "none">, { optimize: number; shrink: number }>> = {
  size: { optimize: 2, shrink: 2 },
  speed: { optimize: 3, shrink: 0 },
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
  };
  try {
    binaryen.setOptimizeLevel(LEVELS[mode].optimize);
    binaryen.setShrinkLevel(LEVELS[mode].shrink);
    binaryen.setZeroFilledMemory(flags.zeroFilledMemory);
    binaryen.setLowMemoryUnused(true);
    return fn();
  } finally {
    binaryen.setOptimizeLevel(saved.optimize);
    binaryen.setShrinkLevel(saved.shrink);
    binaryen.setZeroFilledMemory(saved.zero);
    binaryen.setLowMemoryUnused(saved.low);
  }
}
