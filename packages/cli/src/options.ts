/**
 * Options of strategies and backends on the command line: one declarative schema per strategy or
 * backend (in `registry.ts`) from which `--help`, parsing, validation and `--json` all come.
 *
 * ```text
 *   -s "size-classes(maxSmall=512,spanBytes=4KiB),free-list(fit=first)"
 *   -b "grow(growth=exact,exclusive)"        -b "static(start=64KiB,size=1MiB)"
 * ```
 *
 * A stack is names separated by commas, top first; each name may be followed by its options in
 * parentheses, `name=value` separated by commas (a bool option alone means true). Values are
 * checked here against the option's kind (a whole number, a byte size, one of a list, true or
 * false), then the strategy's own factory checks ranges with the API's errors.
 */
import { AllocConfigError } from "@alloc/core";

/** An option's value as the API takes it. */
export type OptionValue = number | string | boolean;

/** How an option's value is written: `int` and `bytes` take `0x…` and `KiB`/`MiB`/`GiB` too. */
export type OptionKind = "int" | "bytes" | "enum" | "bool" | "growth";

/** One option of a strategy or backend, as the CLI shows, parses and measures it. */
export interface OptionSpec {
  /** The API's name, e.g. `maxSmall` (FreeListOptions, SizeClassesOptions...). */
  readonly name: string;
  readonly kind: OptionKind;
  /** The values of an `enum`. */
  readonly values?: readonly string[];
  /**
   * The default, as the API resolves it; undefined when there is none (a required option, or one
   * whose default depends on other options: see {@link derive}).
   */
  readonly default?: OptionValue;
  /**
   * A default that depends on other options, the minimum alignment (size-classes' `classes`) or
   * the pointer width (the grow backend's `maximumPages`).
   */
  readonly derive?: (options: Readonly<Record<string, OptionValue>>, minAlign: number, memory64: boolean) => OptionValue;
  /** How `--help` shows the default when it is derived or absent: "maxSmall / 8", "required". */
  readonly defaultText?: string;
  /** One line for `--help`. */
  readonly doc: string;
  /**
   * Values other than the default whose code-size effect is measured (`option-sizes.json`, shown
   * by `--help`): every other value of an enum or bool, one or two telling values of a number.
   */
  readonly samples: readonly OptionValue[];
}

/** One named part of a stack as written: `size-classes(maxSmall=512)`. */
export interface Spec {
  readonly name: string;
  /** The options as written, unparsed: option name to value text (`undefined` for a bare bool). */
  readonly options: ReadonlyMap<string, string | undefined>;
}

/** Splits `a(x=1,y),b` into its parts, top first. Throws on unbalanced parentheses. */
export function parseSpecs(text: string, flag: string): Spec[] {
  const specs: Spec[] = [];
  const re = /\s*([^,()\s]+)\s*(?:\(([^()]*)\))?\s*(?:,|$)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m || m[0].length === 0) {
      throw new AllocConfigError(
        `${flag}: cannot read "${text}" at "${text.slice(at)}": write name(option=value,...),name, e.g. "size-classes(maxSmall=512),free-list(fit=first)"`,
      );
    }
    const name = m[1]!;
    const options = new Map<string, string | undefined>();
    for (const item of (m[2] ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
      const eq = item.indexOf("=");
      const key = (eq < 0 ? item : item.slice(0, eq)).trim();
      if (options.has(key)) throw new AllocConfigError(`${name}: option ${key} is given twice: give it once`);
      options.set(key, eq < 0 ? undefined : item.slice(eq + 1).trim());
    }
    specs.push({ name, options });
    at = re.lastIndex;
  }
  if (specs.length === 0) throw new AllocConfigError(`${flag} needs at least one name`);
  return specs;
}

/** A whole number: decimal, 0x hex, or with a KiB/MiB/GiB suffix; undefined when it is not one. */
export function parseInteger(value: string): number | undefined {
  const m = /^(0x[0-9a-f]+|\d+)\s*(kib|mib|gib)?$/i.exec(value.trim());
  if (!m) return undefined;
  const unit = { kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 }[(m[2] ?? "").toLowerCase() as "kib"] ?? 1;
  return Number(m[1]) * unit;
}

/** The grow backend's growth: "exact", a fraction such as 1/8, or a number such as 0.125. */
export function parseGrowth(value: string): "exact" | number | undefined {
  if (value.trim() === "exact") return "exact";
  const fraction = /^\s*1\s*\/\s*(\d+)\s*$/.exec(value);
  const n = fraction ? 1 / Number(fraction[1]) : /^\s*[\d.]+\s*$/.test(value) ? Number(value) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** What a value of this kind looks like, for messages and `--help`. */
export function kindText(spec: OptionSpec): string {
  switch (spec.kind) {
    case "int":
      return "a whole number";
    case "bytes":
      return "a byte size (e.g. 4096, 0x1000, 4KiB)";
    case "enum":
      return `one of ${spec.values!.join(", ")}`;
    case "bool":
      return "true or false";
    case "growth":
      return 'exact, or a fraction such as 1/8';
  }
}

/** Parses one option's text as its kind; throws an AllocConfigError naming owner, option and allowed values. */
export function parseValue(owner: string, spec: OptionSpec, text: string | undefined): OptionValue {
  const bad = (): never => {
    throw new AllocConfigError(
      `${owner}: ${spec.name} must be ${kindText(spec)}, got ${text === undefined ? "no value" : JSON.stringify(text)}`,
    );
  };
  if (spec.kind === "bool") {
    if (text === undefined || text === "true") return true;
    return text === "false" ? false : bad();
  }
  if (text === undefined) return bad();
  switch (spec.kind) {
    case "int":
    case "bytes":
      return parseInteger(text) ?? bad();
    case "enum":
      return spec.values!.includes(text) ? text : bad();
    case "growth":
      return parseGrowth(text) ?? bad();
  }
}

/** Parses a spec's options against the schema: unknown names are refused, listing the known ones. */
export function parseOptions(owner: string, schema: readonly OptionSpec[], options: ReadonlyMap<string, string | undefined>): Record<string, OptionValue> {
  const parsed: Record<string, OptionValue> = {};
  for (const [key, text] of options) {
    const spec = schema.find((s) => s.name === key);
    if (!spec) {
      throw new AllocConfigError(
        schema.length === 0
          ? `${owner} has no options, got ${key}`
          : `${owner}: unknown option ${JSON.stringify(key)} (options: ${schema.map((s) => s.name).join(", ")})`,
      );
    }
    parsed[key] = parseValue(owner, spec, text);
  }
  return parsed;
}

/**
 * Every option's value once defaults are applied, in schema order (for `--json`): what was given,
 * else the derived default, else the default; options without either are left out.
 */
export function resolveOptions(
  schema: readonly OptionSpec[],
  given: Readonly<Record<string, OptionValue>>,
  minAlign: number,
  memory64 = false,
): Record<string, OptionValue> {
  const resolved: Record<string, OptionValue> = {};
  for (const spec of schema) {
    const value = given[spec.name] ?? spec.derive?.(given, minAlign, memory64) ?? spec.default;
    if (value !== undefined) resolved[spec.name] = value;
  }
  return resolved;
}

/** Writes a value as the CLI takes it back. */
export function formatValue(value: OptionValue): string {
  return String(value);
}

/** Writes parsed options back as `name(a=1,b)`: how `--help` and messages show a composition. */
export function formatSpec(name: string, options: Readonly<Record<string, OptionValue>>): string {
  const items = Object.entries(options).map(([k, v]) => (v === true ? k : `${k}=${formatValue(v)}`));
  return items.length ? `${name}(${items.join(",")})` : name;
}
