// One end of a producer/consumer pipe (see pipe.ts): the producer mallocs blocks of random small
// sizes, tags them and passes them on; the consumer checks and frees them. With thread caches, the
// consumer's frees land in its own cache: this is the pattern that must not grow memory forever.
// Plain JavaScript: a worker thread runs it without the TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";

const { binary, memory, role, blocks, ring, slots, maxSize, seed } = workerData;
const { instance } = await WebAssembly.instantiate(binary, { env: { memory } });
// A memory64 build takes and returns i64 (bigints).
const wide = (f) => (workerData.memory64 ? (...args) => Number(f(...args.map(BigInt)) ?? 0) : f);
const malloc = wide(instance.exports.malloc), free = wide(instance.exports.free);
const q = new Int32Array(ring);
let state = seed >>> 0 || 1;
const rand = (n) => {
  state ^= state << 13; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
  return state % n;
};
const tagAt = (ptr, n) => (ptr * 2654435761 + n) & 0xff;
try {
  if (role === "producer") {
    for (let i = 0; i < blocks; i++) {
      const n = 1 + rand(maxSize);
      const ptr = malloc(n) >>> 0;
      if (ptr === 0) throw new Error(`producer: malloc(${n}) failed after ${i} blocks (memory ${memory.buffer.byteLength} bytes)`);
      new Uint8Array(memory.buffer).fill(tagAt(ptr, n), ptr, ptr + n);
      // [head, tail, slots * (ptr, size)]; wait while full.
      while (Atomics.load(q, 1) - Atomics.load(q, 0) >= slots) Atomics.wait(q, 0, Atomics.load(q, 0), 1);
      const at = 2 + 2 * (q[1] % slots);
      q[at] = ptr;
      q[at + 1] = n;
      Atomics.add(q, 1, 1);
      Atomics.notify(q, 1);
    }
  } else {
    // A thread gets its cache on its first malloc: the consumer makes one, so that its frees
    // land there (a thread that only frees takes the lock for each).
    free(malloc(16));
    for (let i = 0; i < blocks; i++) {
      while (Atomics.load(q, 1) === Atomics.load(q, 0)) Atomics.wait(q, 1, Atomics.load(q, 0), 1);
      const at = 2 + 2 * (q[0] % slots);
      const ptr = q[at] >>> 0, n = q[at + 1];
      const m = new Uint8Array(memory.buffer);
      for (let k = 0; k < n; k++) if (m[ptr + k] !== tagAt(ptr, n)) throw new Error(`consumer: block 0x${ptr.toString(16)} (${n} bytes) changed at +${k}`);
      free(ptr);
      Atomics.add(q, 0, 1);
      Atomics.notify(q, 0);
    }
  }
  parentPort.postMessage({ ok: true });
} catch (error) {
  parentPort.postMessage({ ok: false, message: String(error?.stack ?? error) });
}
