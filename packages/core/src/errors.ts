/**
 * Thrown for a configuration that cannot produce a correct allocator: an unknown strategy, an
 * alignment that is not a power of two, a static region that does not fit, conflicting options.
 * Always thrown before any Wasm is produced.
 */
export class AllocConfigError extends Error {
  override readonly name = "AllocConfigError";
}

/** Throws an {@link AllocConfigError} with `message` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AllocConfigError(message);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 31;
}
