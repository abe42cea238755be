/**
 * `pnpm soak`: millions of random operations against every composition, with progress.
 * Options: --ops <n> (exactly n operations per composition, default 1,000,000), --seed <n>, --only <text>,
 * --debug (the debug build, with the heap walker after every operation: much slower).
 * --speed: builds optimised for speed, with the strategies' speed-only fast paths (`goal`).
 * --threads [n]: the thread-safe builds instead, n worker threads (default 4) over one shared memory
 * hammering each (blocks tagged per thread and checked, some freed by another thread), and the
 * builds with thread caches (`threadCache`) where the top strategy allows them; with
 * --debug, the heap walker runs from the main thread while they do, and at the end.
 */
import { enableMemory64 } from "@alloc/cli";
import { buildAllocator } from "@alloc/core";
import { Command, Option } from "commander";
import fc from "fast-check";
import { THREAD_CACHE_FLUSH } from "@alloc/core";
import { cachedCompositions, compositions, threadedCompositions } from "./compositions.ts";
import { hammer } from "./threads/hammer.ts";
import { op, runModel, type Op } from "./model.ts";

const program = new Command("soak")
  .description("Run millions of random allocator operations against every composition, checked against the model.")
  .addOption(new Option("--ops <n>", "operations per composition").default(1_000_000).argParser(Number))
  .addOption(new Option("--seed <n>", "fast-check seed (default: random)").argParser(Number))
  .addOption(new Option("--only <text>", "only compositions whose name contains this"))
  .addOption(new Option("--debug", "debug builds, with the heap walker after every operation"))
  .addOption(new Option("--speed", "builds optimised for speed, with the strategies' speed-only fast paths"))
  .addOption(new Option("--threads [n]", "thread-safe builds, hammered by n worker threads (default 4)").argParser(Number))
  .parse();
const { ops: total, seed, only, debug, speed, threads } = program.opts<{ ops: number; seed?: number; only?: string; debug?: boolean; speed?: boolean; threads?: number | true }>();
/** What --debug and --speed add to a composition's build options. */
const extra = { ...(debug && { debug: true }), ...(speed && { goal: "speed" as const, optimize: "speed" as const }) };
const perCase = 500;
if (!Number.isSafeInteger(total) || total < 1) {
  process.stderr.write(`soak: --ops must be a positive whole number, got ${String(program.opts().ops)}\n`);
  process.exit(2);
}

// The memory64 compositions need it (Node 20 and 22 run them only behind a flag).
enableMemory64();
if (threads !== undefined) {
  const n = threads === true ? 4 : threads;
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    process.stderr.write(`soak: --threads must be a whole number from 1 to 64, got ${String(threads)}\n`);
    process.exit(2);
  }
  process.exit(await soakThreads(n));
}

/** `--threads`: rounds of the hammer (a fresh memory each) until `total` operations ran on each composition. */
async function soakThreads(n: number): Promise<number> {
  const perRound = 20_000 * n;
  let failures = 0;
  // With thread caches too, where the top strategy allows them: each thread hands its cache back at its end.
  for (const composition of [...threadedCompositions(), ...cachedCompositions()].filter((c) => !only || c.name.includes(only))) {
    const finish = composition.options.threadCache ? THREAD_CACHE_FLUSH : undefined;
    const built = buildAllocator({ ...composition.options, ...extra });
    const started = Date.now();
    let done = 0;
    try {
      for (let round = 0; done < total; round++) {
        const ops = Math.ceil(Math.min(perRound, total - done) / n);
        const roundSeed = (seed ?? Math.floor(Math.random() * 2 ** 31)) + round;
        await hammer({ built, threads: n, ops, seed: roundSeed, walkWhileRunning: debug === true, ...(finish && { finish }) }).catch((error: unknown) => {
          throw new Error(`round ${round} (seed ${roundSeed}): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        });
        done += ops * n;
        process.stdout.write(`\r${composition.name}, ${n} threads: ${done.toLocaleString()} / ${total.toLocaleString()} ops`);
      }
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`\r${composition.name}, ${n} threads: ${done.toLocaleString()} ops in ${secs} s, all checks passed\n`);
    } catch (error) {
      failures++;
      process.stdout.write(`\n${composition.name}, ${n} threads: FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }
  return failures ? 1 : 0;
}

let failed = false;
for (const composition of compositions().filter((c) => !only || c.name.includes(only))) {
  const built = buildAllocator({ ...composition.options, ...extra });
  let done = 0;
  let shown = Date.now();
  const started = Date.now();
  // Exactly `total` operations: fast-check draws sequences of random length, so it runs in rounds,
  // each sized for what is left (sequences average about half of perCase), and the sequence that
  // reaches the total is cut there. Each round has its own seed, derived from --seed when given.
  let result: fc.RunDetails<[Op[]]> | undefined;
  for (let round = 0; done < total && !result?.failed; round++) {
    const left = total - done;
    result = await fc.check(
      fc.asyncProperty(fc.array(op, { maxLength: perCase, size: "max" }), async (ops) => {
        const batch = ops.slice(0, Math.max(0, total - done));
        if (batch.length === 0) return;
        const heap = await built.instantiate();
        runModel(heap, batch, debug ? () => void heap.checkHeap() : undefined);
        done += batch.length;
        if (Date.now() - shown > 500) {
          shown = Date.now();
          process.stdout.write(`\r${composition.name}: ${done.toLocaleString()} / ${total.toLocaleString()} ops`);
        }
      }),
      { numRuns: Math.max(1, Math.ceil((2 * left) / perCase)), ...(seed !== undefined && { seed: seed + round }) },
    );
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (result?.failed) {
    failed = true;
    process.stdout.write(`\n${composition.name}: FAILED (seed ${result.seed}, path ${result.counterexamplePath})\n`);
    const error = result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
    process.stdout.write(`error: ${error}\nshortest failing sequence (${result.counterexample?.[0]?.length} ops): ${JSON.stringify(result.counterexample?.[0])}\n`);
  } else {
    process.stdout.write(`\r${composition.name}: ${done.toLocaleString()} ops in ${secs} s, all checks passed\n`);
  }
}
process.exitCode = failed ? 1 : 0;
