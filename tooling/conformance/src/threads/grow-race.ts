import { binaryen, buildAllocator, type BuildOptions } from "@alloc/core";
import { Worker } from "node:worker_threads";
import { sharedMemoryFor } from "./hammer.ts";

/** The lock word of a thread-safe build at the default state address. */
const LOCK_WORD = 1024 / 4;

/**
 * The grow race, played out in a fixed order, `rounds` times: the main thread takes the lock of
 * `options`' thread-safe build (a bump allocator) itself; a worker thread calls realloc, which
 * moves its block to the top of the heap and first waits for the lock; meanwhile the main thread
 * mallocs a page through a copy of the build without the lock, which grows the memory by a page,
 * and then lets go of the lock. The worker's realloc takes it and copies the block into the new
 * page; the worker checks the block's contents. Resolves when every round passed; rejects with
 * the worker's error (a trap, or a block whose contents changed).
 *
 * What it catches: a thread that waited for the lock while another thread grew the memory must
 * see the new pages once it holds the lock (see `threads.ts` in @alloc/core). The order needs no
 * two threads running at once: the worker may wait for the lock however long.
 */
export async function growRace(options: BuildOptions, rounds: number): Promise<void> {
  const built = buildAllocator(options);
  // The main thread's allocator: the same heap (state area and all), with the lock taken out
  // (it holds the lock by hand).
  const module = binaryen.parseText(buildAllocator({ ...options, optimize: "none" }).text);
  module.setFeatures(binaryen.Features.All);
  for (const name of ["~alloc/lock/acquire", "~alloc/lock/release"]) {
    module.removeFunction(name);
    module.addFunction(name, binaryen.none, binaryen.none, [], module.nop());
  }
  const unlocked = module.emitBinary();
  module.dispose();
  const memory = sharedMemoryFor(built);
  const { instance } = await WebAssembly.instantiate(unlocked as BufferSource, { env: { memory } });
  const grow = () => Number((instance.exports.malloc as (size: number | bigint) => number | bigint)(built.memory.memory64 ? 65536n : 65536));
  // Shared with the worker: [go, entering, done, failed] (see grow-race.mjs).
  const words = new Int32Array(new SharedArrayBuffer(16));
  const [GO, ENTERING, DONE, FAILED] = [0, 1, 2, 3];
  Atomics.store(words, DONE, -1);
  const worker = new Worker(new URL("./grow-race.mjs", import.meta.url), { workerData: { binary: built.binary, memory, memory64: built.memory.memory64, rounds, shared: words.buffer } });
  let failure: unknown;
  // The worker's end: its message, or its crash.
  const ended = new Promise<void>((resolve) => {
    worker.once("error", (error) => void ((failure = error), resolve()));
    worker.once("message", (m: { ok: boolean; message?: string }) => void (m.ok || (failure = new Error(m.message)), resolve()));
  });
  const lock = new Int32Array(memory.buffer, 0, LOCK_WORD + 1);
  /**
   * Waits (on this thread too: Node allows it) until `words[at]` reaches `value`; false when the
   * worker failed. Throws after 10 s (a worker that crashed says so only through the event loop).
   */
  const waitFor = (at: number, value: number) => {
    const until = Date.now() + 10_000;
    while (Atomics.load(words, at) < value && Atomics.load(words, FAILED) === 0) {
      if (Date.now() > until) throw new Error(`grow race: the worker did not reach step ${value} in 10 s`);
      Atomics.wait(words, at, Atomics.load(words, at), 100);
    }
    return Atomics.load(words, FAILED) === 0;
  };
  try {
    for (let round = 1; round <= rounds; round++) {
      if (!waitFor(DONE, round - 1)) break;
      Atomics.store(lock, LOCK_WORD, 1);
      Atomics.store(words, GO, round);
      Atomics.notify(words, GO);
      if (!waitFor(ENTERING, round)) break;
      // Time for the worker to get into realloc and wait for the lock.
      Atomics.wait(words, GO, round, 2);
      if (grow() === 0) throw new Error(`round ${round}: the main thread's malloc failed`);
      Atomics.store(lock, LOCK_WORD, 0);
    }
    await ended;
    if (failure !== undefined) throw failure;
  } finally {
    await worker.terminate();
  }
}
