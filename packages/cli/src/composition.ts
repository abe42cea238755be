/**
 * The composition the command line names: `--strategy` and `--backend` with their options (see
 * `options.ts`), and the older backend flags (`--static-start`, `--growth`...), which set the
 * same options. Shared by `build`, `replay`, `swap` and `record`.
 */
import { AllocConfigError, type PageBackend, type Strategy } from "@alloc/core";
import { BACKENDS, STRATEGIES, type ParsedOptions } from "./registry.ts";
import { formatSpec, parseOptions, parseSpecs, resolveOptions, type OptionSpec, type OptionValue } from "./options.ts";
import { OPTION_SIZES, SIZE_REFERENCE } from "./option-sizes.data.ts";

/** A strategy or backend by name, with the options given for it. */
export interface Part {
  readonly name: string;
  readonly options: ParsedOptions;
}

/** The older flags of the backends: each sets one option of one backend. */
export interface BackendFlags {
  staticStart?: number;
  staticSize?: number;
  growMaxPages?: number;
  growth?: "exact" | number;
  exclusive?: boolean;
}

const LEGACY: readonly { flag: string; key: keyof BackendFlags; backend: string; option: string }[] = [
  { flag: "--static-start", key: "staticStart", backend: "static", option: "start" },
  { flag: "--static-size", key: "staticSize", backend: "static", option: "size" },
  { flag: "--grow-max-pages", key: "growMaxPages", backend: "grow", option: "maximumPages" },
  { flag: "--growth", key: "growth", backend: "grow", option: "growth" },
  { flag: "--exclusive", key: "exclusive", backend: "grow", option: "exclusive" },
];

/** The strategy stack `--strategy` names, top first, each with its options checked against its schema. */
export function parseStack(text: string): Part[] {
  return parseSpecs(text, "--strategy").map(({ name, options }) => {
    const entry = STRATEGIES[name];
    if (!entry) throw new AllocConfigError(`unknown strategy "${name}" (known: ${Object.keys(STRATEGIES).join(", ")})`);
    return { name, options: parseOptions(name, entry.options ?? [], options) };
  });
}

/** The backend `--backend` names with its options, and the older flags folded in. */
export function parseBackend(text: string, flags: BackendFlags): Part {
  const specs = parseSpecs(text, "--backend");
  if (specs.length > 1) throw new AllocConfigError(`--backend takes one backend, got ${specs.length}: ${text}`);
  const { name, options } = specs[0]!;
  const entry = BACKENDS[name];
  if (!entry) throw new AllocConfigError(`unknown backend "${name}" (known: ${Object.keys(BACKENDS).join(", ")})`);
  const parsed: Record<string, OptionValue> = parseOptions(name, entry.options, options);
  const given = LEGACY.filter((l) => flags[l.key] !== undefined);
  const misplaced = given.filter((l) => l.backend !== name);
  if (misplaced.length > 0) {
    const names = misplaced.map((l) => l.flag.replace("--exclusive", "--exclusive/--no-exclusive"));
    throw new AllocConfigError(
      name === "static"
        ? `${names.join(", ")} apply to --backend grow, not static`
        : `${names.join(", ")} need --backend static`,
    );
  }
  for (const l of given) {
    if (parsed[l.option] !== undefined) {
      throw new AllocConfigError(`${l.flag} and --backend ${name}(${l.option}=...) contradict each other: give one of them`);
    }
    parsed[l.option] = flags[l.key]!;
  }
  const missing = entry.options.filter((o) => o.default === undefined && !o.derive && parsed[o.name] === undefined);
  if (missing.length > 0) {
    throw new AllocConfigError(
      name === "static"
        ? `--backend static needs --static-start and --static-size (or --backend "static(start=64KiB,size=1MiB)")`
        : `--backend ${name} needs ${missing.map((o) => o.name).join(" and ")}`,
    );
  }
  return { name, options: parsed };
}

/** The strategies and the backend of a parsed composition (their factories check ranges). */
export function instantiateParts(stack: readonly Part[], backend: Part): { strategy: Strategy[]; backend: PageBackend } {
  return {
    strategy: stack.map((p) => STRATEGIES[p.name]!.create(p.options)),
    backend: BACKENDS[backend.name]!.create(backend.options),
  };
}

/** A composition as one line: `size-classes(maxSmall=512) > free-list > grow`. */
export function describeParts(stack: readonly Part[], backend: Part): string {
  return [...stack, backend].map((p) => formatSpec(p.name, p.options)).join(" > ");
}

/** Every option of each part with its value once defaults are applied, for `--json`. */
export function resolveParts(parts: readonly Part[], schemaOf: (name: string) => readonly OptionSpec[], minAlign: number, memory64 = false) {
  return parts.map((p) => ({ name: p.name, options: resolveOptions(schemaOf(p.name), p.options, minAlign, memory64) }));
}

export const strategySchema = (name: string): readonly OptionSpec[] => STRATEGIES[name]?.options ?? [];
export const backendSchema = (name: string): readonly OptionSpec[] => BACKENDS[name]?.options ?? [];

/** How `--help` states an option: its values, what it does, its default and measured code-size effect. */
function optionHelp(owner: string, spec: OptionSpec): string {
  const value = { enum: spec.values?.join("|"), bool: "", int: "<n>", bytes: "<bytes>", growth: "exact|1/<n>" }[spec.kind];
  const head = `${spec.name}${value ? `=${value}` : ""}`;
  const effects = spec.samples.flatMap((v) => {
    const delta = OPTION_SIZES[`${owner}.${spec.name}=${v}`];
    return delta === undefined ? [] : [`${spec.name}=${v} ${delta > 0 ? "+" : ""}${delta} B`];
  });
  const dflt = spec.defaultText ?? String(spec.default);
  return `      ${head.padEnd(22)} ${spec.doc}. Default ${dflt}.${effects.length ? ` Size: ${effects.join(", ")}.` : ""}`;
}

/** The `--help` section listing strategies and backends with their options. */
export function compositionHelp(): string {
  const block = (entries: Readonly<Record<string, { summary: string; options?: readonly OptionSpec[] }>>) =>
    Object.entries(entries)
      .map(([name, e]) => [`    ${name.padEnd(14)} ${e.summary}`, ...(e.options ?? []).map((o) => optionHelp(name, o))].join("\n"))
      .join("\n");
  return (
    `Strategies (options in parentheses: -s "size-classes(maxSmall=512,spanBytes=4KiB),free-list(fit=first)"):\n${block(STRATEGIES)}\n\n` +
    `Backends (-b "grow(growth=exact,exclusive)", -b "static(start=64KiB,size=1MiB)"):\n${block(BACKENDS)}\n\n` +
    `Sizes: bytes a value adds to ${SIZE_REFERENCE}, as measured by pnpm --filter @alloc/cli option-sizes.\n` +
    `Sizes such as 4096 may be written 0x1000 or 4KiB; a bool option alone means true.\n`
  );
}
