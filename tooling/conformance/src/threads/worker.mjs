// One thread of the threads hammer (see hammer.ts): instantiates the allocator over the shared
// memory, runs random malloc/calloc/realloc/aligned_alloc/free with every block tagged (a byte
// pattern from a seed unique to the thread and block) and checked before it is freed or moved,
// and hands some blocks to the next thread, which checks and frees them.
// Plain JavaScript: a worker thread runs it without the TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";

const { binary, memory, memory64, id, threads, ops, seed, rings, ringSlots, barrier, maxSize, finish } = workerData;

const { instance } = await WebAssembly.instantiate(binary, { env: { memory } });
const fn = (name) => {
  const f = instance.exports[name];
  if (typeof f !== "function") throw new Error(`the allocator does not export ${name}`);
  // A memory64 build takes and returns i64 (bigints); addresses stay far below 2^53.
  return memory64 ? (...args) => Number(f(...args.map(BigInt)) ?? 0) : f;
};
const malloc = fn("malloc"), free = fn("free"), calloc = fn("calloc"), realloc = fn("realloc"), alignedAlloc = fn("aligned_alloc");
const finishFn = finish ? fn(finish) : undefined;
const walk = workerData.walkEvery ? fn("heap_check") : undefined;

let state = (seed ^ (id * 0x9e3779b9)) >>> 0 || 1;
/** xorshift32: a number in [0, n). */
const rand = (n) => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state % n;
};
const size = () => {
  const r = rand(100);
  if (r < 60) return 1 + rand(64);
  if (r < 95) return 65 + rand(1024);
  return 1089 + rand(maxSize - 1089);
};

const bytes = () => new Uint8Array(memory.buffer);
const fill = (ptr, n, tag) => {
  const m = bytes();
  for (let i = 0; i < n; i++) m[ptr + i] = (tag + i * 7) & 0xff;
};
const verify = (ptr, n, tag, what) => {
  const m = bytes();
  for (let i = 0; i < n; i++) {
    if (m[ptr + i] !== ((tag + i * 7) & 0xff)) {
      throw new Error(`thread ${id}: ${what}: block 0x${ptr.toString(16)} (${n} bytes, tag ${tag}) changed at +${i}`);
    }
  }
};
let tags = 0;
const newTag = () => ((id << 24) ^ (++tags * 2654435761)) >>> 0;
const admit = (ptr, n, align) => {
  if (ptr % align !== 0) throw new Error(`thread ${id}: 0x${ptr.toString(16)} is not ${align}-aligned`);
  if (ptr + n > memory.buffer.byteLength) throw new Error(`thread ${id}: block 0x${ptr.toString(16)}+${n} is outside memory`);
};

// Rings: ring t holds blocks handed to thread t: [head, tail, then ringSlots * (ptr, size, tag)].
// Thread t - 1 writes it, thread t reads it (one producer, one consumer).
const inbox = new Int32Array(rings, id * (2 + 3 * ringSlots) * 4, 2 + 3 * ringSlots);
const outbox = new Int32Array(rings, ((id + 1) % threads) * (2 + 3 * ringSlots) * 4, 2 + 3 * ringSlots);
const give = (b) => {
  const head = Atomics.load(outbox, 0), tail = Atomics.load(outbox, 1);
  if (tail - head >= ringSlots) return false;
  const at = 2 + 3 * (tail % ringSlots);
  outbox[at] = b.ptr;
  outbox[at + 1] = b.size;
  outbox[at + 2] = b.tag;
  Atomics.store(outbox, 1, tail + 1);
  return true;
};
let received = 0;
const drain = () => {
  let head = Atomics.load(inbox, 0);
  const tail = Atomics.load(inbox, 1);
  for (; head < tail; head++) {
    const at = 2 + 3 * (head % ringSlots);
    const ptr = inbox[at] >>> 0, n = inbox[at + 1], tag = inbox[at + 2] >>> 0;
    verify(ptr, n, tag, "a block from another thread");
    free(ptr);
    received++;
  }
  Atomics.store(inbox, 0, head);
};

const live = [];
const counts = { malloc: 0, calloc: 0, realloc: 0, aligned_alloc: 0, free: 0, given: 0, received: 0, refused: 0 };
try {
  for (let step = 0; step < ops; step++) {
    if (walk && step % workerData.walkEvery === 0) walk();
    const r = rand(100);
    if (r < 30 || live.length === 0) {
      const n = size();
      const ptr = malloc(n) >>> 0;
      counts.malloc++;
      if (ptr === 0) { counts.refused++; continue; }
      admit(ptr, n, 8);
      const b = { ptr, size: n, tag: newTag() };
      fill(ptr, n, b.tag);
      live.push(b);
    } else if (r < 36) {
      const k = 1 + rand(16), n = 1 + rand(64);
      const ptr = calloc(k, n) >>> 0;
      counts.calloc++;
      if (ptr === 0) { counts.refused++; continue; }
      admit(ptr, k * n, 8);
      const m = bytes();
      for (let i = 0; i < k * n; i++) if (m[ptr + i] !== 0) throw new Error(`thread ${id}: calloc block 0x${ptr.toString(16)} is not zero at +${i}`);
      const b = { ptr, size: k * n, tag: newTag() };
      fill(ptr, b.size, b.tag);
      live.push(b);
    } else if (r < 40) {
      const align = 2 ** (3 + rand(10)), n = size();
      const ptr = alignedAlloc(align, n) >>> 0;
      counts.aligned_alloc++;
      if (ptr === 0) { counts.refused++; continue; }
      admit(ptr, n, align);
      const b = { ptr, size: n, tag: newTag() };
      fill(ptr, n, b.tag);
      live.push(b);
    } else if (r < 55) {
      const i = rand(live.length), b = live[i];
      verify(b.ptr, b.size, b.tag, "before realloc");
      const n = rand(4) === 0 ? size() : Math.max(1, b.size + rand(256) - 96);
      const ptr = realloc(b.ptr, n) >>> 0;
      counts.realloc++;
      if (ptr === 0) { counts.refused++; continue; }
      admit(ptr, n, 8);
      verify(ptr, Math.min(n, b.size), b.tag, "after realloc");
      const moved = { ptr, size: n, tag: newTag() };
      fill(ptr, n, moved.tag);
      live[i] = moved;
    } else if (r < 62) {
      // To the next thread, which checks and frees it.
      const i = rand(live.length), b = live[i];
      verify(b.ptr, b.size, b.tag, "before handing it over");
      if (give(b)) {
        live[i] = live[live.length - 1];
        live.pop();
        counts.given++;
      }
    } else if (r < 64) {
      drain();
    } else {
      const i = rand(live.length), b = live[i];
      verify(b.ptr, b.size, b.tag, "before free");
      free(b.ptr);
      counts.free++;
      live[i] = live[live.length - 1];
      live.pop();
    }
  }
  // Every thread has stopped handing blocks over: the inbox is final.
  Atomics.add(barrier, 0, 1);
  while (Atomics.load(barrier, 0) < threads) Atomics.wait(barrier, 0, Atomics.load(barrier, 0), 5);
  Atomics.notify(barrier, 0);
  drain();
  for (const b of live) {
    verify(b.ptr, b.size, b.tag, "at the end");
    free(b.ptr);
    counts.free++;
  }
  if (finishFn) finishFn();
  counts.received = received;
  parentPort.postMessage({ ok: true, counts });
} catch (error) {
  // A debug build's check records its fault in this instance's globals before it traps.
  const fault = workerData.faultExport && Number(instance.exports[workerData.faultExport]?.value);
  const faultPtr = workerData.faultPtrExport && Number(instance.exports[workerData.faultPtrExport]?.value);
  parentPort.postMessage({ ok: false, message: String(error?.stack ?? error), fault, faultPtr: faultPtr >>> 0 });
}
