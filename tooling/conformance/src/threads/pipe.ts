import type { BuiltAllocator } from "@alloc/core";
import { Worker } from "node:worker_threads";
import { sharedMemoryFor } from "./hammer.ts";

/**
 * A producer thread mallocs `blocks` blocks of 1 to `maxSize` bytes and a consumer thread frees
 * them (at most `slots` in flight), over one shared memory. Returns the memory's size at the end:
 * with thread caches, the consumer caches what it frees up to its bound, so memory must level off
 * however long the pipe runs.
 */
export async function pipe(built: BuiltAllocator, blocks: number, maxSize = 512, slots = 256): Promise<number> {
  const memory = sharedMemoryFor(built);
  const ring = new SharedArrayBuffer((2 + 2 * slots) * 4);
  const workers = ["producer", "consumer"].map(
    (role, i) => new Worker(new URL("./pipe.mjs", import.meta.url), { workerData: { binary: built.binary, memory, memory64: built.memory.memory64, role, blocks, ring, slots, maxSize, seed: 7 + i } }),
  );
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.once("error", reject);
            w.once("message", (m: { ok: boolean; message?: string }) => (m.ok ? resolve() : reject(new Error(m.message))));
          }),
      ),
    );
    return memory.buffer.byteLength;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
