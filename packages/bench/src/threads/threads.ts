/**
 * `pnpm --filter @alloc/bench threads`: ns per malloc/free call of the thread-safe builds with 1,
 * 2 and 4 worker threads over one shared memory, with one lock and with thread caches
 * (`threadCache`, where the composition allows them), against the same composition built without
 * `threads` (one thread, no lock). Rounds are interleaved (every configuration once per round). Each thread frees one block of a window of live blocks and
 * allocates another in its place, `--ops` times. Wall time is from a start signal every thread
 * waits for to the last thread's end; ns/op is wall time over all threads' calls (with one lock,
 * more threads share the same critical sections; with caches, most calls take no lock). The load
 * average is printed beside the table: the machine may be shared. Options: --ops <n> per thread (default 1,000,000),
 * --rounds <n> (default 3; the median is printed).
 */
import { buildAllocator, type BuildOptions } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "@alloc/size-classes";
import { Command, Option } from "commander";
import { availableParallelism, loadavg } from "node:os";
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

/** One column of the table: a build, how many threads run it, over a shared memory or not. */
interface Config {
  readonly composition: string;
  readonly column: string;
  readonly binary: Uint8Array | undefined;
  readonly threads: number;
  readonly shared: boolean;
}

const columns = ["unlocked, 1 thread", ...["locked", "locked + cache"].flatMap((kind) => [1, 2, 4].map((n) => `${kind}, ${n}`))];
const configs: Config[] = [];
for (const [name, strategy] of Object.entries(compositions)) {
  const base = { strategy: strategy(), exports: ["malloc", "free"], optimize: "speed" as const, memory: { mode: "import" as const, initialPages: 1 } };
  const unlocked = buildAllocator(base).binary;
  const locked = buildAllocator({ ...base, strategy: strategy(), threads: true }).binary;
  // The cache needs a top strategy that can tell a block's size without the lock (size-classes).
  let cached: Uint8Array | undefined;
  try {
    cached = buildAllocator({ ...base, strategy: strategy(), threads: true, threadCache: true }).binary;
  } catch {
    cached = undefined;
  }
  configs.push({ composition: name, column: columns[0]!, binary: unlocked, threads: 1, shared: false });
  for (const n of [1, 2, 4]) configs.push({ composition: name, column: `locked, ${n}`, binary: locked, threads: n, shared: true });
  for (const n of [1, 2, 4]) configs.push({ composition: name, column: `locked + cache, ${n}`, binary: cached, threads: n, shared: true });
}

const load = () => loadavg().map((l) => l.toFixed(1)).join(" ");
const loadBefore = load();
// Interleaved: every configuration once per round, so that a change in the machine's load falls on all of them alike.
const samples = new Map<Config, number[]>(configs.map((c) => [c, []]));
for (let round = 0; round < rounds; round++) {
  for (const c of configs) if (c.binary) samples.get(c)!.push(await run(c.binary, c.threads, c.shared, 1));
  process.stderr.write(`\rround ${round + 1} / ${rounds}`);
}
process.stderr.write("\n");

process.stdout.write(
  `cores: ${availableParallelism()} (threads beyond that take turns); load average (1, 5, 15 min) ${loadBefore} before, ${load()} after; ` +
    `${ops.toLocaleString()} malloc/free pairs per thread, window ${WINDOW}, median of ${rounds} interleaved rounds; ns per call, wall time over all threads' calls\n\n`,
);
process.stdout.write(`| composition | ${columns.join(" | ")} |\n| --- |${columns.map(() => " ---: |").join("")}\n`);
for (const name of Object.keys(compositions)) {
  const cells = columns.map((column) => {
    const c = configs.find((x) => x.composition === name && x.column === column)!;
    return c.binary ? `${median(samples.get(c)!).toFixed(1)} ns` : "refused";
  });
  process.stdout.write(`| ${name} | ${cells.join(" | ")} |\n`);
}
