// The waiting thread of the grow race (see grow-race.ts): in each round, once told to, it reallocs
// one of its two blocks (the other one follows it, so realloc moves it to the top of the heap),
// which waits for the lock that the main thread holds, and checks the block's contents after the
// move. Plain JavaScript: a worker thread runs it without the TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";

const { binary, memory, memory64, rounds, shared } = workerData;
const { instance } = await WebAssembly.instantiate(binary, { env: { memory } });
// A memory64 build takes and returns i64 (bigints).
const wide = (f) => (memory64 ? (...args) => Number(f(...args.map(BigInt)) ?? 0) : (...args) => f(...args) >>> 0);
const malloc = wide(instance.exports.malloc), realloc = wide(instance.exports.realloc);
// [go: the round the main thread started, entering: the round this thread is calling realloc in,
//  done: the rounds this thread finished, failed: 1 when it failed]
const words = new Int32Array(shared);
const GO = 0, ENTERING = 1, DONE = 2, FAILED = 3;
/**
 * The bytes up to `ptr + 16`. This thread's `memory.buffer` may still have the length from before
 * the main thread's latest grow (V8): `grow(0)` updates it.
 */
const view = (ptr) => {
  if (memory.buffer.byteLength < ptr + 16) memory.grow(0);
  return new Uint8Array(memory.buffer);
};
const tag = (ptr) => (ptr >>> 3) & 0xff;
let round = 0;
try {
  const blocks = [malloc(16), malloc(16)];
  for (const b of blocks) view(b).fill(tag(b), b, b + 16);
  Atomics.store(words, DONE, 0);
  Atomics.notify(words, DONE);
  for (round = 1; round <= rounds; round++) {
    while (Atomics.load(words, GO) < round) Atomics.wait(words, GO, round - 1, 100);
    Atomics.store(words, ENTERING, round);
    Atomics.notify(words, ENTERING);
    const from = blocks[round % 2];
    const moved = realloc(from, 16);
    if (moved === 0) throw new Error(`realloc(0x${from.toString(16)}, 16) failed`);
    const bytes = view(moved);
    for (let i = 0; i < 16; i++) if (bytes[moved + i] !== tag(from)) throw new Error(`block 0x${moved.toString(16)} (moved from 0x${from.toString(16)}) changed at +${i}`);
    bytes.fill(tag(moved), moved, moved + 16);
    blocks[round % 2] = moved;
    Atomics.store(words, DONE, round);
    Atomics.notify(words, DONE);
  }
  parentPort.postMessage({ ok: true });
} catch (error) {
  Atomics.store(words, FAILED, 1);
  Atomics.notify(words, DONE);
  parentPort.postMessage({ ok: false, message: `round ${round}: ${String(error?.stack ?? error)}` });
}
