import { binaryen, HeapFaultError, type BuiltAllocator, type HeapReport } from "@alloc/core";
import { Worker } from "node:worker_threads";

export interface HammerOptions {
  /** A thread-safe build (`threads` set) that exports malloc, free, calloc, realloc and aligned_alloc. */
  readonly built: BuiltAllocator;
  /** Worker threads, each an instance of the module over one shared memory. */
  readonly threads: number;
  /** Operations per thread. */
  readonly ops: number;
  readonly seed: number;
  /** The largest block a thread asks for (default 20,000 bytes). */
  readonly maxSize?: number;
  /** Debug builds: run the heap walker from the main thread again and again while the workers run. */
  readonly walkWhileRunning?: boolean;
  /** Debug builds: each thread runs the heap walker itself before every `walkEvery`-th operation. */
  readonly walkEvery?: number;
  /** An exported function each thread calls when it is done (a thread's hand-back), if any. */
  readonly finish?: string;
  /** Reject when the threads are not done by then (a broken allocator may loop). Default 120 s. */
  readonly timeoutMs?: number;
}

/** What each thread did, summed. */
export interface HammerCounts {
  readonly malloc: number;
  readonly calloc: number;
  readonly realloc: number;
  readonly aligned_alloc: number;
  readonly free: number;
  /** Blocks handed to the next thread, and blocks a thread checked and freed for the one before it. */
  readonly given: number;
  readonly received: number;
  readonly refused: number;
}

export interface HammerResult {
  readonly counts: HammerCounts;
  /**
   * Debug builds: the heap walker's report after every thread freed everything; stats builds:
   * heap_stats' report then; undefined otherwise.
   */
  readonly report: HeapReport | undefined;
  /** Debug builds: how many times the walker ran while the threads were running. */
  readonly walks: number;
}

/**
 * For control tests: the module `text` (a broken variant of `built`'s), further edited by
 * `edit`, hammered by 4 threads in rounds until a round fails; returns that round's error, or
 * undefined when none did. Races need two threads inside the allocator at once: on a loaded
 * machine they may be rare, so rounds run until one is caught (one round usually suffices), at
 * least 8 and for up to 90 s.
 */
export async function hammerBroken(built: BuiltAllocator, text: string, seed: number, edit?: (module: binaryen.Module) => void): Promise<unknown> {
  const module = binaryen.parseText(text);
  module.setFeatures(binaryen.Features.All);
  edit?.(module);
  const binary = module.emitBinary();
  module.dispose();
  let caught: unknown;
  // Rounds for up to 90 s: on a loaded machine the threads seldom run at the same instant.
  const until = Date.now() + 90_000;
  for (let round = 0; caught === undefined && (round < 8 || Date.now() < until); round++) {
    await hammer({ built: { ...built, binary }, threads: 4, ops: 20_000, seed: seed + round, maxSize: 256, timeoutMs: 20_000 }).catch((e: unknown) => {
      caught = e;
    });
  }
  return caught;
}

/** A shared memory for `built`'s threads: 1 GiB at most, 64-bit for a memory64 build. */
export function sharedMemoryFor(built: BuiltAllocator): WebAssembly.Memory {
  return new WebAssembly.Memory({
    initial: built.memory.initialPages,
    maximum: 16384,
    shared: true,
    ...(built.memory.memory64 && { index: "i64" }),
  } as WebAssembly.MemoryDescriptor);
}

/** Blocks in flight from one thread to the next. */
const RING_SLOTS = 64;

/**
 * Runs `threads` worker threads over one shared `WebAssembly.Memory`, each hammering the
 * allocator with random malloc/calloc/realloc/aligned_alloc/free of blocks tagged per thread and
 * checked (contents kept until freed and across realloc, alignment, calloc zeroed), and handing
 * some blocks to the next thread, which checks and frees them. Every thread frees all it holds at
 * the end. Rejects with the first thread's error (a debug build's fault as a HeapFaultError).
 */
export async function hammer(options: HammerOptions): Promise<HammerResult> {
  const { built, threads, ops, seed } = options;
  if (!built.memory.shared) throw new Error("hammer: the allocator is not a thread-safe build (threads option)");
  const memory = sharedMemoryFor(built);
  const heap = await built.instantiate({ memory });
  const rings = new SharedArrayBuffer(threads * (2 + 3 * RING_SLOTS) * 4);
  const barrier = new Int32Array(new SharedArrayBuffer(4));
  const workers = Array.from(
    { length: threads },
    (_, id) =>
      new Worker(new URL("./worker.mjs", import.meta.url), {
        workerData: {
          binary: built.binary,
          memory,
          memory64: built.memory.memory64,
          id,
          threads,
          ops,
          seed,
          rings,
          ringSlots: RING_SLOTS,
          barrier,
          maxSize: options.maxSize ?? 20_000,
          finish: options.finish,
          walkEvery: options.walkEvery,
          faultExport: built.debug?.faultExport,
          faultPtrExport: built.debug?.faultPtrExport,
        },
      }),
  );
  let running = threads;
  const results = workers.map(
    (worker) =>
      new Promise<HammerCounts>((resolve, reject) => {
        worker.once("error", reject);
        worker.once("message", (message: { ok: boolean; counts: HammerCounts; message: string; fault?: number; faultPtr: number }) => {
          running--;
          if (message.ok) return resolve(message.counts);
          const site = message.fault ? built.debug?.sites[message.fault - 1] : undefined;
          reject(site ? new HeapFaultError(site, message.faultPtr, { cause: message.message }) : new Error(message.message));
        });
      }),
  );
  let walks = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hammer: the threads were not done in ${options.timeoutMs ?? 120_000} ms`)), options.timeoutMs ?? 120_000);
  });
  try {
    const all = Promise.race([Promise.all(results), timeout]);
    if (options.walkWhileRunning && built.debug) {
      // The walker takes the lock like every other function: it sees the heap between two calls.
      while (running > 0) {
        heap.checkHeap();
        walks++;
        await Promise.race([all, new Promise((r) => setTimeout(r, 2))]);
      }
    }
    const per = await all;
    const counts = Object.fromEntries(
      Object.keys(per[0]!).map((k) => [k, per.reduce((sum, c) => sum + c[k as keyof HammerCounts], 0)]),
    ) as unknown as HammerCounts;
    return { counts, report: built.debug ? heap.checkHeap() : built.stats ? heap.heapStats() : undefined, walks };
  } finally {
    clearTimeout(timer);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
