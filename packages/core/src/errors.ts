/**
 * Thrown for a configuration that cannot produce a correct allocator: an unknown strategy, an
 * alignment that is not a power of two, a static region that does not fit, conflicting options,
 * a name that clashes with one the module already has. Always thrown before any Wasm is
 * produced, and {@link installAllocator} leaves the module untouched when it throws one.
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

/**
 * A value as a message shows it: strings quoted (`"16"` and `16` differ), numbers, booleans and
 * plain data as JSON, and what JSON cannot show by its kind (`undefined`, `NaN`, a function).
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "number" || typeof value === "bigint") return Object.is(value, -0) ? "0" : String(value);
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return value.toString();
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Checks that `options` (given to `where`) is a plain options object, and when `known` is given,
 * that its keys are all known: a misspelt option is an error, not a silent default.
 */
export function checkOptions(where: string, options: unknown, known?: readonly string[]): asserts options is object {
  check(
    typeof options === "object" && options !== null && !Array.isArray(options),
    `${where}: options must be an object, got ${describeValue(options)}`,
  );
  if (!known) return;
  for (const key of Object.keys(options)) {
    check(known.includes(key), `${where}: unknown option ${JSON.stringify(key)} (known: ${known.join(", ")})`);
  }
}
