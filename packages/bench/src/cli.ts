import { growthCost } from "./growth-cost.ts";
import { createReplayer } from "@alloc/trace";
import { Command, InvalidArgumentError } from "commander";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, relative } from "node:path";
import { chart } from "./chart.ts";
import { contenders, instantiate } from "./contenders.ts";
import { measure } from "./measure.ts";
import { countPrograms, formatInstructions, formatPrograms, measurePrograms, PROGRAM_ALLOCATORS, PROGRAMS } from "./programs.ts";
import { buildPeers } from "./peers.ts";
import { formatPaths, measurePaths } from "./call-paths.ts";
import { RESULTS_DIR } from "./paths.ts";
import { buildReport, formatReport, type BenchReport } from "./report.ts";
import { setup } from "./setup.ts";
import { SIZES_FILE, sizesMarkdown } from "./sizes.ts";
import { benchWorkloads } from "./workloads.ts";

/** Settings of the two modes; flags override them. */
const MODES = {
  quick: { rounds: 5, sampleOps: 50_000, maxFresh: 4, budgetMs: 50 },
  full: { rounds: 11, sampleOps: 400_000, maxFresh: 10, budgetMs: 250 },
} as const;

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
};
const list = (value: string) => value.split(",").map((s) => s.trim()).filter(Boolean);
/** "1-21" -> [1, ..., 21]; "3" -> [3]. */
const seedRange = (value: string) => {
  const m = /^(\d+)(?:-(\d+))?$/.exec(value.trim());
  const [from, to] = [Number(m?.[1]), Number(m?.[2] ?? m?.[1])];
  if (!m || from < 1 || to < from) throw new InvalidArgumentError("must be a seed or a range from-to of seeds from 1 (e.g. 1-21)");
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
};

/** A progress line on stderr: rewritten in place on a terminal, a line per 10% otherwise. */
function progressLine(): (done: number, total: number, what: string) => void {
  const tty = process.stderr.isTTY;
  const start = Date.now();
  let lastTenth = -1;
  return (done, total, what) => {
    const pct = Math.floor((done / total) * 100);
    const elapsed = ((Date.now() - start) / 1000).toFixed(0);
    const line = `[${String(pct).padStart(3)}%] ${elapsed}s ${what}`;
    if (tty) {
      process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 100) - 1)}`);
      if (done === total) process.stderr.write("\n");
    } else if (Math.floor(pct / 10) !== lastTenth) {
      lastTenth = Math.floor(pct / 10);
      process.stderr.write(`${line}\n`);
    }
  };
}

export const program = new Command("bench")
  .description("Benchmarks of alloc's compositions against dlmalloc and AssemblyScript's runtimes, replayed inside Wasm.")
  .showHelpAfterError();

program
  .command("run", { isDefault: true })
  .description("replay every workload against every allocator; print a table, write JSON and SVG")
  .option("--quick", "a one-minute look: shorter workloads, fewer rounds")
  .option("--rounds <n>", "interleaved rounds (default: 5 quick, 11 full)", positiveInt)
  .option("--allocators <names>", "comma-separated allocators to run (default: all that can run here)", list)
  .option("--workloads <names>", "comma-separated workloads, or kinds (recorded, shape, adversarial), to run (default: all)", list)
  .option("--out <dir>", "where to write <mode>.json and <mode>.svg", RESULTS_DIR)
  .option("--no-build-peers", "do not build missing peers first")
  .action((options: { quick?: boolean; rounds?: number; allocators?: string[]; workloads?: string[]; out: string; buildPeers: boolean }) => {
    const mode = options.quick ? "quick" : "full";
    const config = { ...MODES[mode], ...(options.rounds && { rounds: options.rounds }) };
    if (!process.execArgv.includes("--no-liftoff")) {
      console.warn("warning: run through `pnpm bench` (node --no-liftoff): without it V8 times its baseline compiler at first");
    }
    if (options.buildPeers) buildPeers({ onlyMissing: true, log: (line) => console.error(line) });
    const { contenders: list, skipped } = contenders(options.allocators);
    const workloads = benchWorkloads(mode, options.workloads);
    for (const s of skipped) console.error(`skipping ${s.name}: ${s.reason}`);
    if (!list.length || !workloads.length) {
      console.error("nothing to run: no allocator or no workload left");
      process.exitCode = 1;
      return;
    }
    console.error(`${list.length} allocators × ${workloads.length} workloads × ${config.rounds} rounds (${mode})`);
    const cells = measure(list, workloads, { ...config, progress: progressLine() });
    const command = `pnpm bench${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}`;
    const report = buildReport({ command, mode, config, contenders: list, skipped, workloads, cells });
    console.log(formatReport(report));
    mkdirSync(options.out, { recursive: true });
    const name = mode === "full" ? "bench" : "quick";
    writeFileSync(join(options.out, `${name}.json`), JSON.stringify(report, null, 2) + "\n");
    writeFileSync(join(options.out, `${name}.svg`), chart(report));
    console.error(`wrote ${relative(process.cwd(), join(options.out, `${name}.json`))} and ${name}.svg`);
  });

program
  .command("chart <json>")
  .description("redraw the SVG chart of a JSON report written by run (beside it, same name)")
  .action((file: string) => {
    const report = JSON.parse(readFileSync(file, "utf8")) as BenchReport;
    const svg = file.replace(/\.json$/, "") + ".svg";
    writeFileSync(svg, chart(report));
    console.error(`wrote ${svg}`);
  });

program
  .command("setup")
  .description("install clang, lld and wasi-libc with apt-get when missing, and build the peers into peers/")
  .action(() => {
    if (!setup()) process.exitCode = 1;
  });

program
  .command("sizes")
  .description("write the code size report to SIZES.md")
  .option("--check", "only check that SIZES.md is current (exit 1 when not)")
  .action((options: { check?: boolean }) => {
    const text = sizesMarkdown();
    if (options.check) {
      const current = readFileSync(SIZES_FILE, "utf8");
      if (current !== text) {
        console.error("SIZES.md is stale: run `pnpm --filter @alloc/bench sizes`");
        process.exitCode = 1;
      }
      return;
    }
    writeFileSync(SIZES_FILE, text);
    console.log(text);
  });

program
  .command("growth")
  .description("what the grow backend's growth policy costs in memory: the default free list grown by 1/16 (the default), 1/8 and exactly, beside wasi-libc's and Rust std's dlmalloc, seeds 1-4")
  .option("--workloads <names>", "comma-separated workloads, or kinds (shape, adversarial) (default: all)", list)
  .option("--seeds <range>", "seeds, as from-to (e.g. 1-21) (default: 1-4)", seedRange)
  .option("--ops <n>", "operations per trace (default: 100,000; 10,000 for staircase, realloc-doubling and large-blocks)", positiveInt)
  .action((options: { workloads?: string[]; seeds?: number[]; ops?: number }) => {
    try {
      growthCost((line) => console.log(line), options.seeds, options.workloads, options.ops);
    } catch (e) {
      if (e instanceof RangeError) program.error(e.message);
      throw e;
    }
  });

program
  .command("paths")
  .description("where a reused heap's time goes, deterministically: Wasm instructions per malloc, free and realloc on the bench's reused-heap replay, and the most frequent per-call counts (paths)")
  .option("--workloads <names>", "comma-separated workloads, or kinds (recorded, shape, adversarial) (default: all)", list)
  .option("--allocators <names>", "comma-separated allocators (default: free-list,dlmalloc)", list)
  .option("--top <n>", "paths shown per allocator (default: 8)", positiveInt)
  .action((options: { workloads?: string[]; allocators?: string[]; top?: number }) => {
    const { contenders: chosen, skipped } = contenders(options.allocators ?? ["free-list", "dlmalloc"]);
    for (const s of skipped) console.error(`skipped ${s.name}: ${s.reason}`);
    const cells = benchWorkloads("full", options.workloads).flatMap((w) => chosen.map((c) => measurePaths(c, w)));
    console.log(formatPaths(cells, options.top ?? 8));
  });

program
  .command("loop <allocator> <workload>")
  .description("replays one workload on one allocator's reused heap over and over, for a profiler (see README: Where the time goes)")
  .option("--reps <n>", "replays after the first (default: 1,000)", positiveInt)
  .action((allocator: string, workload: string, options: { reps?: number }) => {
    const [c] = contenders([allocator]).contenders;
    const [w] = benchWorkloads("full", [workload]);
    if (!c || !w) program.error(`no allocator "${allocator}" (or not built: setup-peers) or no workload "${workload}"`);
    const replayer = createReplayer(instantiate(c!), w!, { verify: false });
    replayer.run({ freeLive: true });
    let ms = 0;
    const reps = options.reps ?? 1_000;
    for (let i = 0; i < reps; i++) ms += replayer.run({ freeLive: true }).elapsedMs;
    console.log(`${c!.name} on ${w!.name}: ${((ms * 1e6) / (reps * w!.ops.length)).toFixed(1)} ns/op over ${reps} replays of the reused heap`);
  });

program
  .command("programs")
  .description("real programs compiled from C (binary-trees, an interpreter, a JSON library) with each allocator swapped in: CPU time against dlmalloc's, memory")
  .option("--quick", "small inputs and 3 rounds (a few seconds)")
  .option("--rounds <n>", "interleaved rounds (default: 3 quick, 11 full)", positiveInt)
  .option("--programs <names>", `comma-separated programs (default: all: ${PROGRAMS.map((p) => p.name).join(", ")})`, list)
  .option("--allocators <names>", `comma-separated allocators (default: all: ${PROGRAM_ALLOCATORS.join(", ")}; dlmalloc is always run)`, list)
  .option("--instructions", "count the Wasm instructions each run executes, per function (deterministic), instead of timing")
  .action(async (options: { quick?: boolean; rounds?: number; programs?: string[]; allocators?: string[]; instructions?: boolean }) => {
    const mode = options.quick ? "quick" : "full";
    const rounds = options.rounds ?? (options.quick ? 3 : 11);
    const allocators = options.allocators && [...new Set(["dlmalloc", ...options.allocators])];
    const selected = { ...(options.programs && { programs: options.programs }), ...(allocators && { allocators }) };
    if (options.instructions) {
      console.log(formatInstructions(await countPrograms({ mode, ...selected, progress: (line) => console.error(line) })));
      return;
    }
    console.error(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}; ${rounds} rounds (${mode})`);
    const cells = await measurePrograms({ mode, rounds, ...selected, progress: (line) => console.error(line) });
    console.log(formatPrograms(cells));
    console.error(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  });

await program.parseAsync();
