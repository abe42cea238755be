// One side of the grow race (see grow-race.ts), in rounds. In each round the grower mallocs a
// block of just over a page, which grows the memory (and leaves most of the new pages as room
// after the block), and at the same moment the mover reallocs one of its two blocks: the other
// one follows it, so realloc moves it to the top of the heap. When the grower takes the lock
// first, the mover waits for it during the grow, then copies its block into the new pages.
// Plain JavaScript: a worker thread runs it without the TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";

const { binary, memory, memory64, role, rounds, shared } = workerData;
const { instance } = await WebAssembly.instantiate(binary, { env: { memory } });
// A memory64 build takes and returns i64 (bigints).
const wide = (f) => (memory64 ? (...args) => Number(f(...args.map(BigInt)) ?? 0) : (...args) => f(...args) >>> 0);
const malloc = wide(instance.exports.malloc), realloc = wide(instance.exports.realloc);
// [stop, ready, grower's round, mover's round]: both start together (a worker takes a while to
// start), each waits for the other at each round, and each stops when the other stops.
const words = new Int32Array(shared);
const STOP = 0, READY = 1, GROWER = 2, MOVER = 3;
Atomics.add(words, READY, 1);
while (Atomics.load(words, READY) < 2) Atomics.wait(words, READY, 1, 1);
/** Spins until the other thread has started round `round` (or stopped). */
const awaitRound = (word, round) => {
  while (Atomics.load(words, word) < round && Atomics.load(words, STOP) === 0);
  return Atomics.load(words, STOP) === 0;
};
/**
 * The bytes up to `ptr + 16`. This thread's `memory.buffer` may still have the length from before
 * the grower's latest grow (V8): `grow(0)` updates it.
 */
const view = (ptr) => {
  if (memory.buffer.byteLength < ptr + 16) memory.grow(0);
  return new Uint8Array(memory.buffer);
};
const tag = (ptr) => (ptr >>> 3) & 0xff;
let round = 0;
try {
  if (role === "grower") {
    // Until the memory is full (malloc gives 0).
    for (; round < rounds && awaitRound(MOVER, round); round++) {
      Atomics.store(words, GROWER, round + 1);
      if (malloc(65536 + 8) === 0) break;
    }
  } else {
    // Two blocks, reallocated in turn: the other one always follows the one reallocated.
    const blocks = [malloc(16), malloc(16)];
    for (const b of blocks) view(b).fill(tag(b), b, b + 16);
    for (; round < rounds && awaitRound(GROWER, round + 1); round++) {
      const from = blocks[round % 2];
      const moved = realloc(from, 16);
      if (moved === 0) break;
      const bytes = view(moved);
      for (let i = 0; i < 16; i++) if (bytes[moved + i] !== tag(from)) throw new Error(`mover: block 0x${moved.toString(16)} (moved from 0x${from.toString(16)}) changed at +${i}`);
      bytes.fill(tag(moved), moved, moved + 16);
      blocks[round % 2] = moved;
      Atomics.store(words, MOVER, round + 1);
    }
  }
  Atomics.store(words, STOP, 1);
  parentPort.postMessage({ ok: true, rounds: round });
} catch (error) {
  Atomics.store(words, STOP, 1);
  parentPort.postMessage({ ok: false, message: `${role}, round ${round}: ${String(error?.stack ?? error)}`, rounds: round });
}
