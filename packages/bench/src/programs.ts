import { binaryen } from "@alloc/core";
import { ENTRY_NAMES, isOldAllocatorName, optimizeProgram, swapAllocator } from "@alloc/swap";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { compositions } from "./compositions.ts";
import { instrumentInstructions, readInstructionCounts, type FunctionCount } from "./instructions.ts";
import { LOCALITY_WINDOW, programTrace, replayTimes, traceLocality, traceWork, type Locality } from "./locality.ts";
import { PACKAGE_DIR } from "./paths.ts";
import { spread } from "./stats.ts";

/** The C programs and their build script (committed .wasm beside them). */
export const PROGRAMS_DIR = join(PACKAGE_DIR, "programs");

/** A real program, compiled from C with clang and wasi-libc (whose malloc is dlmalloc). */
export interface RealProgram {
  readonly name: string;
  readonly description: string;
  /** The committed module in {@link PROGRAMS_DIR}. */
  readonly file: string;
  /** Its arguments: for the timed runs, for the quick mode, and for the locality trace (smaller: every call is recorded). */
  readonly args: { readonly full: readonly string[]; readonly quick: readonly string[]; readonly trace: readonly string[] };
}

export const PROGRAMS: readonly RealProgram[] = [
  {
    name: "binary-trees",
    description: "the Benchmarks Game's binary-trees (malloc per node, post-order free)",
    file: "binary_trees.wasm",
    args: { full: ["16"], quick: ["10"], trace: ["12"] },
  },
  {
    name: "interp",
    description: "a stack-VM interpreter with a mark-and-sweep collector: string, list, array and table churn",
    file: "interp.wasm",
    args: { full: ["60"], quick: ["4"], trace: ["20"] },
  },
  {
    name: "json",
    description: "a JSON library: generate, parse to a DOM, edit, print, parse and print again, free",
    file: "json.wasm",
    args: { full: ["40", "200"], quick: ["2", "60"], trace: ["10", "200"] },
  },
];

/** The allocators each program runs with: its own (dlmalloc) and ours swapped in. */
export const PROGRAM_ALLOCATORS = ["dlmalloc", "free-list", "size-classes+free-list", "bump"] as const;

/** A program built with one allocator. */
export interface ProgramBuild {
  readonly program: RealProgram;
  readonly allocator: string;
  readonly module: WebAssembly.Module;
  readonly binary: Uint8Array;
  readonly bytes: number;
}

export function programBinary(program: RealProgram): Uint8Array {
  return new Uint8Array(readFileSync(join(PROGRAMS_DIR, program.file)));
}

/**
 * The program optimised by Binaryen for speed exactly as `swapAllocator` optimises the swapped
 * builds (`optimizeProgram`: same settings and inlining limits), with its own allocator: so the
 * comparison is of allocators, not of optimisers.
 */
export function optimizeForSpeed(bytes: Uint8Array): Uint8Array {
  // clang 14's wasm32-wasi default features.
  return optimizeProgram(bytes, "speed", binaryen.Features.MutableGlobals | binaryen.Features.SignExt);
}

const built = new Map<string, ProgramBuild>();

/**
 * `program` with `allocator` (one of {@link PROGRAM_ALLOCATORS}): dlmalloc is the program itself.
 * Built once per process (Binaryen takes seconds on a whole program).
 */
export function buildProgram(program: RealProgram, allocator: string): ProgramBuild {
  const key = `${program.name}/${allocator}`;
  const known = built.get(key);
  if (known) return known;
  const original = programBinary(program);
  let binary: Uint8Array;
  if (allocator === "dlmalloc") {
    binary = optimizeForSpeed(original);
  } else {
    const composition = compositions().available.find((c) => c.name === allocator);
    if (!composition) throw new RangeError(`programs: unknown allocator ${JSON.stringify(allocator)} (known: ${PROGRAM_ALLOCATORS.join(", ")})`);
    binary = swapAllocator(original, { strategy: composition.stack(), optimize: "speed", baseline: false }).binary;
  }
  const build = { program, allocator, module: new WebAssembly.Module(binary as BufferSource), binary, bytes: binary.byteLength };
  built.set(key, build);
  return build;
}

/** One run of a program. */
export interface ProgramRun {
  readonly exitCode: number;
  readonly stdout: string;
  /** CPU time of the process (user + system) during `_start`, in ms. */
  readonly cpuMs: number;
  readonly wallMs: number;
  /** `memory.buffer.byteLength` when the program exited. */
  readonly memoryBytes: number;
  /** The trap that ended it, if one did. */
  readonly trap?: string;
}

// Node 20's node:wasi calls fd_write through V8's fast API, during which a garbage collection
// that a large Wasm memory's external-memory pressure starts aborts the process (no message; seen
// here with 85 MiB and more, bump's heaps). Without fast API calls it cannot happen.
setFlagsFromString("--no-turbo-fast-api-calls");

type Wasi = import("node:wasi").WASI;
let WasiClass: (new (options: object) => Wasi) | undefined;

/**
 * Runs a WASI command module once under node:wasi, in this process: instantiation is not timed,
 * `_start` is (CPU time with `process.cpuUsage`, wall time with `performance.now`). `inspect`
 * reads the instance once the program has ended.
 */
export async function runProgram(module: WebAssembly.Module, args: readonly string[], inspect?: (instance: WebAssembly.Instance) => void): Promise<ProgramRun> {
  // Imported on first use: loading node:wasi prints an experimental warning.
  WasiClass ??= (await import("node:wasi")).WASI as unknown as new (options: object) => Wasi;
  const dir = mkdtempSync(join(tmpdir(), "alloc-programs-"));
  const file = join(dir, "stdout");
  const fd = openSync(file, "w");
  try {
    const wasi = new WasiClass({ version: "preview1", args: ["program", ...args], env: {}, stdout: fd, returnOnExit: true });
    const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
    const memory = instance.exports.memory as WebAssembly.Memory;
    let exitCode = -1;
    let trap: string | undefined;
    const cpu = process.cpuUsage();
    const wall = performance.now();
    try {
      exitCode = wasi.start(instance);
    } catch (error) {
      trap = error instanceof Error ? error.message : String(error);
    }
    const wallMs = performance.now() - wall;
    const used = process.cpuUsage(cpu);
    inspect?.(instance);
    return {
      exitCode,
      stdout: readFileSync(file, "utf8"),
      cpuMs: (used.user + used.system) / 1000,
      wallMs,
      memoryBytes: memory.buffer.byteLength,
      ...(trap !== undefined && { trap }),
    };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The measured figures of one program with one allocator. */
export interface ProgramCell {
  readonly program: string;
  readonly allocator: string;
  /** Why it has no times: the program failed with this allocator (out of memory for bump, say). */
  readonly failed?: string;
  readonly cpuMs: number;
  readonly wallMs: number;
  /** Median CPU time over dlmalloc's. */
  readonly ratio: number;
  readonly memoryBytes: number;
  readonly bytes: number;
  /** The program's output matched dlmalloc's byte for byte. */
  readonly sameOutput: boolean;
  /** Where the allocator places successive allocations: the program's trace replayed on it. */
  readonly locality: Locality;
  /** The program's arguments when its trace was recorded. */
  readonly traceArgs: readonly string[];
  /** The same trace replayed inside Wasm on the allocator alone: median ms, and its ratio to dlmalloc's. */
  readonly replay: { readonly ms: number; readonly ratio: number };
  /** Mean counted work per malloc and per free on the trace (deterministic). */
  readonly work: { readonly malloc: number; readonly free: number };
}

export interface ProgramsOptions {
  readonly rounds: number;
  readonly mode: "full" | "quick";
  readonly programs?: readonly string[];
  readonly allocators?: readonly string[];
  readonly progress?: (line: string) => void;
}

/** The arguments a program's locality trace is recorded with: smaller than the timed runs' in full mode (every call is recorded). */
export function traceArgs(program: RealProgram, mode: "full" | "quick"): readonly string[] {
  return mode === "quick" ? program.args.quick : program.args.trace;
}

/** The programs and allocators `options` selects (dlmalloc, the reference, must be among them). */
function selection(options: Pick<ProgramsOptions, "programs" | "allocators">): { programs: RealProgram[]; allocators: string[] } {
  const programs = PROGRAMS.filter((p) => !options.programs || options.programs.includes(p.name));
  const allocators = PROGRAM_ALLOCATORS.filter((a) => !options.allocators || options.allocators.includes(a));
  if (!allocators.includes("dlmalloc")) throw new RangeError("programs: dlmalloc must be among the allocators (the ratios are to it)");
  return { programs, allocators };
}

/**
 * Runs every program with every allocator: one untimed run each first (its output is the one
 * compared), then `rounds` interleaved rounds (every program with every allocator, the allocators'
 * order rotating from round to round), and reports the medians.
 */
export async function measurePrograms(options: ProgramsOptions): Promise<ProgramCell[]> {
  const { programs, allocators } = selection(options);
  const log = options.progress ?? (() => {});
  const cells: ProgramCell[] = [];
  for (const program of programs) {
    const args = program.args[options.mode];
    const builds = allocators.map((a) => buildProgram(program, a));
    const first = new Map<string, ProgramRun>();
    for (const b of builds) first.set(b.allocator, await runProgram(b.module, args));
    const reference = first.get("dlmalloc")!;
    if (reference.exitCode !== 0) throw new Error(`programs: ${program.name} failed with its own allocator (exit ${reference.exitCode}${reference.trap ? `, ${reference.trap}` : ""})`);
    const timed = builds.filter((b) => first.get(b.allocator)!.exitCode === 0);
    const samples = new Map(timed.map((b) => [b.allocator, { cpu: [] as number[], wall: [] as number[] }]));
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < timed.length; k++) {
        const build = timed[(k + round) % timed.length]!;
        const run = await runProgram(build.module, args);
        if (run.exitCode !== 0 || run.stdout !== reference.stdout) throw new Error(`programs: ${program.name} with ${build.allocator} changed its behaviour in round ${round + 1}`);
        samples.get(build.allocator)!.cpu.push(run.cpuMs);
        samples.get(build.allocator)!.wall.push(run.wallMs);
      }
      log(`${program.name}: round ${round + 1}/${options.rounds}`);
    }
    const trace = await programTrace(program, traceArgs(program, options.mode));
    log(`${program.name}: trace of ${trace.ops.length} operations recorded, replaying it on each allocator`);
    const replayed = replayTimes(trace, allocators, options.rounds);
    const base = spread(samples.get("dlmalloc")!.cpu).median;
    for (const b of builds) {
      const run = first.get(b.allocator)!;
      const s = samples.get(b.allocator);
      const failed = s ? undefined : `exit ${run.exitCode}${run.trap ? ` (${run.trap})` : ""}${run.stdout ? "" : ""}`;
      const cpuMs = s ? spread(s.cpu).median : NaN;
      cells.push({
        program: program.name,
        allocator: b.allocator,
        ...(failed && { failed }),
        cpuMs,
        wallMs: s ? spread(s.wall).median : NaN,
        ratio: cpuMs / base,
        memoryBytes: run.memoryBytes,
        bytes: b.bytes,
        sameOutput: run.exitCode === 0 && run.stdout === reference.stdout,
        locality: traceLocality(trace, b.allocator),
        traceArgs: traceArgs(program, options.mode),
        replay: { ms: replayed.get(b.allocator)!, ratio: replayed.get(b.allocator)! / replayed.get("dlmalloc")! },
        work: traceWork(trace, b.allocator),
      });
    }
  }
  return cells;
}

/** A function of the allocator: ours (named under `~alloc/`), or the program's own (dlmalloc's entry points and internals). */
export function isAllocatorFunction(name: string): boolean {
  return name.startsWith("~alloc/") || Object.hasOwn(ENTRY_NAMES, name) || isOldAllocatorName(name);
}

/** The Wasm instructions one run of a program executed with one allocator (deterministic). */
export interface ProgramInstructions {
  readonly program: string;
  readonly allocator: string;
  readonly args: readonly string[];
  /** The program's output (the same as the uninstrumented build's). */
  readonly stdout: string;
  /** Every instruction the run executed. */
  readonly total: number;
  /**
   * Those executed in the allocator's functions ({@link isAllocatorFunction}). What the optimiser
   * inlined into the program's own functions (the free list's malloc into binary-trees' `make`)
   * is counted there: compare totals.
   */
  readonly inAllocator: number;
  /** Every function that ran, most instructions first. */
  readonly functions: readonly FunctionCount[];
}

/**
 * Counts the instructions `program` executes with `allocator` (a {@link PROGRAM_ALLOCATORS}
 * build, as timed), per function: see `instructions.ts` for the unit. Throws when the
 * instrumented program fails.
 */
export async function programInstructions(program: RealProgram, allocator: string, args: readonly string[]): Promise<ProgramInstructions> {
  const instrumented = instrumentInstructions(buildProgram(program, allocator).binary);
  let functions: FunctionCount[] = [];
  const run = await runProgram(new WebAssembly.Module(instrumented.binary as BufferSource), args, (instance) => {
    functions = readInstructionCounts(instance, instrumented);
  });
  if (run.exitCode !== 0) throw new Error(`programs: ${program.name} with ${allocator} failed while counted (exit ${run.exitCode}${run.trap ? `, ${run.trap}` : ""})`);
  const sum = (fs: readonly FunctionCount[]) => fs.reduce((n, f) => n + f.instructions, 0);
  return { program: program.name, allocator, args, stdout: run.stdout, total: sum(functions), inAllocator: sum(functions.filter((f) => isAllocatorFunction(f.name))), functions };
}

/**
 * `programs --instructions`: every program counted once with every allocator
 * ({@link programInstructions}), dlmalloc first; each output must match dlmalloc's. An allocator
 * the program fails with (bump out of memory) is left out and reported through `progress`.
 */
export async function countPrograms(options: Omit<ProgramsOptions, "rounds">): Promise<ProgramInstructions[]> {
  const { programs, allocators } = selection(options);
  const log = options.progress ?? (() => {});
  const rows: ProgramInstructions[] = [];
  for (const program of programs) {
    let reference: string | undefined;
    for (const allocator of allocators) {
      let row: ProgramInstructions;
      try {
        row = await programInstructions(program, allocator, program.args[options.mode]);
      } catch (error) {
        if (allocator === "dlmalloc") throw error;
        log(`${program.name}: ${allocator} left out: ${(error as Error).message}`);
        continue;
      }
      reference ??= row.stdout;
      if (row.stdout !== reference) throw new Error(`programs: ${program.name} with ${allocator} changed its output when counted`);
      rows.push(row);
      log(`${program.name}: ${allocator} counted`);
    }
  }
  return rows;
}

/** The table `programs --instructions` prints: per program and allocator, instructions in all and in the allocator, its three busiest functions. */
export function formatInstructions(rows: readonly ProgramInstructions[]): string {
  const out = [
    "| program | allocator | instructions | / dlmalloc | in the allocator's functions | its busiest functions (instructions per call × calls) |",
    "| --- | --- | ---: | ---: | ---: | --- |",
  ];
  const millions = (n: number) => `${(n / 1e6).toFixed(1)} M`;
  for (const r of rows) {
    const base = rows.find((b) => b.program === r.program && b.allocator === "dlmalloc");
    const busiest = r.functions.filter((f) => isAllocatorFunction(f.name)).slice(0, 3);
    const list = busiest.map((f) => `${f.name} ${(f.instructions / f.calls).toFixed(1)} × ${f.calls.toLocaleString("en-US")}`).join(", ");
    out.push(`| ${r.program} ${r.args.join(" ")} | ${r.allocator} | ${millions(r.total)} | ${base ? `${(r.total / base.total).toFixed(2)}×` : ""} | ${millions(r.inAllocator)} | ${list} |`);
  }
  return out.join("\n");
}

const pct = (share: number) => `${(share * 100).toFixed(1)} %`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** The table `programs` prints: per program and allocator, median times, the ratio to dlmalloc, memory. */
export function formatPrograms(cells: readonly ProgramCell[]): string {
  const rows = [
    `| program | allocator | CPU ms (median) | wall ms | CPU / dlmalloc | memory at exit | module bytes | output | next within ${LOCALITY_WINDOW} B after | next below |`,
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
  ];
  for (const c of cells) {
    const times = c.failed ? [`failed: ${c.failed}`, "", ""] : [c.cpuMs.toFixed(1), c.wallMs.toFixed(1), `${c.ratio.toFixed(2)}×`];
    rows.push(`| ${c.program} | ${c.allocator} | ${times.join(" | ")} | ${mib(c.memoryBytes)} | ${c.bytes.toLocaleString("en-US")} | ${c.sameOutput ? "same" : "DIFFERENT"} | ${pct(c.locality.nearAfter)} | ${pct(c.locality.below)} |`);
  }
  rows.push(
    "",
    "| program | allocator | trace replay ms (median) | replay / dlmalloc | work per malloc | work per free |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
  );
  for (const c of cells) {
    rows.push(`| ${c.program} | ${c.allocator} | ${c.replay.ms.toFixed(1)} | ${c.replay.ratio.toFixed(2)}× | ${c.work.malloc.toFixed(1)} | ${c.work.free.toFixed(1)} |`);
  }
  const traces = [...new Set(cells.map((c) => c.program))].map((name) => {
    const cell = cells.find((c) => c.program === name)!;
    return `${name} ${cell.traceArgs.join(" ")} (${cell.locality.pairs.toLocaleString("en-US")} successive pairs with dlmalloc)`;
  });
  rows.push(
    "",
    `Locality: each program's allocations recorded once (alloc record), replayed on each allocator alone (a fresh heap), and of each successive pair of placements (malloc, calloc, a realloc that moved) the share where the next is at most ${LOCALITY_WINDOW} bytes above the previous, and the share where it is below. The second table: the same trace replayed inside Wasm on each allocator alone (the fast driver, a reused heap: each sample the second replay on a new instance; interleaved rounds), and the mean work per call counted by measureWork (function entries and loop iterations). Traces: ${traces.join("; ")}.`,
  );
  return rows.join("\n");
}
