import type { BuiltAllocator } from "@alloc/core";
import { Worker } from "node:worker_threads";
import { sharedMemoryFor } from "./hammer.ts";

/**
 * Two threads over one shared memory, in up to `rounds` rounds: in each, a grower mallocs a block
 * that grows the memory while a mover reallocs a block, which moves it to the top of the heap:
 * into the pages the grower just grew when the grower took the lock first. The mover checks its
 * block's contents after every move. Returns the rounds run (fewer when the memory filled up);
 * rejects with the first thread's error (a trap, or a block whose contents changed).
 *
 * What it catches: a thread that waited for the lock while another thread grew the memory must
 * see the new pages once it holds the lock (see `threads.ts` in @alloc/core).
 */
export async function growRace(built: BuiltAllocator, rounds: number): Promise<number> {
  const memory = sharedMemoryFor(built);
  const shared = new SharedArrayBuffer(16);
  const workers = ["grower", "mover"].map(
    (role) => new Worker(new URL("./grow-race.mjs", import.meta.url), { workerData: { binary: built.binary, memory, memory64: built.memory.memory64, role, rounds, shared } }),
  );
  try {
    const done = await Promise.all(
      workers.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            w.once("error", reject);
            w.once("message", (m: { ok: boolean; message?: string; rounds: number }) => (m.ok ? resolve(m.rounds) : reject(new Error(m.message))));
          }),
      ),
    );
    return Math.min(...done);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
