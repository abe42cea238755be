// One thread of `pnpm --filter @alloc/bench threads`: malloc/free churn over a window of live
// blocks, timed from a start signal shared by every thread. Plain JavaScript: a worker thread
// runs it without the TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";

const { binary, shared, ops, seed, start, window } = workerData;
const memory = shared ?? new WebAssembly.Memory({ initial: workerData.initialPages });
const { instance } = await WebAssembly.instantiate(binary, { env: { memory } });
const { malloc, free } = instance.exports;
let state = seed >>> 0 || 1;
const sizes = new Int32Array(4096);
for (let i = 0; i < sizes.length; i++) {
  state ^= state << 13; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
  sizes[i] = 8 + (state % 504);
}
const live = new Int32Array(window);
for (let i = 0; i < window; i++) live[i] = malloc(sizes[i]);
parentPort.postMessage("ready");
while (Atomics.load(start, 0) === 0) Atomics.wait(start, 0, 0, 10);
const t0 = process.hrtime.bigint();
// Each step frees one block of the window and allocates another in its place: 2 calls.
for (let i = 0; i < ops; i++) {
  const k = i % window;
  free(live[k]);
  live[k] = malloc(sizes[i & 4095]);
}
const t1 = process.hrtime.bigint();
for (let i = 0; i < window; i++) free(live[i]);
parentPort.postMessage({ ns: Number(t1 - t0), t0: Number(t0), t1: Number(t1) });
