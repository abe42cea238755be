import { AllocConfigError, type Strategy } from "@alloc/core";
import { recordTrace, swapAllocator, type SwapReport } from "@alloc/swap";
import { Command, InvalidArgumentError, Option } from "commander";
import { readFileSync } from "node:fs";
import { checkWritable, refuseRepeats, write, type Io } from "./cli.ts";
import { DEFAULT_STACK, STRATEGIES } from "./registry.ts";
import { parseStack } from "./composition.ts";
import { formatSpec } from "./options.ts";

interface SwapFlags {
  strategy: string;
  out?: string;
  minAlign?: number;
  prefix?: string;
  opt: "size" | "speed" | "none";
  bulkMemory: boolean;
  debug?: boolean;
  heapBase?: number;
  record?: boolean;
}

function whole(value: string): number {
  const m = /^(0x[0-9a-f]+|\d+)$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a whole number (e.g. 16, 0x11000)`);
  return Number(m[1]);
}

/** The strategies named by --strategy (with their options), or an error naming the unknown one. */
function strategies(text: string): Strategy[] {
  return parseStack(text).map((p) => STRATEGIES[p.name]!.create(p.options));
}

function readProgram(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (error) {
    throw new AllocConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

const bytes = (n: number) => n.toLocaleString("en-US");

/** What `alloc swap` prints: what it found, what it replaced and removed, the heap, the sizes. */
export function describeSwap(report: SwapReport, stack: readonly string[]): string {
  const lines: string[] = [];
  const byServer = new Map<string, string[]>();
  for (const e of report.found) byServer.set(e.servedBy, [...(byServer.get(e.servedBy) ?? []), e.function]);
  lines.push(`found: ${report.found.map((e) => `${e.function} (${e.role}, by ${e.via})`).join(", ")}`);
  lines.push(`replaced: ${[...byServer].map(([ours, theirs]) => `${theirs.join(", ")} -> ${ours}`).join("; ")}`);
  if (report.removed.length > 0) lines.push(`removed, the old allocator: ${report.removed.join(", ")}`);
  if (report.alsoRemoved.length > 0) lines.push(`removed, unreachable before: ${report.alsoRemoved.join(", ")}`);
  lines.push(
    report.heap.start < report.heap.initialEnd
      ? `heap: from ${report.heap.start} (${report.heap.source}) through the initial memory (${bytes(report.heap.initialEnd)} bytes), then memory.grow`
      : `heap: fresh pages from memory.grow (the static data ends at ${report.heap.start}, past the initial memory)`,
  );
  const baseline = report.sizes.beforeOptimized === undefined ? "" : ` (the original optimised the same way: ${bytes(report.sizes.beforeOptimized)} bytes)`;
  lines.push(`${[...stack, "heap-base"].join(" > ")}: ${bytes(report.sizes.before)} -> ${bytes(report.sizes.after)} bytes${baseline}`);
  if (!report.bulkMemory) lines.push("bulk memory: off (byte loops in calloc and realloc)");
  // The heap's source is on the heap line already.
  for (const note of report.notes) if (!note.startsWith("the heap starts at")) lines.push(`note: ${note}`);
  if (report.debug) lines.push(`debug build: the heap walker is exported as "${report.debug.heapCheckExport}"`);
  return lines.map((l) => `${l}\n`).join("");
}

/** `alloc swap IN.wasm -o OUT.wasm` and `alloc record IN.wasm -o OUT.trace`: registered on the `alloc` program by cli.ts. */
export function addSwapCommand(program: Command, io: Io): void {
  const command = program
    .command("swap")
    .description(
      "Replace the allocator of a compiled WebAssembly program (C/C++ with wasi-libc's dlmalloc, or malloc/free imports) with a composition; prints what it found, replaced and removed, and the sizes.",
    )
    .argument("<in.wasm>", "the program (built with its names: not --strip-all)")
    .addOption(new Option("-o, --out <file>", "write the swapped program to this .wasm file"))
    .addOption(
      new Option("-s, --strategy <stack>", 'strategies, top first, comma-separated, with options as in alloc build (e.g. "size-classes(maxSmall=512),free-list")')
        .default(DEFAULT_STACK.join(",")),
    )
    .addOption(new Option("--min-align <bytes>", "alignment of every block (power of two; default 16, as wasi-libc's malloc)").argParser(whole))
    .addOption(new Option("--prefix <name>", "prefix of every name of ours in the program (default ~alloc)"))
    .addOption(new Option("--opt <goal>", "optimise the whole program for").choices(["size", "speed", "none"]).default("size"))
    .addOption(new Option("--no-bulk-memory", "do not enable bulk memory: byte loops instead of memory.fill/memory.copy, for engines without it"))
    .addOption(new Option("--debug", "debug build of the allocator: faults trap with a cause; exports the heap walker"))
    .addOption(new Option("--heap-base <address>", "where the heap starts, when the program's __heap_base cannot be read").argParser(whole))
    .addOption(
      new Option(
        "--record",
        'report every allocator call to the host: imports alloc_record.alloc(size, ptr), .free(ptr), .realloc(old, size, new) (alloc record runs it and writes the trace)',
      ),
    )
    .action(async (file: string, flags: SwapFlags) => {
      const stack = strategies(flags.strategy);
      const input = readProgram(file);
      if (flags.out) checkWritable(flags.out, "-o");
      const { binary, report } = swapAllocator(input, {
        strategy: stack,
        optimize: flags.opt,
        bulkMemory: flags.bulkMemory,
        ...(flags.minAlign !== undefined && { minAlign: flags.minAlign }),
        ...(flags.prefix !== undefined && { prefix: flags.prefix }),
        ...(flags.debug && { debug: true }),
        ...(flags.heapBase !== undefined && { heapBase: flags.heapBase }),
        ...(flags.record && { record: true }),
      });
      if (flags.out) write(flags.out, binary, "-o");
      io.out(describeSwap(report, parseStack(flags.strategy).map((p) => formatSpec(p.name, p.options))));
      if (flags.record) io.out('recording: every allocator call is reported to the imports "alloc_record"."alloc", "free" and "realloc"\n');
      io.out(flags.out ? `wrote ${flags.out}\n` : "(nothing written: give -o OUT.wasm)\n");
    });
  refuseRepeats(command);

  const record = program
    .command("record")
    .description(
      "Run a compiled WASI program with its allocator swapped for a composition that reports every call, and write the trace (Alloc/Free/Realloc) for alloc replay.",
    )
    .argument("<in.wasm>", "the program (built with its names: not --strip-all)")
    .argument("[args...]", "the program's arguments (after --)")
    .addOption(new Option("-o, --out <file>", "write the trace to this file").makeOptionMandatory())
    .addOption(
      new Option("-s, --strategy <stack>", "the composition the program runs on while recording (as in alloc build)")
        .default(DEFAULT_STACK.join(",")),
    )
    .action(async (file: string, args: string[], flags: { out: string; strategy: string }) => {
      const stack = strategies(flags.strategy);
      const input = readProgram(file);
      checkWritable(flags.out, "-o");
      const { binary } = swapAllocator(input, { strategy: stack, record: true, baseline: false });
      const recorded = await recordTrace(binary, args);
      write(flags.out, recorded.text, "-o");
      const { alloc, free, realloc } = recorded.counts;
      const how = recorded.run.trap !== undefined ? `trapped (${String(recorded.run.trap)})` : `exit code ${recorded.run.exitCode}`;
      io.out(`${file}: ${how}, ${recorded.run.stdout.byteLength} bytes of output (not shown)\n`);
      io.out(`recorded ${recorded.operations} operations (${alloc} Alloc, ${free} Free, ${realloc} Realloc)\n`);
      io.out(`wrote ${flags.out} (replay it: alloc replay ${flags.out})\n`);
    });
  refuseRepeats(record);
}
