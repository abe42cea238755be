/**
 * What the page can offer, from the packages themselves: the worker sends it, so that the page's
 * own thread never loads binaryen.js.
 */
export interface Catalog {
  readonly strategies: readonly CatalogEntry[];
  readonly backends: readonly CatalogEntry[];
  /** The stack `alloc build` builds by default, top first, and its default backend. */
  readonly defaultStack: readonly string[];
  readonly defaultBackend: string;
  /** The C functions an allocator can export, and those it exports by default. */
  readonly functions: readonly string[];
  readonly defaultExports: readonly string[];
  readonly workloads: readonly { readonly name: string; readonly kind: string; readonly description: string }[];
}

/** A strategy or backend: its name, one line, and its options as `--strategy "name(option=value)"` takes them. */
export interface CatalogEntry {
  readonly name: string;
  readonly summary: string;
  readonly options: readonly OptionField[];
}

/** One option of a strategy or backend, as the form shows it (the CLI's schema, without code). */
export interface OptionField {
  readonly name: string;
  readonly kind: "int" | "bytes" | "enum" | "bool" | "growth";
  readonly values?: readonly string[];
  /** The default as `alloc build --help` states it ("1024", "1/16", "maxSmall / max(8, minAlign)", "none: required"). */
  readonly defaultText: string;
  readonly doc: string;
}

/**
 * Everything the page's form holds: a composition with its build options, and the workload to
 * run. A link carries it in its query, under the names of `alloc build`/`alloc replay`'s long
 * flags (`?strategy=size-classes,free-list&opt=speed&workload=compiler`), defaults left out, so
 * the same options can be given to the CLI.
 */
export interface PlaygroundState {
  /** The strategy stack with its options, top first, as `--strategy` takes it: "size-classes(maxSmall=512),free-list". */
  readonly strategy: string;
  /** The page backend with its options, as `--backend` takes it: "grow", "static(start=64KiB,size=1MiB)". */
  readonly backend: string;
  readonly memory: "export" | "import";
  readonly exports: readonly string[];
  readonly minAlign: number;
  readonly opt: "size" | "speed" | "none";
  readonly bulkMemory: boolean;
  readonly debug: boolean;
  /** Heap statistics in a release build (`heap_stats`, `alloc build --stats`). */
  readonly stats: boolean;
  /** The built-in workload to run, and its seed (as `alloc replay --workload --seed` takes them). */
  readonly workload: string;
  readonly seed: number;
}

/** A query value that is not what its key takes: names the key, the value and what it takes. */
export class StateError extends RangeError {
  override name = "StateError";
}

/** A strategy stack or backend as the CLI takes it: checked when built, not here. */
function spec(key: string, value: string): string {
  const text = value.trim();
  if (text === "") throw new StateError(`${key}: needs at least one name`);
  return text;
}

const list = (value: string): string[] =>
  value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

function integer(key: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new StateError(`${key}: "${value}" is not a whole number from ${min} to ${max}`);
  }
  return n;
}

function choice<T extends string>(key: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new StateError(`${key}: "${value}" is not one of ${choices.join(", ")}`);
  }
  return value as T;
}

function flag(key: string, value: string): boolean {
  return choice(key, value, ["1", "0"]) === "1";
}

/** The form's defaults: `alloc build`'s and `alloc replay`'s. */
export function defaultState(catalog: Catalog): PlaygroundState {
  return {
    strategy: catalog.defaultStack.join(","),
    backend: catalog.defaultBackend,
    memory: "export",
    exports: catalog.defaultExports,
    minAlign: 8,
    opt: "size",
    bulkMemory: true,
    debug: false,
    stats: false,
    workload: catalog.workloads[0]?.name ?? "",
    seed: 1,
  };
}

/**
 * Reads and writes the page's state as a link's query, and as the CLI's arguments, against the
 * defaults of `catalog`.
 */
export class StateCodec {
  readonly defaults: PlaygroundState;

  constructor(readonly catalog: Catalog) {
    this.defaults = defaultState(catalog);
  }

  /**
   * The state a link's query describes, defaults for what it leaves out. Throws a {@link StateError}
   * naming the first key whose value is not valid, and one for a key the page does not know.
   */
  parse(query: URLSearchParams | string): PlaygroundState {
    const params = typeof query === "string" ? new URLSearchParams(query) : query;
    const state: { -readonly [K in keyof PlaygroundState]: PlaygroundState[K] } = { ...this.defaults };
    for (const [key, value] of params) {
      switch (key) {
        // Checked by the build, with the CLI's own parser and messages.
        case "strategy": state.strategy = spec(key, value); break;
        case "backend": state.backend = spec(key, value); break;
        case "memory": state.memory = choice(key, value, ["export", "import"]); break;
        case "exports": state.exports = list(value); break;
        case "min-align": state.minAlign = integer(key, value, 1, 65536); break;
        case "opt": state.opt = choice(key, value, ["size", "speed", "none"]); break;
        case "bulk-memory": state.bulkMemory = flag(key, value); break;
        case "debug": state.debug = flag(key, value); break;
        case "stats": state.stats = flag(key, value); break;
        case "workload": state.workload = choice(key, value, this.catalog.workloads.map((w) => w.name)); break;
        case "seed": state.seed = integer(key, value, 0, 2 ** 32 - 1); break;
        default: throw new StateError(`unknown option "${key}" in the link`);
      }
    }
    return state;
  }

  /** The query of a link to `state`: only what differs from the defaults, in a fixed order. */
  format(state: PlaygroundState): URLSearchParams {
    const params = new URLSearchParams();
    const d = this.defaults;
    const put = (key: string, value: string, fallback: string) => {
      if (value !== fallback) params.set(key, value);
    };
    const bool = (b: boolean) => (b ? "1" : "0");
    put("strategy", state.strategy, d.strategy);
    put("backend", state.backend, d.backend);
    put("memory", state.memory, d.memory);
    put("exports", state.exports.join(","), d.exports.join(","));
    put("min-align", String(state.minAlign), String(d.minAlign));
    put("opt", state.opt, d.opt);
    put("bulk-memory", bool(state.bulkMemory), bool(d.bulkMemory));
    put("debug", bool(state.debug), bool(d.debug));
    put("stats", bool(state.stats), bool(d.stats));
    put("workload", state.workload, d.workload);
    put("seed", String(state.seed), String(d.seed));
    return params;
  }

  /**
   * The arguments of `alloc build` (the same module) or `alloc replay` (the same run: the
   * workload and its seed, and no --exports: replay builds with malloc, free and realloc).
   */
  cliArguments(state: PlaygroundState, command: "build" | "replay"): string[] {
    const args: string[] = [command];
    if (command === "replay") args.push("--workload", state.workload, "--seed", String(state.seed));
    for (const [key, value] of this.format(state)) {
      if (key === "workload" || key === "seed" || (key === "exports" && command === "replay")) continue;
      if (key === "bulk-memory" || key === "debug" || key === "stats") {
        args.push(value === "1" ? `--${key}` : `--no-${key}`);
      } else {
        args.push(`--${key}`, value);
      }
    }
    return args;
  }
}
