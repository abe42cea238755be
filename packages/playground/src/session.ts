import { backendSchema, describeParts, instantiateParts, parseBackend, parseStack, resolveParts, strategySchema, type Part } from "@alloc/cli/composition";
import { BACKENDS, DEFAULT_STACK, STRATEGIES, type StrategyEntry } from "@alloc/cli/registry";
import { buildAllocator, C_FUNCTIONS, DEFAULT_EXPORTS, type BuildOptions, type BuiltAllocator, type HeapReport } from "@alloc/core";
import { recordHeap, renderHeapMap } from "@alloc/heap-map";
import { generateWorkload, measureWork, parseTrace, replay, WORKLOADS, type OpWork, type Trace, type WorkloadName } from "@alloc/trace";
import { StateCodec, type Catalog, type CatalogEntry, type PlaygroundState } from "./state.ts";

type Entry = Pick<StrategyEntry, "summary" | "options">;

function entries(registry: Readonly<Record<string, Entry>>): CatalogEntry[] {
  return Object.entries(registry).map(([name, entry]) => ({
    name,
    summary: entry.summary,
    options: (entry.options ?? []).map((o) => ({
      name: o.name,
      kind: o.kind,
      ...(o.values && { values: o.values }),
      defaultText: o.defaultText ?? String(o.default),
      doc: o.doc,
    })),
  }));
}

/** What the packages offer: strategies and backends with their options (the CLI's registry), C functions, workloads. */
export function catalog(): Catalog {
  return {
    strategies: entries(STRATEGIES),
    backends: entries(BACKENDS),
    defaultStack: DEFAULT_STACK,
    defaultBackend: "grow",
    functions: C_FUNCTIONS,
    defaultExports: DEFAULT_EXPORTS,
    workloads: WORKLOADS.map(({ name, kind, description }) => ({ name, kind, description })),
  };
}

/** The parts `state` names, parsed and checked as `alloc build --strategy --backend` does (AllocConfigError). */
export function parseParts(state: Pick<PlaygroundState, "strategy" | "backend">): { stack: Part[]; backend: Part } {
  return { stack: parseStack(state.strategy), backend: parseBackend(state.backend, {}) };
}

/** The build options of `state`'s composition, as `alloc build` makes them from the same flags. */
export function buildOptions(state: PlaygroundState): BuildOptions {
  const { stack, backend } = parseParts(state);
  return {
    ...instantiateParts(stack, backend),
    memory: { mode: state.memory },
    exports: state.exports,
    minAlign: state.minAlign,
    optimize: state.opt,
    bulkMemory: state.bulkMemory,
    debug: state.debug,
    stats: state.stats,
  };
}

/** What the page shows of a built module. */
export interface ModuleReport {
  /** The stack and backend, top first, with the options given: "size-classes(maxSmall=512) > free-list > grow". */
  readonly composition: string;
  /** The parts as parsed, with the options given (what the form's option fields show). */
  readonly stack: readonly Part[];
  readonly backend: Part;
  /** Every layer with every option's value once defaults are applied (as `alloc build --json`). */
  readonly layers: readonly { readonly name: string; readonly options: Readonly<Record<string, number | string | boolean>> }[];
  readonly size: number;
  /** SHA-256 of the module's bytes, hex: the same module gives the same hash wherever it is built. */
  readonly sha256: string;
  readonly exports: readonly string[];
  /** Its imports, as "module"."name" (the memory, when it imports one). */
  readonly imports: readonly string[];
  readonly wat: string;
  /** The command that builds the same module. */
  readonly command: string;
  /** Build time in the page, milliseconds. */
  readonly buildMs: number;
}

/** A trace to run: a built-in workload, or the text of a trace (wee_alloc's format). */
export type TraceSource =
  | { readonly kind: "workload"; readonly name: string; readonly seed: number }
  | { readonly kind: "text"; readonly name: string; readonly text: string };

/** What the page shows of a run. */
export interface RunReport {
  readonly trace: string;
  readonly operations: number;
  readonly failedAllocations: number;
  /** Replay inside Wasm with every block tagged and checked (as `alloc replay`). */
  readonly peakMemoryBytes: number;
  readonly endMemoryBytes: number;
  readonly peakLiveBytes: number;
  readonly liveBytesAtEnd: number;
  /** The replay driver's own blocks (op array and pointer table) in the allocator's heap. */
  readonly driverBytes: number;
  readonly elapsedMs: number;
  readonly nsPerOp: number;
  /** Deterministic work per call (`measureWork`), on a fresh instance of the same module. */
  readonly work: { readonly malloc: OpWork; readonly free: OpWork; readonly realloc: OpWork; readonly all: OpWork };
  /**
   * The heap map (`@alloc/heap-map`, SVG): where every block of the trace lives over time, from a
   * third run on a fresh instance with only the trace's blocks, as `alloc replay --map` draws it.
   */
  readonly heapMap: string;
  /**
   * Debug and stats builds: the heap walker's report after the run (the trace's live blocks still
   * allocated); `checked` when a debug build's walker checked every invariant on the way.
   */
  readonly heap: HeapReport | undefined;
  readonly checked: boolean;
  /** The command that replays the same workload (undefined for a pasted trace). */
  readonly command: string | undefined;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as BufferSource);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `alloc`'s arguments as one shell line, quoted where a shell would read them otherwise. */
const command = (args: readonly string[]) => ["pnpm alloc", ...args.map((a) => (/^[\w,.\/=:-]+$/.test(a) ? a : `"${a}"`))].join(" ");

/** One built composition and what runs on it. Browser-safe: the page runs it in a worker. */
export class Session {
  private static readonly codec = new StateCodec(catalog());

  private constructor(
    readonly state: PlaygroundState,
    readonly built: BuiltAllocator,
    readonly report: ModuleReport,
  ) {}

  /** Builds `state`'s composition. Throws the build's own error (an AllocConfigError) for bad options. */
  static async build(state: PlaygroundState): Promise<Session> {
    const start = performance.now();
    const built = buildAllocator(buildOptions(state));
    const buildMs = performance.now() - start;
    const { stack, backend } = parseParts(state);
    const imports = WebAssembly.Module.imports(new WebAssembly.Module(built.binary as BufferSource)).map((i) => `"${i.module}"."${i.name}" (${i.kind})`);
    return new Session(state, built, {
      composition: describeParts(stack, backend),
      stack,
      backend,
      layers: [...resolveParts(stack, strategySchema, state.minAlign), ...resolveParts([backend], backendSchema, state.minAlign)],
      size: built.size,
      sha256: await sha256(built.binary),
      exports: built.exports,
      imports,
      wat: built.text,
      command: command([...Session.codec.cliArguments(state, "build"), "-o", "alloc.wasm"]),
      buildMs,
    });
  }

  /** Replays `source` on a fresh instance, verifying every block, then measures its work on another. */
  async run(source: TraceSource): Promise<RunReport> {
    const trace: Trace =
      source.kind === "workload" ? generateWorkload(source.name as WorkloadName, { seed: source.seed }) : parseTrace(source.text, source.name);
    const missing = ["malloc", "free", ...(trace.ops.some((op) => op.op === "realloc") ? ["realloc"] : [])].filter(
      (fn) => !this.built.exports.includes(fn),
    );
    if (missing.length > 0) throw new Error(`${trace.name} needs ${missing.join(" and ")} among the exports`);
    const heap = await this.built.instantiate();
    const r = replay(heap, trace);
    const endMemoryBytes = heap.memoryBytes();
    const report = this.built.debug ? heap.checkHeap() : this.built.stats ? heap.heapStats() : undefined;
    const { memory } = this.built;
    const imported = memory.mode === "import" ? new WebAssembly.Memory({ initial: memory.initialPages }) : undefined;
    const heapMap = renderHeapMap(recordHeap(await this.built.instantiate(), trace, { label: this.report.composition }));
    const work = measureWork(this.built.binary, trace, imported ? { memory: imported, imports: { [memory.importModule]: { [memory.name]: imported } } } : {});
    return {
      trace: r.trace,
      operations: r.operations,
      failedAllocations: r.failedAllocations,
      peakMemoryBytes: r.peakMemoryBytes,
      endMemoryBytes,
      peakLiveBytes: r.peakLiveBytes,
      liveBytesAtEnd: r.liveBytesAtEnd,
      driverBytes: r.driverBytes,
      elapsedMs: r.elapsedMs,
      nsPerOp: r.nsPerOp,
      work: { malloc: work.malloc, free: work.free, realloc: work.realloc, all: work.all },
      heapMap,
      heap: report,
      checked: this.built.debug !== undefined,
      command: source.kind === "workload" ? command(Session.codec.cliArguments({ ...this.state, workload: source.name, seed: source.seed }, "replay")) : undefined,
    };
  }
}
