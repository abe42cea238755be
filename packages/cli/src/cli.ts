import {
  AllocConfigError,
  buildAllocator,
  engineRunsMemory64,
  C_FUNCTION_DOCS,
  DEFAULT_EXPORTS,
  DEFAULT_MIN_ALIGN,
  DEFAULT_THREAD_CACHE,
  THREAD_CACHE_FLUSH,
  type ThreadCacheOptions,
  HeapFaultError,
  type BuildOptions,
  type AllocatorInstance,
  type BuiltAllocator,
  type HeapReport,
} from "@alloc/core";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { recordHeap, renderHeapMap, renderHeapMapHtml, type HeapRecording } from "@alloc/heap-map";
import { generateWorkload, parseTrace, replay, ReplayError, TraceParseError, WORKLOADS, type ReplayTarget, type Trace, type WorkloadName } from "@alloc/trace";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { dirname } from "node:path";
import { DEFAULT_STACK } from "./registry.ts";
import {
  backendSchema,
  compositionHelp,
  describeParts,
  instantiateParts,
  parseBackend,
  parseStack,
  resolveParts,
  strategySchema,
  type BackendFlags,
  type Part,
} from "./composition.ts";
import { parseGrowth, parseInteger } from "./options.ts";
import { OPTION_SIZES } from "./option-sizes.data.ts";
import { STATS_STACKS, THREAD_CACHE_SIZE_KEY, THREAD_CACHE_STACK } from "./option-sizes.ts";
import { moduleTarget } from "./module-target.ts";
import { addSwapCommand } from "./swap-command.ts";

/** Where the CLI writes; tests pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/**
 * A failure that is not a configuration error (a file that cannot be written): one line on
 * stderr, exit code 1.
 */
export class CliError extends Error {}

/** A non-negative integer option value: decimal, 0x hex, or with a KiB/MiB/GiB suffix. */
function integer(value: string): number {
  const n = parseInteger(value);
  if (n === undefined) throw new InvalidArgumentError(`"${value}" is not a whole number (e.g. 65536, 0x10000, 64KiB)`);
  return n;
}

function list(value: string): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError("needs at least one name (comma-separated)");
  return items;
}

/** `--growth`: "exact", a fraction such as 1/8, or a number such as 0.125. */
function growth(value: string): "exact" | number {
  const n = parseGrowth(value);
  if (n === undefined) throw new InvalidArgumentError(`"${value}" is not "exact" or a fraction such as 1/8`);
  return n;
}

interface BuildFlags extends BackendFlags {
  /** The stack as written: names top first, each with its options (see `options.ts`). */
  strategy: string;
  /** The backend as written, with its options. */
  backend: string;
  /** Undefined when not given: "export", or "import" for a thread-safe build. */
  memory?: "export" | "import";
  initialPages?: number;
  maximumPages?: number;
  exports: string[];
  minAlign?: number;
  prefix?: string;
  opt: "size" | "speed" | "none";
  bulkMemory: boolean;
  out?: string;
  wat?: string;
  demo?: boolean;
  debug?: boolean;
  stats?: boolean;
  memory64?: boolean;
  json?: boolean;
  threads?: boolean;
  wait?: boolean;
  stateAddress?: number;
  threadCache?: boolean;
  threadCacheMaxSize?: number;
  threadCacheClassBytes?: number;
}

/** The composition the flags name: strategies and backend with the options given for each. */
function partsFromFlags(flags: BuildFlags): { stack: Part[]; backend: Part } {
  return { stack: parseStack(flags.strategy), backend: parseBackend(flags.backend, flags) };
}

/** Turns `alloc build` flags into build options, rejecting unknown and contradictory ones. */
export function buildOptionsFromFlags(flags: BuildFlags): BuildOptions {
  const { stack, backend } = partsFromFlags(flags);
  if (!flags.threads && (flags.wait || flags.stateAddress !== undefined)) {
    throw new AllocConfigError(`${flags.wait ? "--wait" : "--state-address"} applies to a thread-safe build: add --threads`);
  }
  const cacheFlag = flags.threadCacheMaxSize !== undefined ? "--thread-cache-max-size" : flags.threadCacheClassBytes !== undefined ? "--thread-cache-class-bytes" : undefined;
  if (!flags.threadCache && cacheFlag) throw new AllocConfigError(`${cacheFlag} applies to a build with thread caches: add --thread-cache`);
  if (flags.threadCache && !flags.threads) throw new AllocConfigError("--thread-cache applies to a thread-safe build: add --threads");
  if (flags.threads && flags.memory === "export") {
    throw new AllocConfigError(
      "--threads imports its memory (every thread instantiates the module with the same shared memory); --memory export would give each thread its own: leave out --memory",
    );
  }
  return {
    ...instantiateParts(stack, backend),
    ...(flags.threads && {
      threads: { ...(flags.wait && { wait: true }), ...(flags.stateAddress !== undefined && { stateAddress: flags.stateAddress }) },
    }),
    ...(flags.threadCache && { threadCache: threadCacheOptions(flags) }),
    memory: {
      mode: flags.memory ?? (flags.threads ? "import" : "export"),
      ...(flags.initialPages !== undefined && { initialPages: flags.initialPages }),
      ...(flags.maximumPages !== undefined && { maximumPages: flags.maximumPages }),
    },
    exports: flags.exports,
    optimize: flags.opt,
    bulkMemory: flags.bulkMemory,
    ...(flags.minAlign !== undefined && { minAlign: flags.minAlign }),
    ...(flags.prefix !== undefined && { prefix: flags.prefix }),
    ...(flags.debug && { debug: true }),
    ...(flags.stats && { stats: true }),
    ...(flags.memory64 && { memory64: true }),
  };
}

/** `--thread-cache` and its two options as the API's `threadCache`, defaults resolved. */
function threadCacheOptions(flags: BuildFlags): Required<ThreadCacheOptions> {
  return {
    maxSize: flags.threadCacheMaxSize ?? DEFAULT_THREAD_CACHE.maxSize,
    classBytes: flags.threadCacheClassBytes ?? DEFAULT_THREAD_CACHE.classBytes,
  };
}

/**
 * Lets this process run a memory64 module (`--memory64` with `--demo` or `replay`): Node 20 and
 * 22 run them only behind `--experimental-wasm-memory64`, which V8 also takes once started.
 * Throws a one-line error when the engine cannot run them even so.
 */
export function enableMemory64(): void {
  if (engineRunsMemory64()) return;
  setFlagsFromString("--experimental-wasm-memory64");
  if (!engineRunsMemory64()) {
    throw new CliError(`this Node (${process.version}) cannot run memory64 modules, even with --experimental-wasm-memory64: build without --demo, or run on Node 20 or newer`);
  }
}

/**
 * The facts of a build as `alloc build --json` prints them: a stable object for scripts. Every
 * option of every layer is there with its value once defaults are applied.
 */
export function buildFacts(flags: BuildFlags, built: BuiltAllocator) {
  const { stack, backend } = partsFromFlags(flags);
  const minAlign = flags.minAlign ?? DEFAULT_MIN_ALIGN;
  const module = new WebAssembly.Module(built.binary as BufferSource);
  return {
    bytes: built.size,
    exports: WebAssembly.Module.exports(module).map(({ name, kind }) => ({ name, kind })),
    imports: WebAssembly.Module.imports(module).map(({ module, name, kind }) => ({ module, name, kind })),
    stack: resolveParts(stack, strategySchema, minAlign, flags.memory64 === true),
    backend: resolveParts([backend], backendSchema, minAlign, flags.memory64 === true)[0]!,
    memory: { ...built.memory, maximumPages: built.memory.maximumPages ?? null },
    minAlign,
    prefix: flags.prefix ?? "~alloc",
    optimize: flags.opt,
    bulkMemory: flags.bulkMemory,
    debug: built.debug !== undefined,
    stats: flags.stats === true,
    /** The layers of heap_stats' records, top first (empty without stats). */
    statsLayers: flags.stats ? (built.stats ?? []).map((l) => l.layer) : [],
    /** A thread-safe build's lock (null: single-threaded); stateAddress null when placed by default. */
    threads: flags.threads ? { wait: flags.wait === true, stateAddress: flags.stateAddress ?? null } : null,
    /** Thread caches (null: none). */
    threadCache: flags.threadCache ? threadCacheOptions(flags) : null,
    files: { wasm: flags.out ?? null, wat: flags.wat ?? null },
  };
}

/** One line of the heap walker's statistics (debug and stats builds). */
function heapLine(report: HeapReport, checked: boolean): string {
  const layers = report.layers
    .map((l) => `${l.layer}: ${l.usedBlocks} used blocks (${l.usedBytes} B), ${l.freeBlocks} free (${l.freeBytes} B, largest ${l.largestFree} B)`)
    .join("; ");
  return `${checked ? "heap check passed" : "heap stats"}: ${layers || "no layer keeps a heap"}; fragmentation ${(report.fragmentation * 100).toFixed(1)}%\n`;
}

/** The walker's line for a debug build (checked) or a stats build; nothing for other builds. */
function heapLines(built: BuiltAllocator, heap: AllocatorInstance): string {
  if (built.debug) return `  ${heapLine(heap.checkHeap(), true)}`;
  return built.stats ? `  ${heapLine(heap.heapStats(), false)}` : "";
}

/** A short allocation demo on a built allocator: what a user would try first. */
async function demo(built: BuiltAllocator, io: Io): Promise<void> {
  const a = await built.instantiate();
  const has = (fn: string) => built.exports.includes(fn);
  io.out("demo:\n");
  const blocks = [16, 100, 3000, 70_000].map((size) => ({ size, ptr: a.malloc(size) }));
  for (const { size, ptr } of blocks) io.out(`  malloc(${size}) = ${ptr}\n`);
  if (has("free")) {
    a.free(blocks[1]!.ptr);
    io.out(`  free(${blocks[1]!.ptr})\n`);
    io.out(`  malloc(100) = ${a.malloc(100)}  (reuses the freed block when the strategy can)\n`);
  }
  if (has("calloc")) io.out(`  calloc(4, 8) = ${a.calloc(4, 8)}\n`);
  if (has("aligned_alloc")) io.out(`  aligned_alloc(4096, 10) = ${a.aligned_alloc(4096, 10)}\n`);
  if (has("realloc")) {
    const p = blocks[0]!.ptr;
    io.out(`  realloc(${p}, 200) = ${a.realloc(p, 200)}\n`);
  }
  if (a.memory64) io.out(`  malloc(2^53 - 1) = ${a.malloc(2 ** 53 - 1)}  (impossible: 0, and the heap stays usable)\n`);
  else io.out(`  malloc(4 GiB - 1) = ${a.malloc(0xffffffff)}  (impossible: 0, and the heap stays usable)\n`);
  io.out(`  malloc(24) = ${a.malloc(24)}\n`);
  io.out(`  memory: ${a.memoryBytes()} bytes\n`);
  io.out(heapLines(built, a));
}

/**
 * Refuses an option given twice, and an option given with its negation (`--exclusive
 * --no-exclusive`): commander would silently keep the last one.
 */
export function refuseRepeats(command: Command): Command {
  const seen = new Map<string, string>();
  for (const option of command.options) {
    const flag = option.long ?? option.flags;
    command.on(`option:${option.name()}`, () => {
      const key = option.attributeName();
      const previous = seen.get(key);
      if (previous === flag) throw new AllocConfigError(`${flag} is given twice: give it once`);
      if (previous) throw new AllocConfigError(`${previous} and ${flag} contradict each other: give one of them`);
      seen.set(key, flag);
    });
  }
  return command;
}

/** Refuses an output path that cannot be written before anything is written or printed. */
export function checkWritable(file: string, option: string): void {
  const stat = (path: string) => {
    try {
      return statSync(path);
    } catch {
      return undefined;
    }
  };
  if (stat(file)?.isDirectory()) throw new CliError(`cannot write ${option} ${file}: it is a directory`);
  const dir = dirname(file);
  if (!stat(dir)?.isDirectory()) throw new CliError(`cannot write ${option} ${file}: the directory ${dir} does not exist`);
}

export function write(file: string, data: Uint8Array | string, option: string): void {
  try {
    writeFileSync(file, data);
  } catch (error) {
    throw new CliError(`cannot write ${option} ${file}: ${(error as Error).message}`);
  }
}

/** The options that describe a composition, shared by `build` and `replay`. */
function withCompositionOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        "-s, --strategy <stack>",
        'strategies, top first, comma-separated, each with its options in parentheses (e.g. "size-classes(maxSmall=512),free-list"; see below)',
      ).default(DEFAULT_STACK.join(",")),
    )
    .addOption(new Option("-b, --backend <backend>", 'where pages come from: grow or static, with options (e.g. "grow(growth=exact)"; see below)').default("grow"))
    .addOption(new Option("--static-start <bytes>", "static backend: first byte of the region (multiple of 64KiB)").argParser(integer))
    .addOption(new Option("--static-size <bytes>", "static backend: bytes in the region (multiple of 64KiB)").argParser(integer))
    .addOption(new Option("--grow-max-pages <n>", "grow backend: never grow memory past n pages").argParser(integer))
    .addOption(new Option("--growth <step>", 'grow backend: grow by the pages lacking plus this fraction of the memory, or "exact" (default 1/16)').argParser(growth))
    .addOption(
      new Option(
        "--exclusive",
        "grow backend: assume nothing else ever grows the memory (opt-in: smaller, no fences; unsafe: blocks overlap the host's pages if the host grows the exported memory)",
      ),
    )
    .addOption(new Option("--no-exclusive", "grow backend: others may grow the memory too (the default)"))
    .addOption(new Option("-m, --memory <mode>", "export the module's own memory, or import one (default: export; import with --threads)").choices(["export", "import"]))
    .addOption(new Option("--initial-pages <n>", "initial memory pages").argParser(integer))
    .addOption(new Option("--maximum-pages <n>", "maximum pages of the module's own memory").argParser(integer))
    .addOption(
      new Option("-e, --exports <list>", "functions to export, comma-separated")
        .argParser(list)
        .default([...DEFAULT_EXPORTS], DEFAULT_EXPORTS.join(",")),
    )
    .addOption(new Option("--min-align <bytes>", "alignment of every block (power of two, default 8)").argParser(integer))
    .addOption(new Option("--prefix <name>", "prefix of every emitted name (default ~alloc)"))
    .addOption(new Option("--opt <goal>", "optimise for").choices(["size", "speed", "none"]).default("size"))
    .addOption(new Option("--no-bulk-memory", "use byte loops instead of memory.fill/memory.copy"))
    .addOption(
      new Option(
        "--debug",
        "debug build: poison free memory, trap on double or invalid free with a readable cause, export heap_check (the heap walker)",
      ),
    )
    .addOption(
      new Option(
        "--stats",
        `export heap_stats(ptr): bytes and blocks in use and free, largest free block, per layer, in a release build (no checks; ${statsCost()})`,
      ),
    )
    .addOption(
      new Option(
        "--memory64",
        "64-bit build: i64 pointers and sizes over a memory64 memory (size_t is 64-bit); engines run it behind a flag (Node 20: --experimental-wasm-memory64, which this command sets itself, up to 4 GiB)",
      ),
    );
}

/** `--thread-cache`'s measured cost, for its help. */
function threadCacheCost(): string {
  return `size: +${OPTION_SIZES[THREAD_CACHE_SIZE_KEY]} B on ${THREAD_CACHE_STACK.join(" > ")} --threads`;
}

/** `--stats`' measured cost, for its help. */
function statsCost(): string {
  const costs = STATS_STACKS.map((stack) => `${stack.join(" > ")} +${OPTION_SIZES[`stats:${stack.join(",")}`]} B`);
  return `size: ${costs.join(", ")}`;
}

/** The `alloc` command line. Returns the exit code. */
export async function run(argv: readonly string[], io: Io = processIo): Promise<number> {
  const program = new Command("alloc")
    .description("Build WebAssembly memory allocators from strategy packages.")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  const strategyHelp = compositionHelp();
  const exportHelp = Object.entries(C_FUNCTION_DOCS)
    .map(([, doc]) => `    ${doc}`)
    .join("\n");

  let exitCode = 0;
  const build = withCompositionOptions(
    program.command("build").description("Build an allocator module: prints its size and exports, writes it with -o."),
  )
    .addOption(new Option("-o, --out <file>", "write the module to this .wasm file"))
    .addOption(new Option("--wat <file>", "write the module as WebAssembly text"))
    .addOption(new Option("--demo", "run a short allocation demo on the built module (needs malloc among the exports)"))
    .addOption(new Option("--json", "print the build's facts as one JSON object (bytes, exports, imports, every option resolved) instead of text"))
    .addOption(
      new Option(
        "--threads",
        "thread-safe build: imports a shared memory (every thread instantiates the module with it); every function runs under one lock, the heap's state lives in 256 bytes of the memory",
      ),
    )
    .addOption(new Option("--wait", "--threads: a thread that finds the lock taken sleeps (memory.atomic.wait32) instead of spinning; workers only (a browser's main thread may not block)"))
    .addOption(new Option("--state-address <bytes>", "--threads: where the lock and the heap's state live (default 1024; a multiple of 8 in the initial memory)").argParser(integer))
    .addOption(
      new Option(
        "--thread-cache",
        `--threads: per-thread caches of small blocks, so that threads scale: most malloc/free calls take no lock; exports ${THREAD_CACHE_FLUSH}, which a thread calls before it ends; needs size-classes on top (${threadCacheCost()})`,
      ),
    )
    .addOption(new Option("--thread-cache-max-size <bytes>", `--thread-cache: the largest request cached (default ${DEFAULT_THREAD_CACHE.maxSize})`).argParser(integer))
    .addOption(new Option("--thread-cache-class-bytes <bytes>", `--thread-cache: the most bytes a thread keeps per class (default ${DEFAULT_THREAD_CACHE.classBytes})`).argParser(integer))
    .addHelpText("after", `\n${strategyHelp}\nExports:\n${exportHelp}\n    (and extras of the top strategy, e.g. bump's reset)\n`)
    .action(async (flags: BuildFlags) => {
      const options = buildOptionsFromFlags(flags);
      if (flags.demo && !flags.exports.includes("malloc")) {
        throw new AllocConfigError("--demo calls malloc: add malloc to --exports, or leave out --demo");
      }
      if (flags.demo && flags.json) throw new AllocConfigError("--demo and --json: give one of them (--json prints only the build's facts)");
      if (flags.out) checkWritable(flags.out, "-o");
      if (flags.wat) checkWritable(flags.wat, "--wat");
      const built = buildAllocator(options);
      // Everything that can fail is done before anything is printed as done.
      if (flags.out) write(flags.out, built.binary, "-o");
      if (flags.wat) write(flags.wat, built.text, "--wat");
      if (flags.json) {
        io.out(`${JSON.stringify(buildFacts(flags, built), null, 2)}\n`);
        return;
      }
      const { stack: parts, backend } = partsFromFlags(flags);
      const stack = describeParts(parts, backend);
      io.out(`${stack}: ${built.size} bytes (optimised for ${flags.opt}${flags.memory64 ? ", memory64" : ""})\n`);
      io.out(`exports: ${built.exports.join(", ")}\n`);
      if (built.memory.mode === "import") {
        const shared = built.memory.shared ? ` (shared, maximum ${built.memory.maximumPages} pages)` : "";
        io.out(`imports: memory "${built.memory.importModule}"."${built.memory.name}"${shared}\n`);
      }
      if (flags.out) io.out(`wrote ${flags.out}\n`);
      if (flags.wat) io.out(`wrote ${flags.wat}\n`);
      if (flags.demo && flags.memory64) enableMemory64();
      if (flags.demo) await demo(built, io);
    });
  refuseRepeats(build);

  const replayCommand = withCompositionOptions(
    program
      .command("replay")
      .description("Replay allocation traces inside Wasm against a composition, verifying every block.")
      .argument("[traces...]", "trace files (wee_alloc format: Alloc(n), / Free(k), / Realloc(k,n), one per line)"),
  )
    .addOption(
      new Option("-w, --workload <names>", `built-in seeded workloads, comma-separated (${WORKLOADS.map((w) => w.name).join(", ")})`).argParser(list),
    )
    .addOption(new Option("--seed <n>", "seed of the built-in workloads").argParser(integer).default(1))
    .addOption(new Option("--no-verify", "do not tag and check blocks (for timing only)"))
    .addOption(new Option("--module <file>", "replay against this compiled module's own malloc, free and realloc (exported, with its memory) instead of a composition"))
    .addOption(
      new Option(
        "--map <file>",
        "draw a heap map of the trace to this .svg or .html file: where every block lives over time, free and never-touched memory, memory.grow steps, live bytes against memory",
      ),
    )
    .addOption(
      new Option("--compare <stack>", "also replay against this strategy stack (written as --strategy; same backend and other options), side by side on the same scales in the --map"),
    )
    .addHelpText("after", `\n${strategyHelp}`)
    .action(async (files: string[], flags: BuildFlags & { workload?: string[]; seed: number; verify: boolean; module?: string; map?: string; compare?: string }) => {
      const traces: Trace[] = [];
      for (const file of files) {
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch (error) {
          throw new AllocConfigError(`cannot read trace ${file}: ${(error as Error).message}`);
        }
        try {
          traces.push(parseTrace(text, file));
        } catch (error) {
          if (error instanceof TraceParseError) throw new AllocConfigError(error.message);
          throw error;
        }
      }
      for (const name of flags.workload ?? []) {
        if (!WORKLOADS.some((w) => w.name === name)) {
          throw new AllocConfigError(`unknown workload "${name}" (known: ${WORKLOADS.map((w) => w.name).join(", ")})`);
        }
        traces.push(generateWorkload(name as WorkloadName, { seed: flags.seed }));
      }
      if (traces.length === 0) throw new AllocConfigError("replay needs trace files or --workload");
      if (flags.map !== undefined) {
        if (!/\.(svg|html)$/i.test(flags.map)) throw new AllocConfigError(`--map writes an .svg or an .html file, got "${flags.map}"`);
        if (traces.length !== 1) throw new AllocConfigError(`--map draws one trace: give one trace file or workload, not ${traces.length}`);
        checkWritable(flags.map, "--map");
      }
      if (flags.compare && flags.module !== undefined) throw new AllocConfigError("--compare and --module contradict each other: give one of them");
      if (flags.memory64 && flags.module !== undefined) {
        throw new AllocConfigError("--memory64 builds a composition; --module replays a compiled module as it is: give one of them");
      }
      if (flags.memory64) enableMemory64();
      // What to replay against: a module, or the composition and the one to compare it with.
      const contestants: { label: string; size: number; built?: BuiltAllocator; instantiate(): Promise<ReplayTarget> }[] = [];
      if (flags.module !== undefined) {
        const other = await moduleTarget(flags.module);
        contestants.push({ label: `${flags.module} (its own allocator)`, size: other.size, instantiate: () => other.instantiate() });
      } else {
        for (const strategy of [flags.strategy, ...(flags.compare !== undefined ? [flags.compare] : [])]) {
          const composition = { ...flags, strategy, exports: ["malloc", "free", "realloc"] };
          const built = buildAllocator(buildOptionsFromFlags(composition));
          const parts = partsFromFlags(composition);
          const label = `${describeParts(parts.stack, parts.backend)}${flags.memory64 ? " (memory64)" : ""}`;
          contestants.push({ label, size: built.size, built, instantiate: () => built.instantiate() });
        }
      }
      const recordings: HeapRecording[] = [];
      for (const contestant of contestants) {
        io.out(`${contestant.label}: ${contestant.size} bytes\n`);
        for (const trace of traces) {
          const heap = await contestant.instantiate();
          try {
            const r = replay(heap, trace, { verify: flags.verify });
            io.out(
              `${trace.name}: ${r.operations} ops in ${r.elapsedMs.toFixed(2)} ms (${r.nsPerOp.toFixed(1)} ns/op), ` +
                `${r.failedAllocations} failed, peak memory ${r.peakMemoryBytes} B, peak live ${r.peakLiveBytes} B` +
                `${flags.verify ? ", every block verified" : ""}\n`,
            );
            if (contestant.built) io.out(heapLines(contestant.built, heap as AllocatorInstance));
            // The map's own run, on a fresh instance: only the trace's blocks, none of the driver's.
            if (flags.map !== undefined) recordings.push(recordHeap(await contestant.instantiate(), trace, { label: contestant.label }));
          } catch (error) {
            // A failed check (a debug build's fault inside the trace is a ReplayError naming the
            // operation), or a replay that could not start (no room for the driver's data).
            if (!(error instanceof Error)) throw error;
            const hint =
              error instanceof ReplayError || error instanceof HeapFaultError || partsFromFlags(flags).backend.name !== "static"
                ? ""
                : " (the static region may be too small for this trace: try a larger --static-size)";
            io.err(`alloc: ${trace.name}: ${error.message}${hint}\n`);
            exitCode = 1;
          }
        }
      }
      if (flags.map !== undefined && exitCode === 0) {
        const picture = /\.html$/i.test(flags.map) ? renderHeapMapHtml(recordings) : renderHeapMap(recordings);
        write(flags.map, picture, "--map");
        io.out(`wrote ${flags.map} (heap map, ${picture.length} bytes)\n`);
      } else if (flags.map !== undefined) {
        io.err(`alloc: no heap map written to ${flags.map}: the replay failed\n`);
      }
    });
  refuseRepeats(replayCommand);
  addSwapCommand(program, io);

  try {
    await program.parseAsync(argv as string[], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message (or the help); keep its code: 0 for --help.
      exitCode = error.exitCode;
    } else if (error instanceof AllocConfigError) {
      io.err(`alloc: ${error.message}\n`);
      exitCode = 2;
    } else if (error instanceof CliError) {
      io.err(`alloc: ${error.message}\n`);
      exitCode = 1;
    } else {
      // A bug of ours: still one line, with the way to the details.
      io.err(`alloc: internal error: ${error instanceof Error ? error.message : String(error)} (set ALLOC_STACK=1 for the stack trace)\n`);
      if (process.env.ALLOC_STACK) io.err(`${error instanceof Error ? error.stack : ""}\n`);
      exitCode = 70;
    }
  }
  return exitCode;
}
