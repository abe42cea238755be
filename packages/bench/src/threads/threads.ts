/**
 * `pnpm --filter @alloc/bench threads`: ns per malloc/free call of the thread-safe builds with 1,
 * 2 and 4 worker threads over one shared memory, against the same composition built without
 * `threads` (one thread, no lock). Each thread frees one block of a window of live blocks and
 * allocates another in its place, `--ops` times. Wall time is from a start signal every thread
 * waits for to the last thread's end; ns/op is wall time over all threads' calls (with one lock,
 * more threads share the same critical sections: this shows what the lock costs and how it
 * behaves under contention, not a speed-up). Options: --ops <n> per thread (default 1,000,000),
 * --rounds <n> (default 3; the median is printed).
 */
import { buildAllocator, type BuildOptions } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "@alloc/size-classes";
import { Command, Option } from "commander";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

const program = new Command("threads")
  .addOption(new Option("--ops <n>", "malloc/free pairs per thread").default(1_000_000).argParser(Number))
  .addOption(new Option("--rounds <n>", "rounds per configuration (median printed)").default(3).argParser(Number))
  .parse();
const { ops, rounds } = program.opts<{ ops: number; rounds: number }>();

const WINDOW = 256;
const compositions: Record<string, () => BuildOptions["strategy"]> = {
  "free-list": () => freeList(),
  "size-classes > free-list": () => [sizeClasses(), freeList()],
};

/** One run: `threads` workers over one memory (shared when `shared`); wall ns per call. */
async function run(binary: Uint8Array, threads: number, shared: boolean, initialPages: number): Promise<number> {
  const start = new Int32Array(new SharedArrayBuffer(4));
  const memory = shared ? new WebAssembly.Memory({ initial: initialPages, maximum: 4096, shared: true }) : undefined;
  const workers = Array.from({ length: threads }, (_, i) =>
    new Worker(new URL("./worker.mjs", import.meta.url), { workerData: { binary, shared: memory, initialPages, ops, seed: i + 1, start, window: WINDOW } }),
  );
  try {
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once("message", resolve))));
    const done = workers.map((w) => new Promise<{ t0: number; t1: number }>((resolve, reject) => { w.once("message", resolve); w.once("error", reject); }));
    Atomics.store(start, 0, 1);
    Atomics.notify(start, 0);
    const times = await Promise.all(done);
    const wall = Math.max(...times.map((t) => t.t1)) - Math.min(...times.map((t) => t.t0));
    return wall / (threads * ops * 2);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

process.stdout.write(`cores: ${availableParallelism()} (threads beyond that take turns); ${ops.toLocaleString()} malloc/free pairs per thread, window ${WINDOW}, median of ${rounds}\n\n`);
process.stdout.write("| composition | unlocked, 1 thread | locked, 1 thread | 2 threads | 4 threads |\n| --- | ---: | ---: | ---: | ---: |\n");
for (const [name, strategy] of Object.entries(compositions)) {
  const base = { strategy: strategy(), exports: ["malloc", "free"], optimize: "speed" as const, memory: { mode: "import" as const, initialPages: 1 } };
  const unlocked = buildAllocator(base);
  const locked = buildAllocator({ ...base, strategy: strategy(), threads: true });
  const cells: string[] = [];
  const measure = async (binary: Uint8Array, threads: number, shared: boolean) => {
    const r: number[] = [];
    for (let i = 0; i < rounds; i++) r.push(await run(binary, threads, shared, 1));
    return `${median(r).toFixed(1)} ns`;
  };
  cells.push(await measure(unlocked.binary, 1, false));
  for (const threads of [1, 2, 4]) cells.push(await measure(locked.binary, threads, true));
  process.stdout.write(`| ${name} | ${cells.join(" | ")} |\n`);
}
